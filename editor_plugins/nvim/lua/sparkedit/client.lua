-- The language client: start `sparkedit lsp` for a buffer, find it again, and keep the
-- last `sparkedit/status` notification it sent.
local config = require("sparkedit.config")

local M = {}

M.NAME = "sparkedit"
M.last_status = {} ---@type table<integer, table> client id -> sparkedit/status payload
local last_focus = {} ---@type table<integer, string> client id -> the last didFocus sent

local warned_missing = false

--- The sparkedit client attached to `buf`, if any.
---@return vim.lsp.Client?
function M.get(buf)
  return vim.lsp.get_clients({ name = M.NAME, bufnr = buf or vim.api.nvim_get_current_buf() })[1]
end

---@return string? why the command cannot run, or nil when it can
function M.missing_command(cmd)
  cmd = cmd or config.options.cmd
  if vim.fn.executable(cmd[1]) == 1 then
    return nil
  end
  return ("`%s` was not found on $PATH: install sparkedit (`pip install .` in its repository) "
    .. "or set require(\"sparkedit\").setup{ cmd = {...} }"):format(cmd[1])
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = { dynamicRegistration = false }
  return caps
end

local handlers = {
  ["sparkedit/status"] = function(_, result, ctx)
    if type(result) == "table" then
      M.last_status[ctx.client_id] = result
      vim.api.nvim_exec_autocmds("User",
        { pattern = "SparkEditStatus", data = result, modeline = false })
    end
  end,
  -- The server's messages ("sparkedit: no change proposed for the selection", ...) go
  -- through vim.notify like the plugin's own, rather than Neovim's default :echo.
  ["window/showMessage"] = function(_, params)
    if type(params) == "table" and type(params.message) == "string" then
      local levels = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO }
      vim.notify(params.message, levels[params.type] or vim.log.levels.INFO)
    end
    return params
  end,
}

--- Starts the server for `buf` (or attaches the running one with the same root).
---@return integer? client id
function M.start(buf)
  local opts = config.options
  local why = M.missing_command(opts.cmd)
  if why then
    if not warned_missing then
      warned_missing = true
      vim.notify("sparkedit: " .. why, vim.log.levels.ERROR)
    end
    return nil
  end
  local name = vim.api.nvim_buf_get_name(buf)
  local root = vim.fs.root(buf, opts.root_markers)
    or (name ~= "" and vim.fs.dirname(name))
    or vim.uv.cwd()
  return vim.lsp.start({
    name = M.NAME,
    cmd = opts.cmd,
    root_dir = root,
    init_options = opts.settings,
    capabilities = capabilities(),
    handlers = handlers,
    flags = {
      -- Every keystroke reaches the server at once: it cancels the request in flight and
      -- paces its adaptive debounce by them.
      debounce_text_changes = 0,
      -- On :qa, wait for the server to stop its engine (Neovim's default is to exit at
      -- once, which can leave the engine process running).
      exit_timeout = 3000,
    },
    on_exit = function(_, _, client_id)
      M.last_status[client_id] = nil
      last_focus[client_id] = nil
    end,
  }, { bufnr = buf })
end

--- `{textDocument = {uri}, position}` at the cursor of the window showing `buf`, in the
--- client's position encoding, plus the cursor as (0-based row, byte col).
function M.position_params(client, buf)
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    return nil
  end
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding)
  local cursor = vim.api.nvim_win_get_cursor(win)
  return params, cursor[1] - 1, cursor[2]
end

--- Byte column of an LSP position on a line of `buf`.
function M.byte_col(buf, position, encoding)
  local line = vim.api.nvim_buf_get_lines(buf, position.line, position.line + 1, false)[1]
  if line == nil then
    return 0
  end
  local ok, col = pcall(vim.str_byteindex, line, encoding, position.character, false)
  return ok and col or #line
end

--- An LSP position (in `encoding`) for a 0-based row and byte column of `buf`.
function M.lsp_position(buf, row, col, encoding)
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  col = math.min(col, #line)
  return { line = row, character = vim.str_utfindex(line, encoding, col, false) }
end

--- Characters (code points, as the server counts them) in `text`.
function M.chars(text)
  return vim.str_utfindex(text, "utf-32")
end

--- Tells the server that `buf` is the buffer being edited, with the cursor of its window
--- (`sparkedit/didFocus`): the server warms the engine up for it before the first key.
--- Nothing for a buffer without a sparkedit client; the same focus twice is sent once.
function M.focus(buf)
  local client = M.get(buf)
  if not client then
    return false
  end
  local params = { textDocument = { uri = vim.uri_from_bufnr(buf) } }
  local win = buf == vim.api.nvim_get_current_buf() and vim.api.nvim_get_current_win()
    or vim.fn.bufwinid(buf)
  if win ~= -1 then
    params.position = vim.lsp.util.make_position_params(win, client.offset_encoding).position
  end
  local key = vim.json.encode(params)
  if last_focus[client.id] == key then
    return false
  end
  last_focus[client.id] = key
  return client:notify("sparkedit/didFocus", params)
end

--- Asks the server for its status; `on_status(status)` gets the payload or nil.
function M.status(buf, on_status)
  local client = M.get(buf)
  if not client then
    on_status(nil, "no sparkedit server is attached to this buffer")
    return
  end
  client:request("sparkedit/status", vim.empty_dict(), function(err, result)
    if err then
      on_status(nil, err.message)
    else
      M.last_status[client.id] = result
      on_status(result)
    end
  end, buf)
end

return M
