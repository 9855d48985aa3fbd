; Imported modules as written, for the workspace index. @import: a module name or path;
; @import.submodule: a name imported from a bare relative package (`from . import util`),
; recorded as the package prefix plus the name; @import.mod: a Rust `mod name;`.

(import_statement name: (dotted_name) @import)

(import_statement name: (aliased_import name: (dotted_name) @import))

(import_from_statement module_name: (_) @import)

(import_from_statement
  module_name: (relative_import . (import_prefix) .)
  name: [
    (dotted_name) @import.submodule
    (aliased_import name: (dotted_name) @import.submodule)
  ])
