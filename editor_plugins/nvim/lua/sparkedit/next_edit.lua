-- Next edits: `sparkedit/nextEdit` at the cursor, a preview of the predicted change
-- (the replaced text highlighted, the new text inline or as virtual lines), then
-- accept (`apply_text_edits`, `sparkedit/didAccept`) or dismiss (`didReject`).
local client_mod = require("sparkedit.client")
local config = require("sparkedit.config")

local api = vim.api
local M = {}

M.ns = api.nvim_create_namespace("sparkedit.next_edit")

---@class sparkedit.Pending
---@field client_id integer
---@field id string? the suggestion id feedback uses
---@field edits table[] LSP text edits
---@field version integer the buffer version they were computed for
---@field saved_maps table[] the buffer's own mappings of the preview keys, to restore
---@field autocmd integer

---@type table<integer, sparkedit.Pending>
local pending = {}
local auto_ticks = {} ---@type table<integer, integer> buffer -> changedtick last asked about

local function event(buf, data)
  data.buf = buf
  api.nvim_exec_autocmds("User", { pattern = "SparkEditNextEdit", data = data, modeline = false })
end

local function say(msg, level, quiet)
  if not quiet then
    vim.notify("sparkedit: " .. msg, level or vim.log.levels.INFO)
  end
end

local function version(buf)
  return vim.lsp.util.buf_versions[buf]
end

function M.get(buf)
  return pending[buf or api.nvim_get_current_buf()]
end

local function unmap(buf, p)
  local keys = config.options.keymaps
  for _, key in ipairs({ keys.next_edit_accept, keys.next_edit_dismiss }) do
    if key then
      pcall(vim.keymap.del, "n", key, { buffer = buf })
    end
  end
  for _, saved in ipairs(p.saved_maps) do
    vim.fn.mapset("n", false, saved) -- the buffer's own mappings of those keys, restored
  end
end

--- Removes the preview; `reject` also tells the server it was not taken.
function M.clear(buf, reject)
  buf = buf or api.nvim_get_current_buf()
  local p = pending[buf]
  if not p then
    return false
  end
  pending[buf] = nil
  pcall(api.nvim_del_autocmd, p.autocmd)
  if api.nvim_buf_is_valid(buf) then
    api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
    unmap(buf, p)
  end
  if reject and p.id then
    local client = vim.lsp.get_client_by_id(p.client_id)
    if client then
      client:notify("sparkedit/didReject", { id = p.id })
    end
  end
  return true
end

local function line_at(buf, row)
  return api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
end

