-- :SparkEdit and the highlight groups. Nothing starts before require("sparkedit").setup().
if vim.g.loaded_sparkedit then
  return
end
vim.g.loaded_sparkedit = true
require("sparkedit.commands").create()
