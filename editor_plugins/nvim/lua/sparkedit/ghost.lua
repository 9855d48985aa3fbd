-- Ghost text: ask for `textDocument/inlineCompletion` while typing (debounced, the
-- previous request cancelled), draw the first item as extmarks, accept it whole, by word
-- or by line, or dismiss it, and tell the server (`sparkedit/didShow`, `didAccept`,
-- `didReject`). Text typed through a suggestion consumes it locally, without flicker.
local client_mod = require("sparkedit.client")
local config = require("sparkedit.config")

local api = vim.api
local M = {}

M.ns = api.nvim_create_namespace("sparkedit.ghost")
local INVOKED, AUTOMATIC = 1, 2 -- InlineCompletionTriggerKind
local REQUEST_CANCELLED = -32800

---@class sparkedit.Ghost
---@field client_id integer
---@field id string? the suggestion id feedback uses
---@field row integer 0-based row of the anchor
---@field col integer byte column where the rest of the suggestion starts
---@field prefix string the line up to `col`, to notice edits before the anchor
---@field text string what is left of the suggestion
---@field consumed integer characters typed through or accepted since the server's answer

---@class sparkedit.GhostBuffer
---@field timer uv.uv_timer_t? the debounce
---@field request {client: vim.lsp.Client, id: integer}? the request in flight
---@field ghost sparkedit.Ghost? what is shown
---@field seen string? changedtick:row:col last handled, to skip an event's twin

---@type table<integer, sparkedit.GhostBuffer>
local buffers = {}

local function buf_state(buf)
  local st = buffers[buf]
  if not st then
    st = {}
    buffers[buf] = st
  end
  return st
end

local function event(buf, data)
  data.buf = buf
  api.nvim_exec_autocmds("User", { pattern = "SparkEditGhost", data = data, modeline = false })
end

local function notify(client_id, method, params)
  local client = vim.lsp.get_client_by_id(client_id)
  if client then
    client:notify(method, params)
  end
end

--- One line of a suggestion as drawn: virtual text draws a tab as one cell, so tabs are
--- expanded the way the buffer would; other control characters read as ^X.
function M.display(line, buf)
  line = line:gsub("\t", string.rep(" ", vim.bo[buf or 0].tabstop))
  return (line:gsub("%c", function(c)
    local b = c:byte()
    return "^" .. string.char(b == 127 and 63 or b + 64)
  end))
end

