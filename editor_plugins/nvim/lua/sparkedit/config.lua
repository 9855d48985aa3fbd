-- Options of require("sparkedit").setup(): defaults, merging and validation.
-- `settings` is not interpreted here: it goes to the server as initializationOptions.
local M = {}

M.defaults = {
  -- The server command. Anything that speaks the sparkedit LSP surface works.
  cmd = { "sparkedit", "lsp" },
  -- Buffers of these filetypes start (or join) the server; the server's own `languages`
  -- setting can narrow it further.
  filetypes = {
    "python", "javascript", "javascriptreact", "typescript", "typescriptreact",
    "rust", "go", "java", "c", "cpp",
  },
  -- The workspace root is the nearest folder holding one of these, else the file's folder.
  root_markers = { ".git" },
  -- Passed through as initializationOptions (target, model, baseUrl, backend, quant, budget,
  -- maxTokens, warmUp, warmBudget, languages, exclude, maxFileBytes,
  -- debounce = {minMs, maxMs}, statsFile, nextEdit).
  settings = {},
  -- Ask for ghost text while typing; false: only on require("sparkedit").trigger().
  auto_trigger = true,
  -- Coalesces the events of one keystroke; the server adds its own adaptive debounce.
  debounce_ms = 30,
  -- "auto": Neovim's own vim.lsp.inline_completion where it exists (0.12+), else the
  -- extmark renderer; false: always the extmark renderer (it has word and line accepts).
  native = "auto",
  -- Insert-mode keys while ghost text shows (each falls back to the key itself), and
  -- normal-mode keys while a next-edit preview shows (buffer-local, removed with it).
  -- Set a key to false to leave it unmapped.
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-w>",
    accept_line = "<M-l>",
    dismiss = "<C-]>",
    next_edit_accept = "<Tab>",
    next_edit_dismiss = "<Esc>",
  },
  next_edit = {
    -- Ask for a next edit on CursorHold (see 'updatetime') after the buffer changed.
    auto = false,
  },
}

local function validate(opts)
  vim.validate("cmd", opts.cmd, "table")
  vim.validate("cmd[1]", opts.cmd[1], "string")
  vim.validate("filetypes", opts.filetypes, "table")
  vim.validate("root_markers", opts.root_markers, "table")
  vim.validate("settings", opts.settings, "table")
  vim.validate("auto_trigger", opts.auto_trigger, "boolean")
  vim.validate("debounce_ms", opts.debounce_ms, "number")
  vim.validate("keymaps", opts.keymaps, "table")
  vim.validate("next_edit", opts.next_edit, "table")
  for name, key in pairs(opts.keymaps) do
    if key ~= false and type(key) ~= "string" then
      error(("keymaps.%s: a key (string) or false, got %s"):format(name, vim.inspect(key)))
    end
  end
end

M.options = vim.deepcopy(M.defaults)

--- Merges `opts` over the defaults. A bad option is reported and the defaults are kept.
---@return boolean ok
function M.set(opts)
  local merged = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  -- Lists replace, they do not merge index by index.
  for _, key in ipairs({ "cmd", "filetypes", "root_markers" }) do
    if opts and opts[key] ~= nil then
      merged[key] = opts[key]
    end
  end
  local ok, err = pcall(validate, merged)
  if not ok then
    err = tostring(err):gsub("^[^\n]-:%d+: ", "") -- the message, not where it was raised
    vim.notify("sparkedit: bad setup() option: " .. err .. " (using the defaults)",
      vim.log.levels.ERROR)
    M.options = vim.deepcopy(M.defaults)
    return false
  end
  M.options = merged
  return true
end

return M
