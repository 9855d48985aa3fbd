-- :SparkEdit {subcommand} and the highlight groups; created once, by plugin/sparkedit.lua
-- or by setup() (a plugin manager may add the folder to 'runtimepath' after startup).
local M = {}

local created = false

local function highlights()
  vim.api.nvim_set_hl(0, "SparkEditGhost", { link = "Comment", default = true })
  vim.api.nvim_set_hl(0, "SparkEditAdd", { link = "DiffAdd", default = true })
  vim.api.nvim_set_hl(0, "SparkEditDelete", { link = "DiffDelete", default = true })
end

local subcommands = {
  status = function() require("sparkedit").status() end,
  trigger = function() require("sparkedit").trigger() end,
  nextEdit = function() require("sparkedit").next_edit() end,
  acceptEdit = function()
    if not require("sparkedit").accept_edit() then
      vim.notify("sparkedit: no next edit to accept", vim.log.levels.INFO)
    end
  end,
  dismissEdit = function() require("sparkedit").dismiss_edit() end,
  edit = function(opts, rest)
    require("sparkedit").edit(rest, opts.line1, opts.line2)
  end,
  toggle = function()
    local options = require("sparkedit.config").options
    options.auto_trigger = not options.auto_trigger
    vim.notify("sparkedit: ghost text while typing " .. (options.auto_trigger and "on" or "off"))
  end,
  restart = function()
    local bufs = {}
    for _, c in ipairs(vim.lsp.get_clients({ name = "sparkedit" })) do
      vim.list_extend(bufs, vim.tbl_keys(c.attached_buffers))
      c:stop()
    end
    vim.defer_fn(function()
      for _, buf in ipairs(bufs) do
        if vim.api.nvim_buf_is_valid(buf) then
          require("sparkedit.client").start(buf)
        end
      end
    end, 500)
  end,
}

local function run(opts)
  local name, rest = opts.args:match("^(%S+)%s*(.*)$")
  local action = name and subcommands[name]
  if not action then
    local names = table.concat(vim.fn.sort(vim.tbl_keys(subcommands)), "|")
    vim.notify("sparkedit: :SparkEdit " .. names, vim.log.levels.WARN)
    return
  end
  action(opts, rest)
end

local function complete(lead, line)
  if line:match("SparkEdit%s+%S+%s") then
    return {} -- past the subcommand
  end
  return vim.tbl_filter(function(n)
    return vim.startswith(n, lead)
  end, vim.fn.sort(vim.tbl_keys(subcommands)))
end

function M.create()
  if created then
    return
  end
  created = true
  highlights()
  vim.api.nvim_create_autocmd("ColorScheme", {
    group = vim.api.nvim_create_augroup("sparkedit.highlights", { clear = true }),
    callback = highlights,
  })
  vim.api.nvim_create_user_command("SparkEdit", run, {
    nargs = "+",
    range = true,
    complete = complete,
    desc = "sparkedit: status, trigger, nextEdit, acceptEdit, dismissEdit, edit {instruction}, "
      .. "toggle, restart",
  })
end

return M
