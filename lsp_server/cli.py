"""The `sparkedit` command: one entry point, a subcommand per job.

Argument parsing only; each subcommand's work lives in its own module, imported lazily
so that `sparkedit lsp` does not pay for numpy and `sparkedit engine` does not pay for pygls.
"""

from __future__ import annotations

import argparse
import sys

from lsp_server.usage import BACKEND_CHOICES, QUANTS, UsageError

TARGETS = ("wafer-sim", "cerebras", "openai")


def _add_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=TARGETS, default="wafer-sim")
    parser.add_argument("--model", metavar="DIR|FILE.gguf|ID", default=None,
                        help="a Hugging Face model folder (config.json, safetensors, "
                             "tokenizer.json) or a GGUF file; defaults to the embedded model. "
                             "For a remote target: the remote model id")
    parser.add_argument("--base-url", metavar="URL", default=None,
                        help="address of a remote target")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                        help="compute backend of a local model: numpy (reference), ggml "
                             "(llama.cpp kernels; the ggml extra), or auto (the faster here)")
    parser.add_argument("--quant", choices=QUANTS, default=None,
                        help="ggml: weights a model folder is converted to (default q8_0); "
                             "a GGUF file is used as it is")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkedit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lsp = sub.add_parser("lsp", help="language server on stdio")
    lsp.add_argument("--tcp", metavar="HOST:PORT", default=None)
    lsp.add_argument("--stdio", action="store_true",
                     help="accepted for clients that always pass it; stdio is the default")
    lsp.add_argument("--log-level", default="INFO")
    _add_target_args(lsp)  # the engine the server starts on demand

    engine = sub.add_parser("engine", help="decode engine serving msgpack-RPC")
    where = engine.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH")
    where.add_argument("--tcp", metavar="HOST:PORT")
    _add_target_args(engine)
    engine.add_argument("--tokenizer", metavar="DIR", default=None,
                        help="remote targets: the local tokenizer's model folder "
                             "(default: the embedded model)")
    engine.add_argument("--log-level", default="INFO")
    engine.add_argument("--threads", type=int, default=None, metavar="N",
                        help="compute threads (default: every core)")
    engine.add_argument("--profile", metavar="NAME", default=None,
                        help="wafer-sim: the production model whose wafer timing answers "
                             "carry (a `sparkedit simulate --list-presets` name; default "
                             "qwen2.5-coder-32b)")
    engine.add_argument("--pace", action="store_true",
                        help="wafer-sim: stream tokens no faster than the simulated wafer")
    engine.add_argument("--parent-pid", type=int, default=None, metavar="PID",
                        help="exit when this process is gone (the language server that "
                             "started the engine passes its own)")

    suggest = sub.add_parser("suggest", help="one suggestion for a file, without an editor")
    suggest.add_argument("path", metavar="PATH", help="the file, or - for standard input")
    suggest.add_argument("--at", required=True, metavar="LINE:COL", help="1-based cursor position")
    suggest.add_argument("--instruction", default=None)
    suggest.add_argument("--mode", choices=("complete", "edit", "next-edit"), default=None,
                         help="complete (default), edit (with --instruction) or next-edit")
    suggest.add_argument("--diff", action="store_true",
                         help="print a unified diff (always, for edits)")
    suggest.add_argument("--apply", action="store_true",
                         help="write the result into the file (atomically, keeping a backup)")
    suggest.add_argument("--budget", type=int, default=2048, metavar="TOKENS")
    suggest.add_argument("--max-tokens", type=int, default=64)
    suggest.add_argument("--json", action="store_true")
    suggest.add_argument("--history", metavar="FILE.diff", default=None,
                         help="edit history: a unified diff of how the file reached its "
                              "text (default: its uncommitted changes, when in git)")
    suggest.add_argument("--drafters", metavar="LIST|none", default=None,
                         help="speculative drafters allowed, comma-separated from region, "
                              "previous, lookup; none for plain decoding (default: the "
                              "engine's)")
    _add_target_args(suggest)

    context = sub.add_parser("context", help="the context that would be sent for a cursor")
    context.add_argument("path", metavar="PATH", help="the file, or - for standard input")
    context.add_argument("--at", required=True, metavar="LINE:COL", help="1-based cursor position")
    context.add_argument("--budget", type=int, default=2048, metavar="TOKENS")
    context.add_argument("--root", default=None, metavar="DIR",
                         help="workspace root (default: the nearest folder with .git)")
    context.add_argument("--exclude", action="append", metavar="PATTERN",
                         help="gitignore-style pattern kept out of the context (repeatable)")
    context.add_argument("--remote", action="store_true",
                         help="as for a remote target: secrets redacted")
    context.add_argument("--model", metavar="DIR", default=None,
                         help="model folder whose tokenizer counts the budget")
    context.add_argument("--json", action="store_true")

    simulate = sub.add_parser("simulate", help="a production model's speed on Cerebras wafers")
    simulate.add_argument("--config", action="append", default=[], metavar="CONFIG.json",
                          help="a Hugging Face config.json (repeatable)")
    simulate.add_argument("--preset", action="append", default=[], metavar="NAME",
                          help="a shipped model preset (repeatable; see --list-presets)")
    simulate.add_argument("--context-tokens", type=int, default=8192, metavar="N")
    simulate.add_argument("--output-tokens", type=int, default=64, metavar="N")
    simulate.add_argument("--accepted-per-pass", type=float, default=1.0, metavar="A",
                          help="tokens accepted per verification pass (1: no speculation)")
    simulate.add_argument("--json", action="store_true")
    simulate.add_argument("--list-presets", action="store_true")
    simulate.add_argument("--calibration-report", action="store_true",
                          help="each published speed against the model's prediction")
    simulate.add_argument("--plot", metavar="FILE.png", default=None,
                          help="tokens/s against context length (needs the `plot` extra)")

    replay = sub.add_parser("replay", help="replay recorded typing through `sparkedit lsp`")
    replay.add_argument("sessions", nargs="+", metavar="SESSION.jsonl",
                        help="a typing session (JSON Lines: a header, then keystrokes)")
    replay.add_argument("--speed", type=float, default=1.0, metavar="X",
                        help="replay this many times faster than recorded (default 1)")
    replay.add_argument("--root", default=None, metavar="DIR",
                        help="workspace root (default: the nearest folder above the session "
                             "file with .git)")
    replay.add_argument("--json", action="store_true", help="one JSON object per session")
    replay.add_argument("--model", metavar="DIR|ID", default=None,
                        help="the server's model (default: the embedded model)")
    replay.add_argument("--target", choices=TARGETS, default=None,
                        help="the server's target (default: wafer-sim)")

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "lsp":
            from lsp_server.server import run_server

            return run_server(args)
        if args.command == "engine":
            from engine.server import run_engine

            return run_engine(args)
        if args.command == "suggest":
            from lsp_server.headless import run_suggest

            return run_suggest(args)
        if args.command == "context":
            from lsp_server.context_command import run_context

            return run_context(args)
        if args.command == "simulate":
            from lsp_server.simulate_command import run_simulate

            return run_simulate(args)
        if args.command == "replay":
            from lsp_server.replay_command import run_replay

            return run_replay(args)
    except UsageError as exc:
        print(f"sparkedit {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    # Under `python -m lsp_server.cli` this file is `__main__`, a second copy of the module;
    # `UsageError` is lsp_server.usage's in both, the class the commands raise.
    sys.exit(main())
