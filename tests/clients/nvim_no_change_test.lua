-- An instruction edit that changes nothing, in headless Neovim against the real server on a
-- remote target that answers the selection unchanged (test_nvim_plugin.py starts it):
-- nothing is applied and the user is told. Same environment as nvim_plugin_test.lua.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local H = dofile(here .. "nvim_harness.lua")

vim.opt.rtp:prepend(vim.env.SPARKEDIT_NVIM_PLUGIN)
vim.cmd.runtime("plugin/sparkedit.lua")
H.capture_notifications()
H.record("SparkEditEdit")

local api = vim.api
local sparkedit = require("sparkedit")
local client_mod = require("sparkedit.client")

H.run(function()
  sparkedit.setup({
    cmd = vim.json.decode(vim.env.SPARKEDIT_NVIM_CMD),
    settings = { statsFile = "off" },
    auto_trigger = false,
  })
  vim.cmd.edit(vim.env.SPARKEDIT_NVIM_FILE)
  local buf = api.nvim_get_current_buf()
  local client = H.attached(buf, client_mod)
  if not client then
    return
  end
  local before = api.nvim_buf_get_lines(buf, 0, -1, false)
  local since = #H.results.notifications
  local edit_ev = H.next_event("SparkEditEdit", function()
    vim.cmd("1,2SparkEdit edit add a docstring")
  end, 30000)
  H.check(":SparkEdit edit answered", edit_ev ~= nil and edit_ev.error == nil, edit_ev)
  H.check("nothing is applied", edit_ev ~= nil and not edit_ev.applied, edit_ev)
  H.check("the buffer is unchanged",
    vim.deep_equal(api.nvim_buf_get_lines(buf, 0, -1, false), before))
  H.check("the user is told", H.wait(function()
    return H.notified("no change proposed", since) ~= nil
  end, 5000), H.results.notifications)
  client:stop()
end, vim.env.SPARKEDIT_NVIM_RESULTS, tonumber(vim.env.SPARKEDIT_NVIM_TIMEOUT_MS or "90000"))
