; Imported classes as written, for the workspace index (see python-imports.scm).

(import_declaration [(scoped_identifier) (identifier)] @import)
