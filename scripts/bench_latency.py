"""Keystroke -> inline completion latency through the real stdio language server and engine.

Replays typing of a real Python file: the document is opened with a stretch of the file
missing, then each round inserts the next character of that stretch (an incremental
didChange) and asks for an inline completion at the cursor. The round trip is timed from
sending the change to receiving the answer.

The baseline, measured in the same run, is the engine alone: the same prompt tokens sent
straight to a `sparkedit engine` over its socket with the same generation parameters. The
ratio of the two is what the language server adds (transport, documents, prompt building).

Prints a table and writes JSON (default bench_results/latency.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from lsp_server.completion import CompletionOptions, complete
from lsp_server.engine_process import EngineOptions, EngineProcess

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Summary:
    rounds: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> Summary:
        ordered = sorted(samples_ms)
        return cls(
            rounds=len(ordered),
            p50_ms=percentile(ordered, 50),
            p95_ms=percentile(ordered, 95),
            mean_ms=statistics.fmean(ordered),
            min_ms=ordered[0],
            max_ms=ordered[-1],
        )


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def typing_script(source: str, start_line: int, chars: int) -> tuple[str, int, str]:
    """(document with the typed stretch removed, cursor offset, the stretch to type)."""
    lines = source.splitlines(keepends=True)
    cursor = sum(len(line) for line in lines[: start_line - 1])
    typed = source[cursor : cursor + chars]
    return source[:cursor] + source[cursor + chars :], cursor, typed


def position_of(text: str, offset: int) -> types.Position:
    """utf-16 position of a character offset (the client negotiates utf-16, as VS Code does)."""
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    units = len(text[line_start:offset].encode("utf-16-le")) // 2
    return types.Position(line=line, character=units)


async def drain(stream: asyncio.StreamReader | None, sink: list[bytes]) -> None:
    # The server logs to stderr; an undrained pipe would eventually block it.
    while stream is not None and (chunk := await stream.read(65536)):
        sink.append(chunk)


async def bench_lsp(path: Path, start_line: int, rounds: int
                    ) -> tuple[list[float], list[float], list[dict]]:
    """Returns (round trip ms per keystroke, cold start ms, the completions)."""
    source = path.read_text()
    text, cursor, typed = typing_script(source, start_line, rounds + 1)
    uri = path.resolve().as_uri()
    client = LanguageClient("sparkedit-bench", "0")
    notices: list[str] = []

    @client.feature("sparkedit/status")
    def on_status(_client: LanguageClient, params: object) -> None:
        pass  # the engine's state changes; the bench needs only the answers

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(_client: LanguageClient, params: types.ShowMessageParams) -> None:
        notices.append(params.message)

    await client.start_io(sys.executable, "-m", "lsp_server.cli", "lsp", "--log-level", "WARNING")
    stderr: list[bytes] = []
    drainer = asyncio.create_task(drain(client._server.stderr, stderr))
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities()))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))

    async def complete() -> list[types.InlineCompletionItem]:
        answer = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(text, cursor),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        return answer.items if isinstance(answer, types.InlineCompletionList) else (answer or [])

    started = time.perf_counter()
    await complete()  # starts the engine and loads the model
    cold_ms = [(time.perf_counter() - started) * 1e3]

    samples, answers = [], []
    for version, char in enumerate(typed[:rounds], start=2):
        at = position_of(text, cursor)
        t0 = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=at, end=at), text=char)]))
        text, cursor = text[:cursor] + char + text[cursor:], cursor + 1
        items = await complete()
        samples.append((time.perf_counter() - t0) * 1e3)
        answers.append({"typed": char, "items": len(items),
                        "text": items[0].insert_text if items else ""})

    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.sleep(0.2)
    drainer.cancel()
    for notice in notices:
        print(f"server says: {notice}")
    return samples, cold_ms, answers


async def bench_engine(path: Path, start_line: int, rounds: int, options: CompletionOptions
                       ) -> tuple[list[float], list[dict]]:
    """The same keystrokes and the same prompt builder, sent straight to an engine."""
    source = path.read_text()
    text, cursor, typed = typing_script(source, start_line, rounds + 1)
    process = EngineProcess(EngineOptions(log_level="WARNING"))
    try:
        handle = await process.handle()
        samples, stats = [], []
        for char in typed[:rounds]:
            text, cursor = text[:cursor] + char + text[cursor:], cursor + 1
            t0 = time.perf_counter()
            suggestion = await complete(text, cursor, engine=handle.client, info=handle.info,
                                        options=options)
            samples.append((time.perf_counter() - t0) * 1e3)
            stats.append({**suggestion.stats, **{k: v for k, v in suggestion.timing.items()
                                                 if k != "simulated"}})
    finally:
        await process.stop()
    return samples, stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=REPO / "examples" / "sample.py")
    parser.add_argument("--start-line", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "bench_results" / "latency.json")
    args = parser.parse_args()

    # The language server runs with its default options; the baseline uses the same ones.
    options = CompletionOptions()
    lsp_ms, cold_ms, answers = asyncio.run(bench_lsp(args.file, args.start_line, args.rounds))
    engine_ms, engine_stats = asyncio.run(
        bench_engine(args.file, args.start_line, args.rounds, options))

    lsp, engine = Summary.of(lsp_ms), Summary.of(engine_ms)
    per_stage = {key: statistics.median(s[key] for s in engine_stats if s.get(key) is not None)
                 for key in ("prompt_tokens", "output_tokens", "forward_passes", "prefill_ms",
                             "ttft_ms", "decode_ms", "total_ms")
                 if any(s.get(key) is not None for s in engine_stats)}
    rows = [("keystroke -> ghost text (LSP + engine)", lsp),
            ("baseline: engine generate alone", engine)]
    print(f"\n{args.rounds} keystrokes on {args.file.name}, budget {options.budget} tokens, "
          f"max_tokens {options.max_tokens}, {os.cpu_count()} CPUs ({platform.machine()})")
    print(f"{'path':42} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'ratio p50':>10}")
    for name, summary in rows:
        print(f"{name:42} {summary.p50_ms:9.1f} {summary.p95_ms:9.1f} {summary.mean_ms:9.1f} "
              f"{summary.p50_ms / engine.p50_ms:10.2f}")
    print(f"cold start (engine spawn + model load + first completion): {cold_ms[0]:.0f} ms")
    print("engine medians: " + ", ".join(f"{k}={v:g}" for k, v in per_stage.items()))
    answered = sum(1 for a in answers if a["items"])
    print(f"rounds answered with a suggestion: {answered}/{len(answers)}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "latency",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "params": {"file": str(args.file.relative_to(REPO) if args.file.is_relative_to(REPO)
                               else args.file), "start_line": args.start_line,
                   "rounds": args.rounds, "budget": options.budget,
                   "max_tokens": options.max_tokens},
        "lsp_round_trip": asdict(lsp),
        "baseline_engine_only": asdict(engine),
        "ratio_p50": lsp.p50_ms / engine.p50_ms,
        "cold_start_ms": cold_ms[0],
        "engine_medians": per_stage,
        "answered": answered,
        "samples_ms": {"lsp": lsp_ms, "engine": engine_ms},
    }, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
