"""The context engine: what the model sees, packed exactly into a token budget.

Nothing in this package imports pygls; the language server and `sparkedit context` call
it. Modules, one idea each (the contracts below are what the other modules rely on):

- `languages.py` — `LanguageRegistry`: file extension / LSP language id -> `LanguageSpec`
  (name, tree-sitter `Language`, compiled tag `Query` from `queries/<name>-tags.scm`,
  scope node types). `registry.for_path(path) -> LanguageSpec | None`,
  `registry.for_language_id(id) -> LanguageSpec | None`, `registry.parser(spec) -> Parser`.
- `trees.py` — `DocumentTree(spec, text, parser=None)`: one tree per open document, updated
  with `tree.edit` and an incremental re-parse: `.apply_edit(start, removed, inserted)`
  (string offsets into the text before the edit), `.text` and `.source` (copies made on
  first read after an edit), `.char_count`, `.tree`, `.byte_offset(char_offset)`.
- `tags.py` — `Tag` (name, kind, is_definition, line, start_byte, end_byte, def_start_line,
  def_end_line) and `extract_tags(spec, tree, source) -> list[Tag]`.
- `syntax.py` — `enclosing_scopes`, `cut_lines` (syntax boundaries for cutting prefix and
  suffix), `editable_region` (the syntax nodes around the cursor an edit rewrites),
  `block_end_line`.
- `imports.py` — import queries (`queries/<name>-imports.scm`) and `resolve_import`.
- `files.py` — walking a workspace: `.gitignore`, the exclusion list, size limit, binary
  and unreadable files, symlink loops and links out of the root; `WorkspaceFiles.read`.
- `privacy.py` — `DEFAULT_EXCLUDES`, `ExclusionRules`, `redact_secrets(text) -> (text, n)`.
- `index.py` — `WorkspaceIndex`: definitions, references and imports of every source
  file, kept current file by file, bounded memory; no file texts kept.
- `ranking.py` — `rank_files` / `RankingCache.rank`: a personalised PageRank over files
  linked by references to definitions (aider's repository map).
- `tokens.py` — `TokenCounter`: the model's tokenizer with a cache keyed by text.
- `text_cache.py` — `TextCache`: file texts and redactions, bounded, least recent dropped.
- `history_entry.py` — `HistoryEntry`: one burst of edits as a unified diff (the language
  server's `EditHistory` records them).
- `healing.py` — `healable_text`: which prompt endings token healing may re-choose.
- `layout.py` — segment and context types, the budget split, the special-token layout,
  `context_json`, `shared_prefix`.
- `chunks.py` / `window.py` — the current file in cached token chunks; prefix and suffix
  cuts that stay put while typing.
- `related.py` — repository, recent files, edit history and definitions near the cursor.
- `assemble.py` — `ContextBuilder.build(...) -> Context`: segments in a fixed order
  (repository, recent files, definitions near the cursor, more of the repository in the
  room left, edit history, current file), exact to the budget, with stable cuts so
  consecutive keystrokes share the token prefix.
"""
