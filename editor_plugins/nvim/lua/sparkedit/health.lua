-- :checkhealth sparkedit. Every problem comes with what to do about it.
local M = {}

local health = vim.health

local function check_neovim()
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.11") == 0 then
    health.error("Neovim " .. version .. " is too old", { "install Neovim 0.11 or newer" })
    return
  end
  health.ok("Neovim " .. version)
  if require("sparkedit.ghost").native() then
    health.info("ghost text: Neovim's vim.lsp.inline_completion (set native = false for "
      .. "word and line accepts)")
  else
    health.ok("ghost text: extmarks (whole, word and line accepts)")
  end
end

local function check_command(cmd)
  local why = require("sparkedit.client").missing_command(cmd)
  if why then
    health.error(why, {
      "pip install . in the sparkedit repository (a virtual environment whose bin/ is on $PATH)",
      "or point setup{ cmd = { '/path/to/sparkedit', 'lsp' } } at it",
    })
    return
  end
  health.ok(("server command found: %s"):format(vim.fn.exepath(cmd[1])))
  local argv = vim.list_extend(vim.deepcopy(cmd), { "--help" })
  local ok, result = pcall(function()
    return vim.system(argv, { text = true }):wait(20000)
  end)
  if not ok then
    health.error("`" .. table.concat(argv, " ") .. "` could not start: " .. tostring(result),
      { "check that the command is a working sparkedit installation" })
  elseif result.code ~= 0 then
    local err = vim.trim(result.stderr or "")
    health.error(("`%s` exited with %s: %s"):format(table.concat(argv, " "), tostring(result.code),
      err:sub(-400)),
      { "reinstall sparkedit (pip install . in its repository), then :checkhealth sparkedit" })
  else
    local usage = vim.split(vim.trim(result.stdout or ""), "\n")[1] or ""
    health.ok(("`%s` runs (%s)"):format(table.concat(argv, " "), usage))
  end
end

local function check_clients()
  local clients = vim.lsp.get_clients({ name = require("sparkedit.client").NAME })
  if #clients == 0 then
    health.warn("no sparkedit server is running", {
      "open a file of a configured filetype: "
        .. table.concat(require("sparkedit.config").options.filetypes, ", "),
      "see :LspLog (and :checkhealth vim.lsp) if the server exits at start",
    })
    return
  end
  for _, c in ipairs(clients) do
    local bufs = vim.tbl_keys(c.attached_buffers)
    health.ok(("server attached: client %d, root %s, %d buffer(s), positions in %s"):format(
      c.id, tostring(c.root_dir), #bufs, c.offset_encoding))
    local response = c:request_sync("sparkedit/status", vim.empty_dict(), 3000, bufs[1])
    local s = response and response.result
    if type(s) ~= "table" then
      health.warn("the server did not answer sparkedit/status", { "see :LspLog" })
    elseif s.state == "ready" then
      health.ok(("engine ready: %s, target %s"):format(tostring(s.model), tostring(s.target)))
    elseif s.state == "error" or s.state == "stopped" then
      health.error(("engine %s: %s"):format(s.state, tostring(s.message)),
        { "check the `model` / `target` settings; :SparkEdit status; :LspLog" })
    else
      health.info(("engine %s%s"):format(tostring(s.state),
        type(s.message) == "string" and s.message ~= "" and (": " .. s.message) or ""))
    end
  end
end

function M.check()
  health.start("sparkedit")
  local sparkedit = require("sparkedit")
  check_neovim()
  if not sparkedit.did_setup then
    health.warn("require('sparkedit').setup() has not run", { "call it from your config" })
  end
  check_command(require("sparkedit.config").options.cmd)
  check_clients()
end

return M
