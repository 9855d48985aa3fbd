"""The context engine: what the model sees, packed exactly into a token budget.

Nothing in this package imports pygls; the language server and `sparkedit context` call
it. Modules, one idea each (the contracts below are what the other modules rely on):

- `languages.py` — `LanguageRegistry`: file extension / LSP language id -> `LanguageSpec`
  (name, tree-sitter `Language`, compiled tag `Query` from `queries/<name>-tags.scm`,
  scope node types). `registry.for_path(path) -> LanguageSpec | None`,
  `registry.for_language_id(id) -> LanguageSpec | None`, `registry.parser(spec) -> Parser`.
- `trees.py` — `DocumentTree`: one tree per open document, updated with `tree.edit` and an
  incremental re-parse: `DocumentTree(spec, text)`, `.apply_edit(start, removed, inserted)`
  (string offsets into the text before the edit), `.text`, `.source` (utf-8 bytes),
  `.tree`, `.byte_offset(char_offset)`.
- `tags.py` — `Tag` (name, kind, is_definition, line, start_byte, end_byte, def_start_line,
  def_end_line) and `extract_tags(spec, tree, source) -> list[Tag]`.
- `syntax.py` — `enclosing_scopes`, `cut_lines` (syntax boundaries for cutting prefix and
  suffix), `editable_region` (the syntax nodes around the cursor an edit rewrites).
- `files.py` — walking a workspace: `.gitignore`, the exclusion list, size limit, binary
  and unreadable files, symlink loops; `read_source(path) -> SourceFile | None`.
- `privacy.py` — `DEFAULT_EXCLUDES`, `ExclusionRules`, `redact_secrets(text) -> (text, n)`.
- `index.py` — `WorkspaceIndex`: definitions and references of every source file,
  kept current file by file, bounded memory.
- `ranking.py` — `rank_files(index, focus_files, focus_names) -> list[RankedFile]`:
  a personalised PageRank over files linked by references to definitions.
- `tokens.py` — `TokenCounter`: the model's tokenizer with a cache keyed by text.
- `assemble.py` — `build_context(...) -> Context`: segments in a fixed order (repository,
  recent files, definitions near the cursor, edit history, current file), exact to the
  budget, with stable cuts so that consecutive keystrokes share the token prefix.
"""
