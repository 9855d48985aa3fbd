; Imported modules as written, for the workspace index (see python-imports.scm).

(use_declaration argument: (_) @import)

(mod_item name: (identifier) @import.mod !body)