local function preview(buf, edits, encoding)
  for _, edit in ipairs(edits) do
    local s, e = edit.range.start, edit.range["end"]
    local sc = client_mod.byte_col(buf, s, encoding)
    local ec = client_mod.byte_col(buf, e, encoding)
    if s.line ~= e.line or sc ~= ec then
      api.nvim_buf_set_extmark(buf, M.ns, s.line, sc, {
        end_row = e.line, end_col = ec, hl_group = "SparkEditDelete", priority = 200,
      })
    end
    local new = edit.newText or ""
    if s.line == e.line and not new:find("\n", 1, true) then
      if new ~= "" then
        api.nvim_buf_set_extmark(buf, M.ns, e.line, ec, {
          virt_text = { { new, "SparkEditAdd" } }, virt_text_pos = "inline",
        })
      end
    else
      -- The affected lines as they will read, below the last line the edit touches; a
      -- first or last line that stays as it is (lines added after or before it) is left out.
      local first, last = line_at(buf, s.line), line_at(buf, e.line)
      local after = vim.split(first:sub(1, sc) .. new .. last:sub(ec + 1), "\n", { plain = true })
      local above = false
      if #after > 1 and after[1] == first and s.line == e.line then
        table.remove(after, 1)
      elseif #after > 1 and after[#after] == last and s.line == e.line then
        table.remove(after)
        above = true
      end
      local virt_lines = {}
      for _, l in ipairs(after) do
        virt_lines[#virt_lines + 1] = { { l, "SparkEditAdd" } }
      end
      api.nvim_buf_set_extmark(buf, M.ns, e.line, 0,
        { virt_lines = virt_lines, virt_lines_above = above })
    end
  end
end

local function map(buf, p)
  local keys = config.options.keymaps
  local actions = {
    [keys.next_edit_accept or ""] = M.accept,
    [keys.next_edit_dismiss or ""] = M.dismiss,
  }
  for key, action in pairs(actions) do
    if key ~= "" then
      local saved = vim.fn.maparg(key, "n", false, true)
      if saved.buffer == 1 then
        p.saved_maps[#p.saved_maps + 1] = saved
      end
      vim.keymap.set("n", key, function()
        action(buf)
      end, { buffer = buf, desc = "sparkedit: next edit" })
    end
  end
end

--- Asks for a next edit at the cursor of `buf` and previews it.
---@param opts {quiet: boolean?}? quiet: no message for "no edit" (auto mode)
function M.request(buf, opts)
  buf = buf or api.nvim_get_current_buf()
  opts = opts or {}
  local client = client_mod.get(buf)
  if not client then
    say("no sparkedit server is attached to this buffer", vim.log.levels.WARN, opts.quiet)
    return false
  end
  M.clear(buf, true)
  local params = client_mod.position_params(client, buf)
  if not params then
    return false
  end
  local asked = version(buf)
  params.textDocument.version = asked
  return client:request("sparkedit/nextEdit", params, function(err, result)
    if err then
      say("next edit failed: " .. tostring(err.message), vim.log.levels.WARN, opts.quiet)
      event(buf, { error = err.message })
      return
    end
    if not api.nvim_buf_is_valid(buf) or version(buf) ~= asked then
      event(buf, { stale = true })
      return
    end
    local count = M.present(buf, client, result, asked)
    if count == 0 then
      say("no edit suggested here", vim.log.levels.INFO, opts.quiet)
    end
    event(buf, { count = count, edits = count > 0 and result.edits or nil })
  end, buf)
end

--- Previews a `sparkedit/nextEdit` answer computed for version `asked` of `buf`;
--- returns how many edits it holds.
function M.present(buf, client, result, asked)
  local edits = type(result) == "table" and result.edits or {}
  if #edits == 0 then
    return 0
  end
  local p = {
    client_id = client.id, id = result.id, edits = edits, version = asked, saved_maps = {},
  }
  M.clear(buf, true)
  pending[buf] = p
  preview(buf, edits, client.offset_encoding)
  map(buf, p)
  -- A change to the buffer makes the edits stale: drop the preview. (TextChanged also
  -- fires late for changes made before the preview, hence the version test.)
  p.autocmd = api.nvim_create_autocmd({ "TextChanged", "TextChangedI" }, {
    buffer = buf,
    callback = function()
      if pending[buf] == p and version(buf) ~= p.version then
        M.clear(buf, true)
      end
    end,
  })
  if p.id then
    client:notify("sparkedit/didShow", { id = p.id })
  end
  return #edits
end

--- Applies the previewed edits; false when there is none (or it went stale).
function M.accept(buf)
  buf = buf or api.nvim_get_current_buf()
  local p = pending[buf]
  if not p then
    return false
  end
  local client = vim.lsp.get_client_by_id(p.client_id)
  if not client or version(buf) ~= p.version then
    M.clear(buf, true)
    say("the suggested edit is out of date", vim.log.levels.WARN)
    return false
  end
  M.clear(buf, false)
  vim.lsp.util.apply_text_edits(p.edits, buf, client.offset_encoding)
  if p.id then
    client:notify("sparkedit/didAccept", { id = p.id })
  end
  return true
end

function M.dismiss(buf)
  return M.clear(buf, true)
end

--- Auto mode: ask on CursorHold once the buffer changed since the last question.
function M.attach(buf)
  auto_ticks[buf] = api.nvim_buf_get_changedtick(buf)
  local group = api.nvim_create_augroup("sparkedit.next_edit." .. buf, { clear = true })
  api.nvim_create_autocmd("CursorHold", {
    group = group,
    buffer = buf,
    callback = function()
      local tick = api.nvim_buf_get_changedtick(buf)
      if config.options.next_edit.auto and auto_ticks[buf] ~= tick and not pending[buf] then
        auto_ticks[buf] = tick
        M.request(buf, { quiet = true })
      end
    end,
  })
  api.nvim_create_autocmd("BufUnload", {
    group = group,
    buffer = buf,
    callback = function()
      pending[buf], auto_ticks[buf] = nil, nil
      pcall(api.nvim_del_augroup_by_id, group)
    end,
  })
end

return M
