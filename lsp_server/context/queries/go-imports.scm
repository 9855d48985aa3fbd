; Imported packages as written, for the workspace index (see python-imports.scm).

(import_spec path: (interpreted_string_literal (interpreted_string_literal_content) @import))
