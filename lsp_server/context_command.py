"""`sparkedit context PATH --at LINE:COL`: the context that would be sent, segment by segment.

So a user can see what the model sees. The workspace root is the nearest folder above the
file that holds `.git` (or `--root`); it is indexed first, as the language server does in
the background. Counting uses the model's own tokenizer, so `total_tokens` is exact.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server.context.assemble import Context, ContextOptions, context_json
from lsp_server.headless import cursor_offset, open_workspace, read_source
from lsp_server.usage import UsageError
from lsp_server.workspace import find_root

MIN_BUDGET = 16


def print_text(context: Context) -> None:
    out = sys.stdout
    for segment in context.segments:
        where = f" {segment.path}" if segment.path else ""
        out.write(f"──── {segment.kind}{where} ({len(segment.tokens)} tokens)\n")
        out.write(segment.text if segment.text.endswith("\n") else segment.text + "\n")
    out.write(f"──── {context.total_tokens} of {context.budget} tokens, "
              f"built in {context.build_ms:.1f} ms\n")


def _tokenizer(model: str | None) -> Tokenizer:
    folder = Path(model) if model else default_model_dir()
    if not (folder / "tokenizer.json").is_file():
        raise UsageError(f"--model {folder}: no tokenizer.json in that folder")
    return Tokenizer.from_dir(folder)


def run_context(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="sparkedit context: %(message)s")
    if args.budget < MIN_BUDGET:
        raise UsageError(f"--budget must be at least {MIN_BUDGET} tokens")
    text = read_source(args.path)
    offset = cursor_offset(text, args.at)
    path = Path(args.path).resolve() if args.path != "-" else Path.cwd() / "stdin"
    root = Path(args.root).resolve() if args.root else find_root(path)
    if not root.is_dir():
        raise UsageError(f"--root {args.root} is not a folder")
    started = time.perf_counter()
    workspace, doc = open_workspace(_tokenizer(args.model), text, uri=path.as_uri(), root=root,
                                    exclude=tuple(args.exclude or ()))
    index_ms = (time.perf_counter() - started) * 1000
    context = workspace.context(doc, offset, ContextOptions(budget=args.budget,
                                                            remote=args.remote))
    if args.json:
        answer = context_json(context)
        answer["index_ms"] = round(index_ms, 1)
        print(json.dumps(answer, ensure_ascii=False))
    else:
        print_text(context)
    return 0