local function render(buf, ghost)
  api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  local lines = vim.split(ghost.text, "\n", { plain = true })
  local opts = { hl_mode = "combine", virt_text_pos = "inline" }
  if lines[1] ~= "" then
    opts.virt_text = { { M.display(lines[1], buf), "SparkEditGhost" } }
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      opts.virt_lines[#opts.virt_lines + 1] = { { M.display(lines[i], buf), "SparkEditGhost" } }
    end
  end
  api.nvim_buf_set_extmark(buf, M.ns, ghost.row, ghost.col, opts)
end

local function cursor_of(buf)
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    return nil
  end
  local c = api.nvim_win_get_cursor(win)
  return c[1] - 1, c[2]
end

--- The suggestion shown in `buf`, or nil.
---@return sparkedit.Ghost?
function M.current(buf)
  local st = buffers[buf or api.nvim_get_current_buf()]
  return st and st.ghost
end

function M.visible(buf)
  return M.current(buf) ~= nil
end

function M.cancel(buf)
  local st = buffers[buf]
  if st and st.request then
    st.request.client:cancel_request(st.request.id)
    st.request = nil
  end
end

--- Removes the ghost text; `reject` also tells the server it was not taken.
function M.clear(buf, reject)
  buf = buf or api.nvim_get_current_buf()
  local st = buffers[buf]
  if api.nvim_buf_is_valid(buf) then
    api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  end
  if st and st.ghost then
    if reject and st.ghost.id then
      notify(st.ghost.client_id, "sparkedit/didReject", { id = st.ghost.id })
    end
    st.ghost = nil
  end
end

local function show(buf, client, item, row, col)
  local text = item.insertText
  if type(text) == "table" then
    text = text.value -- a snippet: shown and inserted as plain text
  end
  if type(text) ~= "string" then
    return false
  end
  -- LSP counts a lone "\r" as a line break and Neovim does not: inserted as is, it would
  -- put the server's copy out of step (apply_text_edits normalises the same way).
  text = text:gsub("\r\n?", "\n")
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  if item.range then
    -- The range may start before the cursor (text already typed): skip what is there.
    local start = item.range.start
    local start_col = client_mod.byte_col(buf, start, client.offset_encoding)
    if start.line ~= row or start_col > col then
      return false
    end
    local typed = line:sub(start_col + 1, col)
    if not vim.startswith(text, typed) then
      return false
    end
    text = text:sub(#typed + 1)
  end
  if text == "" then
    return false
  end
  local id = item.command and item.command.arguments and item.command.arguments[1]
  local st = buf_state(buf)
  local previous = st.ghost and st.ghost.id
  st.ghost = {
    client_id = client.id,
    id = type(id) == "string" and id or nil,
    row = row,
    col = col,
    prefix = line:sub(1, col),
    text = text,
    consumed = 0,
  }
  render(buf, st.ghost)
  if st.ghost.id and st.ghost.id ~= previous then
    client:notify("sparkedit/didShow", { id = st.ghost.id })
  end
  return true
end

--- Asks for ghost text at the cursor of `buf` now.
---@param invoked boolean? true when the user asked (trigger kind Invoked)
function M.request(buf, invoked)
  buf = buf or api.nvim_get_current_buf()
  local client = client_mod.get(buf)
  if not client then
    return false
  end
  M.cancel(buf)
  local params, row, col = client_mod.position_params(client, buf)
  if not params then
    return false
  end
  params.context = { triggerKind = invoked and INVOKED or AUTOMATIC }
  local tick = api.nvim_buf_get_changedtick(buf)
  local st = buf_state(buf)
  local ok, request_id
  ok, request_id = client:request("textDocument/inlineCompletion", params, function(err, result)
    if not (st.request and st.request.id == request_id) then
      return -- superseded
    end
    st.request = nil
    if err then
      if err.code ~= REQUEST_CANCELLED then
        event(buf, { error = err.message })
      end
      return
    end
    local r, c = cursor_of(buf)
    if api.nvim_buf_get_changedtick(buf) ~= tick or r ~= row or c ~= col then
      return -- the buffer or cursor moved on: a newer request follows
    end
    local items = result and (result.items or result) or {}
    local shown = items[1] ~= nil and show(buf, client, items[1], row, col)
    if not shown then
      M.clear(buf, false)
    end
    event(buf, { shown = shown, count = #items, text = shown and st.ghost.text or nil })
  end, buf)
  if ok then
    st.request = { client = client, id = request_id }
  end
  return ok
end

--- Keeps the ghost text when the text typed since it was drawn matches it; true if kept.
local function type_through(buf, ghost, row, col)
  if row ~= ghost.row or col < ghost.col then
    return false
  end
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  if line:sub(1, ghost.col) ~= ghost.prefix then
    return false
  end
  local typed = line:sub(ghost.col + 1, col)
  if typed == "" then
    return true
  end
  if #typed >= #ghost.text or not vim.startswith(ghost.text, typed) then
    return false
  end
  ghost.text = ghost.text:sub(#typed + 1)
  ghost.col = col
  ghost.prefix = line:sub(1, col)
  ghost.consumed = ghost.consumed + client_mod.chars(typed)
  render(buf, ghost)
  return true
end

--- TextChangedI / CursorMovedI: keep or drop the ghost text, then ask again (debounced).
function M.on_change(buf)
  local st = buf_state(buf)
  local row, col = cursor_of(buf)
  if row == nil then
    return
  end
  local seen = ("%d:%d:%d"):format(api.nvim_buf_get_changedtick(buf), row, col)
  if st.seen == seen then
    return -- CursorMovedI and TextChangedI of the same keystroke
  end
  st.seen = seen
  if st.ghost and not type_through(buf, st.ghost, row, col) then
    M.clear(buf, true)
  end
  if not config.options.auto_trigger then
    return
  end
  M.cancel(buf)
  st.timer = st.timer or vim.uv.new_timer()
  st.timer:stop()
  st.timer:start(config.options.debounce_ms, 0, vim.schedule_wrap(function()
    if api.nvim_buf_is_valid(buf) and api.nvim_get_mode().mode:sub(1, 1) == "i"
        and api.nvim_get_current_buf() == buf then
      M.request(buf, false)
    end
  end))
end

local function insert(buf, ghost, text)
  local lines = vim.split(text, "\n", { plain = true })
  api.nvim_buf_set_text(buf, ghost.row, ghost.col, ghost.row, ghost.col, lines)
  local row = ghost.row + #lines - 1
  local col = (#lines == 1 and ghost.col or 0) + #lines[#lines]
  local win = vim.fn.bufwinid(buf)
  if win ~= -1 then
    api.nvim_win_set_cursor(win, { row + 1, col })
  end
  return row, col
end

--- Accepts the first `part(text)` bytes of the suggestion (all of it without `part`).
---@return boolean accepted
local function accept_part(buf, part)
  buf = buf or api.nvim_get_current_buf()
  local st = buffers[buf]
  local ghost = st and st.ghost
  if not ghost then
    return false
  end
  M.cancel(buf)
  local text = part and part(ghost.text) or ghost.text
  if text == "" then
    return false
  end
  if #text >= #ghost.text then
    -- All of it: the server counts the whole suggestion as accepted.
    st.ghost = nil
    api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
    insert(buf, ghost, ghost.text)
    if ghost.id then
      notify(ghost.client_id, "sparkedit/didAccept", { id = ghost.id })
    end
    return true
  end
  local row, col = insert(buf, ghost, text)
  -- The rest stays on screen; lengths are cumulative, relative to the server's answer.
  ghost.consumed = ghost.consumed + client_mod.chars(text)
  ghost.text = ghost.text:sub(#text + 1)
  ghost.row, ghost.col = row, col
  ghost.prefix = (api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""):sub(1, col)
  render(buf, ghost)
  if ghost.id then
    notify(ghost.client_id, "sparkedit/didAccept",
      { id = ghost.id, acceptedLength = ghost.consumed })
  end
  return true
end

function M.accept(buf)
  return accept_part(buf, nil)
end

--- The next word: leading blanks, then a run of word characters or of other symbols.
function M.next_word(text)
  local word = text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+")
  return word or text
end

--- The rest of the current line, or the next line (with its line break) at a line end.
function M.next_line(text)
  if text:sub(1, 1) == "\n" then
    return text:match("^\n[^\n]*")
  end
  return text:match("^[^\n]*")
end

function M.accept_word(buf)
  return accept_part(buf, M.next_word)
end

function M.accept_line(buf)
  return accept_part(buf, M.next_line)
end

function M.dismiss(buf)
  buf = buf or api.nvim_get_current_buf()
  if not M.visible(buf) then
    return false
  end
  M.cancel(buf)
  M.clear(buf, true)
  return true
end

function M.detach(buf)
  local st = buffers[buf]
  if st then
    M.cancel(buf)
    M.clear(buf, true)
    if st.timer then
      st.timer:stop()
      st.timer:close()
    end
    buffers[buf] = nil
  end
end

--- Neovim 0.12+ draws inline completions itself; use it unless told not to.
function M.native()
  return config.options.native == "auto" and vim.lsp.inline_completion ~= nil
    and type(vim.lsp.inline_completion.enable) == "function"
end

--- Starts ghost text for `buf` (called once per buffer when the client attaches).
function M.attach(buf, client)
  if M.native() then
    pcall(vim.lsp.inline_completion.enable, config.options.auto_trigger, { bufnr = buf })
    return
  end
  local group = api.nvim_create_augroup("sparkedit.ghost." .. buf, { clear = true })
  api.nvim_create_autocmd({ "TextChangedI", "CursorMovedI" }, {
    group = group,
    buffer = buf,
    callback = function()
      M.on_change(buf)
    end,
  })
  api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = buf,
    callback = function()
      M.cancel(buf)
      M.clear(buf, true)
      buf_state(buf).seen = nil
    end,
  })
  api.nvim_create_autocmd({ "BufUnload", "LspDetach" }, {
    group = group,
    buffer = buf,
    callback = function(ev)
      if ev.event == "LspDetach" and ev.data and ev.data.client_id ~= client.id then
        return
      end
      M.detach(buf)
      pcall(api.nvim_del_augroup_by_id, group)
    end,
  })
end

--- Public entry points that pick the native path on 0.12+.
function M.trigger(buf)
  buf = buf or api.nvim_get_current_buf()
  if M.native() then
    local ok = pcall(vim.lsp.inline_completion.get, { bufnr = buf })
    return ok
  end
  return M.request(buf, true)
end

function M.accept_any(buf)
  if M.native() then
    local ok, accepted = pcall(vim.lsp.inline_completion.get, { bufnr = buf })
    return ok and accepted == true
  end
  return M.accept(buf)
end

return M
