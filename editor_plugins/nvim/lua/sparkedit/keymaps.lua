-- Insert-mode keys for ghost text. Each acts only while a suggestion shows; otherwise the
-- key does what it did before setup() (its earlier mapping, or the key itself).
local M = {}

local function fallback_for(key)
  local previous = vim.fn.maparg(key, "i", false, true)
  if vim.tbl_isempty(previous) or previous.buffer == 1 then
    return function()
      vim.api.nvim_feedkeys(vim.keycode(key), "in", false)
    end
  end
  return function()
    local keys = previous.rhs
    if previous.callback then
      keys = previous.callback()
      if previous.expr ~= 1 then
        return
      end
    elseif previous.expr == 1 then
      keys = vim.api.nvim_eval(previous.rhs)
    end
    if type(keys) == "string" and keys ~= "" then
      if previous.replace_keycodes == 1 or previous.expr ~= 1 then
        keys = vim.keycode(keys)
      end
      vim.api.nvim_feedkeys(keys, previous.noremap == 1 and "in" or "im", false)
    end
  end
end

---@param actions table<string, fun(): boolean> keymap name -> action (true when it acted)
function M.set(keys, actions)
  for name, action in pairs(actions) do
    local key = keys[name]
    if key then
      local fallback = fallback_for(key)
      vim.keymap.set("i", key, function()
        if not action() then
          fallback()
        end
      end, { desc = "sparkedit: " .. name:gsub("_", " ") })
    end
  end
end

return M
