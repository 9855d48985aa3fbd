; Included files as written, for the workspace index (see python-imports.scm).

(preproc_include path: (string_literal (string_content) @import))

(preproc_include path: (system_lib_string) @import)
