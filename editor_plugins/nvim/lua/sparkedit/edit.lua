-- Instruction edits: `workspace/executeCommand sparkedit.editSelection [uri, range,
-- instruction]` on a range of lines or a visual selection; the server answers a versioned
-- WorkspaceEdit, applied as is (Neovim refuses it if the buffer changed meanwhile).
local client_mod = require("sparkedit.client")

local api = vim.api
local M = {}

local function event(buf, data)
  data.buf = buf
  api.nvim_exec_autocmds("User", { pattern = "SparkEditEdit", data = data, modeline = false })
end

--- The LSP range of a `:command` range: the characters of a charwise visual selection on
--- exactly those lines, else whole lines (line1 and line2 are 1-based, inclusive).
function M.command_range(buf, line1, line2, encoding)
  local vstart, vend = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  if vim.fn.visualmode() == "v" and vstart[2] == line1 and vend[2] == line2 then
    local last = api.nvim_buf_get_lines(buf, line2 - 1, line2, false)[1] or ""
    -- '> is the first byte of the last selected character.
    local char_end = vend[3] - 1 + #vim.fn.strcharpart(last:sub(vend[3]), 0, 1)
    return {
      start = client_mod.lsp_position(buf, line1 - 1, vstart[3] - 1, encoding),
      ["end"] = client_mod.lsp_position(buf, line2 - 1, math.min(char_end, #last), encoding),
    }
  end
  local count = api.nvim_buf_line_count(buf)
  local stop = line2 < count and { line = line2, character = 0 }
    or client_mod.lsp_position(buf, line2 - 1, math.huge, encoding)
  return { start = { line = line1 - 1, character = 0 }, ["end"] = stop }
end

--- Asks the server to rewrite `range` of `buf` following `instruction`, then applies it.
function M.request(buf, range, instruction)
  local client = client_mod.get(buf)
  if not client then
    vim.notify("sparkedit: no sparkedit server is attached to this buffer", vim.log.levels.WARN)
    return false
  end
  if type(instruction) ~= "string" or vim.trim(instruction) == "" then
    vim.notify("sparkedit: say what to do, e.g. :'<,'>SparkEdit edit add type hints",
      vim.log.levels.WARN)
    return false
  end
  local params = {
    command = "sparkedit.editSelection",
    arguments = { vim.uri_from_bufnr(buf), range, instruction },
  }
  return client:request("workspace/executeCommand", params, function(err, result)
    if err then
      vim.notify("sparkedit: edit failed: " .. tostring(err.message), vim.log.levels.WARN)
      event(buf, { error = err.message })
    elseif type(result) ~= "table" then
      -- the server says why in a window/showMessage (no change proposed, does not parse…)
      event(buf, { applied = false })
    else
      vim.lsp.util.apply_workspace_edit(result, client.offset_encoding)
      event(buf, { applied = true, edit = result })
    end
  end, buf)
end

return M
