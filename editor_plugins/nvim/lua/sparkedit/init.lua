-- sparkedit for Neovim: a thin client of `sparkedit lsp`. setup() wires the pieces; the
-- server does the work (context, model, cache, debounce), the plugin starts it, passes
-- the settings through and renders.
local client = require("sparkedit.client")
local config = require("sparkedit.config")
local edit = require("sparkedit.edit")
local ghost = require("sparkedit.ghost")
local next_edit = require("sparkedit.next_edit")

local api = vim.api
local M = {}

M.did_setup = false

local function attach(buf, lsp_client)
  ghost.attach(buf, lsp_client)
  next_edit.attach(buf)
  if buf == api.nvim_get_current_buf() then
    client.focus(buf) -- the buffer entered before its server was attached
  end
end

--- Starts the server for the configured filetypes and maps the keys.
---@param opts table? see `:help sparkedit-setup`
function M.setup(opts)
  if vim.fn.has("nvim-0.11") == 0 then
    vim.notify("sparkedit: Neovim 0.11 or newer is needed", vim.log.levels.ERROR)
    return
  end
  config.set(opts)
  M.did_setup = true
  require("sparkedit.commands").create()
  local group = api.nvim_create_augroup("sparkedit", { clear = true })
  api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.options.filetypes,
    callback = function(ev)
      if vim.bo[ev.buf].buftype == "" then
        client.start(ev.buf)
      end
    end,
  })
  api.nvim_create_autocmd({ "BufEnter", "WinEnter" }, {
    group = group,
    callback = function()
      client.focus(api.nvim_get_current_buf())
    end,
  })
  api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(ev)
      local c = vim.lsp.get_client_by_id(ev.data.client_id)
      if c and c.name == client.NAME then
        attach(ev.buf, c)
      end
    end,
  })
  require("sparkedit.keymaps").set(config.options.keymaps, {
    accept = function() return ghost.accept_any() end,
    accept_word = function() return ghost.accept_word() end,
    accept_line = function() return ghost.accept_line() end,
    dismiss = function() return ghost.dismiss() end,
  })
  -- Buffers already open when setup() runs (lazy loading).
  for _, buf in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(buf) and vim.bo[buf].buftype == ""
        and vim.tbl_contains(config.options.filetypes, vim.bo[buf].filetype) then
      client.start(buf)
    end
  end
end

-- Ghost text ------------------------------------------------------------------------

--- Asks for ghost text at the cursor now (also when auto_trigger is off).
function M.trigger() return ghost.trigger() end
--- Accepts the whole suggestion; false when none shows.
function M.accept() return ghost.accept_any() end
function M.accept_word() return ghost.accept_word() end
function M.accept_line() return ghost.accept_line() end
function M.dismiss() return ghost.dismiss() end
--- The suggestion shown in the current buffer: {id, text, row, col, ...} or nil.
function M.suggestion() return ghost.current() end

-- Next edits ------------------------------------------------------------------------

function M.next_edit() return next_edit.request() end
function M.accept_edit() return next_edit.accept() end
function M.dismiss_edit() return next_edit.dismiss() end

-- Instruction edits -------------------------------------------------------------------

--- Rewrites lines `line1`..`line2` (1-based; a charwise visual selection on them narrows
--- it to the selected characters) following `instruction`.
function M.edit(instruction, line1, line2)
  local buf = api.nvim_get_current_buf()
  local c = client.get(buf)
  if not c then
    vim.notify("sparkedit: no sparkedit server is attached to this buffer", vim.log.levels.WARN)
    return false
  end
  local row = api.nvim_win_get_cursor(0)[1]
  local range = edit.command_range(buf, line1 or row, line2 or line1 or row, c.offset_encoding)
  return edit.request(buf, range, instruction)
end

-- Status ------------------------------------------------------------------------------

local function pct(x)
  return type(x) == "number" and ("%d%%"):format(math.floor(x * 100 + 0.5)) or "-"
end

local function ms(x)
  return type(x) == "number" and ("%.0f ms"):format(x) or "-"
end

--- The status payload as lines of text.
function M.format_status(s)
  local stats = type(s.stats) == "table" and s.stats or {}
  local last = type(s.lastLatencies) == "table" and s.lastLatencies or {}
  local lat = type(stats.latencyMs) == "table" and stats.latencyMs or {}
  local model = tostring(s.model or "-") .. (s.untrained == true and " (untrained)" or "")
  local warm = "-"
  for _, w in ipairs(type(s.warm) == "table" and s.warm or {}) do
    if type(w) == "table" and w.uri == s.focus then
      warm = w.complete == true and ("%s tokens prefilled"):format(tostring(w.budget))
        or ("warming up (suggestions at %s tokens meanwhile)"):format(tostring(w.budget))
    end
  end
  return {
    ("sparkedit: %s%s"):format(tostring(s.state),
      (type(s.message) == "string" and s.message ~= "") and (" - " .. s.message) or ""),
    ("  target %s, model %s, engine pid %s, index %s"):format(tostring(s.target or "-"), model,
      tostring(s.enginePid or "-"), s.indexReady == true and "ready" or "building"),
    ("  last: context %s, first token %s, total %s"):format(ms(last.context_ms), ms(last.ttft_ms),
      ms(last.total_ms)),
    ("  suggestions: %s shown, %s accepted, %s partly, %s rejected; acceptance %s (chars %s)")
      :format(tostring(stats.shown or 0), tostring(stats.accepted or 0),
        tostring(stats.partiallyAccepted or 0), tostring(stats.rejected or 0),
        pct(stats.acceptanceRate), pct(stats.acceptedCharsRate)),
    ("  latency p50 %s, p95 %s; prompt prefix reuse %s"):format(ms(lat.p50), ms(lat.p95),
      pct(stats.prefixReuse)),
    ("  context warm-up: %s"):format(warm),
  }
end

--- Prints the server's status (`:SparkEdit status`).
function M.status()
  client.status(api.nvim_get_current_buf(), function(s, err)
    if not s then
      vim.notify("sparkedit: " .. tostring(err), vim.log.levels.WARN)
    else
      vim.notify(table.concat(M.format_status(s), "\n"), vim.log.levels.INFO)
    end
  end)
end

--- A short engine state for a statusline ("" without a server).
function M.statusline()
  local c = client.get()
  local s = c and client.last_status[c.id]
  if not c then
    return ""
  end
  return "sparkedit:" .. (s and tostring(s.state) or "starting")
end

return M
