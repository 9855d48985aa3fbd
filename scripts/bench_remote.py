"""Remote-target client overhead: what `RemoteTarget.generate` adds to a streamed request.

The fake server of the tests (tests/remote/fake_server.py) runs in a process of its own on
127.0.0.1 and streams a scripted answer of N chunks (server-sent events, usage and
time_info in the last chunk). In the same run, rounds alternate between:

- `bare-async`: the same request (same JSON body) with a bare `httpx.AsyncClient` stream:
  `aiter_lines`, `json.loads` of each `data:` line, the content joined; driven by
  `loop.run_until_complete` per request exactly as the target drives its own loop;
- `bare-sync`: the same with a bare `httpx.Client` (what a minimal synchronous client costs);
- `target`: `CerebrasTarget.generate` on a token prompt of about 2k tokens: prompt decode
  and chat layout, the request, SSE parsing, stop matching, the cancel watcher, stats.

Overhead = target p50 - bare-async p50 (target: within 1 ms). Prints a table and writes
JSON (default bench_results/remote.json).
Usage: python scripts/bench_remote.py [--rounds 300] [--chunks 8,32,128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.models import default_model_dir  # noqa: E402
from engine.request import GenerateParams  # noqa: E402
from engine.targets.cerebras import CerebrasTarget  # noqa: E402
from engine.targets.remote_prompt import (  # noqa: E402
    chat_messages,
    parse_prompt,
    split_at_markers,
)
from engine.tokenizer import Tokenizer  # noqa: E402

KEY = "bench-dummy-key"
PROMPT_TOKENS = 2048


def start_server(counts: list[int]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "remote" / "fake_server.py"),
                             *map(str, counts)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def fim_prompt(tok: Tokenizer) -> tuple[int, ...]:
    """About PROMPT_TOKENS tokens of real code as a FIM prompt, cursor in the middle."""
    text = (REPO / "engine" / "generate.py").read_text()
    ids = tok.encode(text)[:PROMPT_TOKENS]
    half = len(ids) // 2
    sp = tok.special_ids
    return (sp["<|fim_prefix|>"], *ids[:half], sp["<|fim_suffix|>"], *ids[half:],
            sp["<|fim_middle|>"])


def body_for(tok: Tokenizer, tokens: tuple[int, ...], model: str) -> dict[str, Any]:
    parts = parse_prompt(split_at_markers(tok, tokens, tok.special_ids))
    return {"model": model, "stream": True, "max_completion_tokens": 256, "temperature": 0.0,
            "top_p": 1.0, "seed": 0, "messages": chat_messages(parts)}


def bare_async(base_url: str, body: dict[str, Any]) -> tuple[Callable[[], str], Callable]:
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(base_url=base_url + "/",
                               headers={"Authorization": f"Bearer {KEY}"})

    async def one() -> str:
        out = []
        async with client.stream("POST", "chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    if choices:
                        out.append(choices[0]["delta"].get("content") or "")
        return "".join(out)

    def close() -> None:
        loop.run_until_complete(client.aclose())
        loop.close()

    return (lambda: loop.run_until_complete(one())), close


def bare_sync(base_url: str, body: dict[str, Any]) -> tuple[Callable[[], str], Callable]:
    client = httpx.Client(base_url=base_url + "/", headers={"Authorization": f"Bearer {KEY}"})

    def one() -> str:
        out = []
        with client.stream("POST", "chat/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    if choices:
                        out.append(choices[0]["delta"].get("content") or "")
        return "".join(out)

    return one, client.close


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--chunks", default="8,32,128")
    ap.add_argument("--out", type=Path, default=REPO / "bench_results" / "remote.json")
    args = ap.parse_args()
    counts = [int(c) for c in args.chunks.split(",")]
    tok = Tokenizer.from_dir(default_model_dir())
    tokens = fim_prompt(tok)
    proc, base_url = start_server(counts)
    rows: list[dict[str, Any]] = []
    try:
        for n in counts:
            model = f"bench-{n}"
            body = body_for(tok, tokens, model)
            target = CerebrasTarget.from_settings(base_url=base_url, model=model, api_key=KEY,
                                                  env={}, tokenizer=tok)
            params = GenerateParams(tokens=tokens, max_tokens=256, seed=0)
            a_run, a_close = bare_async(base_url, body)
            s_run, s_close = bare_sync(base_url, body)
            variants: dict[str, Callable[[], str]] = {
                "bare-async": a_run, "bare-sync": s_run,
                "target": lambda t=target, p=params: t.generate(p).text}
            expected = "".join(f"tok{i} " for i in range(n))
            times: dict[str, list[float]] = {name: [] for name in variants}
            for i in range(args.warmup + args.rounds):
                for name, run in variants.items():
                    started = time.perf_counter()
                    text = run()
                    elapsed = (time.perf_counter() - started) * 1e3
                    assert text == expected, f"{name}: {text[:40]!r}"
                    if i >= args.warmup:
                        times[name].append(elapsed)
            a_close()
            s_close()
            target.close()
            row: dict[str, Any] = {"chunks": n, "rounds": args.rounds}
            for name, values in times.items():
                row[name] = {"p50_ms": statistics.median(values),
                             "p90_ms": percentile(values, 0.9),
                             "mean_ms": statistics.fmean(values)}
            row["overhead_p50_ms"] = row["target"]["p50_ms"] - row["bare-async"]["p50_ms"]
            row["overhead_vs_sync_p50_ms"] = row["target"]["p50_ms"] - row["bare-sync"]["p50_ms"]
            rows.append(row)
    finally:
        proc.terminate()
        proc.wait(5)

    print(f"remote client overhead: {len(tokens)}-token FIM prompt, chat layout, fake server "
          f"in its own process on 127.0.0.1, {args.rounds} rounds (after {args.warmup} warm-up)")
    head = (f"{'chunks':>6} | {'bare-async p50':>14} | {'bare-sync p50':>13} | "
            f"{'target p50':>10} | {'target p90':>10} | {'overhead p50':>12} | {'vs sync':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['chunks']:>6} | {r['bare-async']['p50_ms']:>11.3f} ms | "
              f"{r['bare-sync']['p50_ms']:>10.3f} ms | {r['target']['p50_ms']:>7.3f} ms | "
              f"{r['target']['p90_ms']:>7.3f} ms | {r['overhead_p50_ms']:>9.3f} ms | "
              f"{r['overhead_vs_sync_p50_ms']:>5.3f} ms")
    ok = all(r["overhead_p50_ms"] <= 1.0 for r in rows)
    print(f"target (overhead <= 1 ms at p50 against bare-async): {'met' if ok else 'NOT met'}")
    report = {
        "benchmark": "remote client overhead",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "httpx": httpx.__version__},
        "prompt_tokens": len(tokens), "rows": rows, "target_met": ok,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
