"""`sparkedit suggest`: one suggestion for a file, without an editor.

Starts a private engine and asks, at LINE:COL (1-based; COL counts Unicode code points in
the line), for a completion (`--mode complete`), the next edit (`--mode next-edit`) or an
instruction edit (`--mode edit --instruction TEXT`); prints the completion text or a
unified diff of the edit (`--diff` also for a completion), or the contract's JSON object;
`--apply` writes the result into the file atomically, keeping a backup, unless the file
changed since it was read or is read-only. Bad arguments raise `UsageError` (exit 2, one
line); an engine or file failure exits 1 with an explanation on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from engine.models import default_model_dir
from engine.rpc import EngineConnectionError, EngineError
from engine.token_table import TokenTable
from engine.tokenizer import load_tokenizer
from lsp_server.assistant import model_name
from lsp_server.completion import (
    DRAFTERS,
    STATS_KEYS,
    TIMING_KEYS,
    CompletionError,
    CompletionOptions,
    Suggestion,
    complete_in_workspace,
    effective_budget,
)
from lsp_server.diff_history import (
    DiffError,
    git_diff,
    history_sections,
    parse_unified_diff,
    record_history,
)
from lsp_server.documents import Document, Encoding, Position, PositionError
from lsp_server.edit_flow import EditSuggestion, predict_edit, why_no_edit
from lsp_server.engine_process import EngineOptions, EngineProcess, EngineStartError
from lsp_server.file_edits import (
    ApplyError,
    Change,
    apply_changes,
    edit_object,
    unified_diff,
    write_with_backup,
)
from lsp_server.usage import UsageError
from lsp_server.workspace import Workspace, WorkspaceSettings, find_root

log = logging.getLogger(__name__)

_AT = re.compile(r"^(\d+):(\d+)$")
MIN_BUDGET = 16  # three FIM markers plus a few tokens of context


class EngineFailure(Exception):
    """The engine failed; exit 1 with this message."""


def read_source(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8", newline="") as f:  # newline="": exact text
            return f.read()
    except FileNotFoundError as exc:
        raise UsageError(f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{path} is a directory, not a file") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def cursor_offset(text: str, at: str) -> int:
    """The string offset of 1-based LINE:COL, or UsageError saying what is wrong."""
    match = _AT.match(at.strip())
    if not match:
        raise UsageError(f"--at wants LINE:COL (1-based numbers), got {at!r}")
    line, col = int(match[1]), int(match[2])
    if line < 1 or col < 1:
        raise UsageError(f"--at {at}: LINE and COL start at 1")
    doc = Document(uri="headless", text=text)
    # COL counts code points, which is exactly the utf-32 position encoding.
    offset = doc.offset_at(Position(line=line - 1, character=col - 1), Encoding.UTF32)
    if isinstance(offset, PositionError):
        if line > doc.line_count:
            raise UsageError(f"--at {at} is outside the file: it has {doc.line_count} lines")
        length = len(doc.line_text(line - 1))
        raise UsageError(f"--at {at} is outside line {line}: it has {length} characters, "
                         f"so COL goes up to {length + 1}")
    return offset


def resolve_mode(args: argparse.Namespace) -> str:
    """The mode asked for: `--instruction` alone means an instruction edit."""
    mode = args.mode or ("edit" if args.instruction is not None else "complete")
    if mode == "edit" and not (args.instruction or "").strip():
        raise UsageError("--mode edit needs --instruction TEXT")
    if mode != "edit" and args.instruction is not None:
        raise UsageError(f"--instruction goes with --mode edit, not --mode {mode}")
    if args.apply and args.path == "-":
        raise UsageError("--apply needs a file, not standard input")
    return mode


def _check_args(args: argparse.Namespace) -> None:
    if args.base_url is not None:
        if args.target == "wafer-sim":
            raise UsageError("--base-url needs a remote target (--target cerebras|openai)")
        if not re.match(r"^https?://[^/\s]+", args.base_url):
            raise UsageError(f"--base-url must be an http(s) URL, got {args.base_url!r}")
    if args.budget < MIN_BUDGET:
        raise UsageError(f"--budget must be at least {MIN_BUDGET} tokens")
    if args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1")


def parse_drafters(value: str | None) -> tuple[str, ...] | None:
    """`--drafters`: None (the engine's default), () for `none`, else the names given."""
    if value is None:
        return None
    if value.strip().lower() == "none":
        return ()
    names = tuple(name.strip() for name in value.split(","))
    unknown = [name for name in names if name not in DRAFTERS]
    if unknown:
        raise UsageError(f"--drafters: unknown drafter {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(DRAFTERS)}, comma-separated, or none")
    return tuple(dict.fromkeys(names))  # in the order given, each once


def model_tokenizer(model: str | None) -> TokenTable:
    """The tokenizer of a model folder or GGUF file (the embedded model's by default)."""
    folder = Path(model) if model else default_model_dir()
    try:
        return load_tokenizer(folder)
    except (OSError, ValueError, ImportError) as exc:
        raise EngineFailure(f"cannot load the model's tokenizer from {folder}: {exc}") from exc


def open_workspace(tokenizer: TokenTable, text: str, *, uri: str, root: Path | None,
                   exclude: tuple[str, ...] = ()) -> tuple[Workspace, Document]:
    """The workspace of `root` (None: only the document itself is context), indexed, with
    the document open in it, as the language server would have it."""
    workspace = Workspace(tokenizer=tokenizer,
                          settings=WorkspaceSettings(root=root, exclude=exclude))
    workspace.build_index()
    doc = Document(uri=uri, text=text, version=0)
    workspace.opened(doc)
    return workspace, doc


async def _suggest(workspace: Workspace, doc: Document, offset: int,
                   engine_options: EngineOptions, options: CompletionOptions, mode: str,
                   instruction: str | None) -> tuple[Suggestion | EditSuggestion, dict[str, Any]]:
    engine = EngineProcess(engine_options)
    remote = engine_options.target != "wafer-sim"
    try:
        handle = await engine.handle()
        answer: Suggestion | EditSuggestion
        if mode == "complete":
            answer = await complete_in_workspace(workspace, doc, offset, engine=handle.client,
                                                 info=handle.info, options=options,
                                                 remote=remote)
        else:
            answer = await predict_edit(workspace, doc, offset, engine=handle.client,
                                        info=handle.info,
                                        budget=effective_budget(options, handle.info),
                                        instruction=instruction, remote=remote,
                                        drafters=options.drafters)
        return answer, handle.info
    except (EngineStartError, EngineConnectionError) as exc:
        raise EngineFailure(f"the engine failed: {exc}") from exc
    except EngineError as exc:
        raise EngineFailure(f"the engine refused the request: {exc.message} ({exc.code})") \
            from exc
    except CompletionError as exc:
        raise EngineFailure(str(exc)) from exc
    finally:
        await engine.stop()


def changes_of(answer: Suggestion | EditSuggestion, offset: int) -> list[Change]:
    """The answer as changes to the file: a completion inserts at the cursor."""
    if isinstance(answer, EditSuggestion):
        return [Change(start=e.start, end=e.end, new_text=e.new_text) for e in answer.edits]
    return [Change(start=offset, end=offset, new_text=answer.text)] if answer.text else []


def to_json(answer: Suggestion | EditSuggestion, info: dict[str, Any], mode: str, text: str,
            changes: list[Change], display_path: str) -> dict[str, Any]:
    """The contract's object: keys fixed, values None where not measured. For an edit,
    `text` is the unified diff and `edit` the changed span."""
    is_edit = isinstance(answer, EditSuggestion)
    after = apply_changes(text, changes)
    reason = why_no_edit(answer) if isinstance(answer, EditSuggestion) else None
    return {
        "mode": mode,
        "text": unified_diff(display_path, text, after) if is_edit else answer.text,
        "edit": edit_object(text, changes) if is_edit else None,
        "timing": {key: answer.timing.get(key) for key in TIMING_KEYS},
        "stats": {key: answer.stats.get(key) for key in STATS_KEYS},
        "model": {"name": model_name(info), "untrained": bool(info.get("untrained"))},
        **({"reason": reason} if reason else {}),
    }


def add_history(workspace: Workspace, doc: Document, offset: int, args: argparse.Namespace
                ) -> None:
    """The edit history the language server would have had: `--history FILE.diff`, else
    the file's uncommitted changes in git, else none. Raises UsageError for a `--history`
    that is missing, not a diff, or does not reverse-apply to the files it names."""
    cursor_line = doc.text.count("\n", 0, offset)
    path = workspace.display_path(doc.uri)
    if args.history is None:
        found = git_diff(Path(args.path)) if args.path != "-" else None
        if found is None:
            return
        try:
            for section in parse_unified_diff(found[0]):
                record_history(workspace.history, path, doc.text, section.hunks,
                               args.path, cursor_line=cursor_line, now=time.monotonic())
        except DiffError as exc:
            log.warning("no edit history: the file's git diff does not apply (%s)", exc)
        return
    try:
        sections = history_sections(read_source(args.history), f"--history {args.history}")
        root = workspace.settings.root
        for section in sections:
            own = len(sections) == 1 or section.path == path or (
                args.path != "-" and Path(args.path).as_posix().endswith(section.path))
            if own:
                record_history(workspace.history, path, doc.text, section.hunks, args.path,
                               cursor_line=cursor_line, now=time.monotonic())
                continue
            other = (root / section.path) if root is not None else None
            if other is None or not other.is_file():
                raise DiffError(f"--history {args.history} names {section.path}, which is "
                                "not a file of the workspace")
            record_history(workspace.history, section.path, read_source(str(other)),
                           section.hunks, section.path, cursor_line=None,
                           now=time.monotonic())
    except DiffError as exc:
        raise UsageError(str(exc)) from exc


def run_suggest(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="sparkedit suggest: %(message)s")
    mode = resolve_mode(args)
    _check_args(args)
    text = read_source(args.path)
    offset = cursor_offset(text, args.at)
    options = CompletionOptions(budget=args.budget, max_tokens=args.max_tokens,
                                drafters=parse_drafters(args.drafters))
    remote = args.target != "wafer-sim"
    # The engine's progress lines would drown the one-line note; its errors still show.
    engine_options = EngineOptions(model=args.model, target=args.target, base_url=args.base_url,
                                   backend=args.backend, quant=args.quant, log_level="WARNING")
    try:
        # A remote target's --model is its model id: the context is counted with the
        # embedded model's tokenizer, which the remote target reads token prompts with.
        tokenizer = model_tokenizer(None if remote else args.model)
        if args.path == "-":  # standard input: no root, only its own text is context
            uri, root = "untitled:stdin", None
        else:
            resolved = Path(args.path).resolve()
            uri, root = resolved.as_uri(), find_root(resolved)
        workspace, doc = open_workspace(tokenizer, text, uri=uri, root=root)
        add_history(workspace, doc, offset, args)
        answer, info = asyncio.run(_suggest(workspace, doc, offset, engine_options, options,
                                            mode, args.instruction))
    except EngineFailure as exc:
        print(f"sparkedit suggest: {exc}", file=sys.stderr)
        return 1
    changes = changes_of(answer, offset)
    shown_path = args.path if args.path != "-" else "stdin"
    after = apply_changes(text, changes)
    if args.json:
        print(json.dumps(to_json(answer, info, mode, text, changes, shown_path),
                         ensure_ascii=False))
    elif isinstance(answer, EditSuggestion) or args.diff:
        sys.stdout.write(unified_diff(shown_path, text, after))
    else:
        # Exactly the text, for pipes; a final newline only so a terminal prompt is not glued on.
        sys.stdout.write(answer.text)
        if sys.stdout.isatty() and not answer.text.endswith("\n"):
            sys.stdout.write("\n")
    reason = why_no_edit(answer) if isinstance(answer, EditSuggestion) else None
    if reason:
        print(f"sparkedit suggest: {reason}", file=sys.stderr)
    if bool(info.get("untrained")):
        print("sparkedit suggest: note: the model is untrained (random weights); "
              "this suggestion is not meaningful code", file=sys.stderr)
    if args.apply:
        if not changes:
            print("sparkedit suggest: nothing to apply", file=sys.stderr)
            return 0
        try:
            link = Path(args.path).absolute()  # the workspace the user named, not the target
            backup = write_with_backup(link, text, after, workspace=find_root(link))
        except ApplyError as exc:
            print(f"sparkedit suggest: {exc}", file=sys.stderr)
            return 1
        print(f"sparkedit suggest: applied to {args.path} (previous content in {backup})",
              file=sys.stderr)
    return 0
