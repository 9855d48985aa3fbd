"""Backend benchmark (issue 12): sparkedit's engine on ggml against llama.cpp's own Python API.

Side by side in one run, on the same GGUF files, the same threads and the same context
settings (n_ctx, n_batch, flash attention, float16 keys/values):

- peer: llama-cpp-python's own ``Llama`` (its ``generate``, plain and with its
  ``LlamaPromptLookupDecoding`` drafter);
- ours: sparkedit's ``generate`` on ``GgmlModel``, plain (``drafters: []``) and with its
  default drafters.

a. Random weights with Qwen2.5-Coder-0.5B's and 1.5B's published configs at q8_0 and bf16:
   prefill tokens/s (512-token prompt), decode tokens/s (64 greedy tokens), the cost of a
   1- and a 17-token pass, peak RSS; and for ours a perfect draft (the model's own greedy
   output as the region draft).
b. The 72 real edits of tests/data/edits/ with the embedded model converted to GGUF
   (q8_0): tokens/s of each mode over the whole edit, outputs compared token for token.
c. First token after a keystroke at an 8k-token context: 64 new tokens after a cached
   8k prefix, then one token (0.5B q8_0).
d. Qwen2.5-Coder-7B's published config at q4_k_m: loads, decodes, RSS (ours only).
e. ``sparkedit lsp`` on the 0.5B q8_0 (with a vocabulary): open an 8k-token file, time the
   first suggestion (served at the warm budget) and the full context's warm-up.

Every engine runs in a fresh subprocess (``--worker``) so that RSS is its own.
Prints tables and writes JSON (default bench_results/backends.json).
Usage: python scripts/bench_backends.py [--parts a,b,c,d] [--edits N] [--models DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from backend_bench_workers import (  # noqa: E402
    DECODE,
    FLASH_ATTN,
    N_BATCH,
    N_CTX,
    PROMPT,
    THREADS,
    worker_big,
    worker_cold,
    worker_edits,
    worker_model,
    worker_ttft,
)

CONFIGS = REPO / "tests" / "data" / "reference" / "configs"
PRESETS = REPO / "engine" / "targets" / "data" / "presets"

async def open_to_warm(model: Path, source: Path, budget: int) -> dict[str, Any]:
    """A real ``sparkedit lsp`` on ``model`` (ggml): open ``source`` (about ``budget`` tokens)
    and say it is focused, then time the first suggestion and the full context's warm-up,
    then one keystroke on the warm context."""
    import tempfile

    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    root = Path(tempfile.mkdtemp(prefix="sparkedit-bench-"))
    (root / ".git").mkdir()
    doc = root / source.name
    text = source.read_text()
    doc.write_text(text)
    uri = doc.as_uri()
    lines = text.splitlines()
    cursor = types.Position(line=len(lines) - 1, character=len(lines[-1]))
    client = LanguageClient("bench", "1")
    for method in ("sparkedit/status", types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE):
        client.feature(method)(lambda *_: None)  # read on request, not as they come
    await client.start_io(sys.executable, "-m", "lsp_server.cli", "lsp", "--model", str(model),
                          "--backend", "ggml", "--log-level", "WARNING")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=root.as_uri(),
        initialization_options={"budget": budget, "maxTokens": 16, "statsFile": None}))
    client.initialized(types.InitializedParams())

    async def status() -> dict[str, Any]:
        from lsp_server.replay import plain

        return plain(await client.protocol.send_request_async("sparkedit/status", None))

    def complete() -> Any:
        return client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=cursor,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked)))

    t0 = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                             text=text)))
    client.protocol.notify("sparkedit/didFocus", {"textDocument": {"uri": uri},
                                                  "position": {"line": cursor.line,
                                                               "character": cursor.character}})
    await complete()
    first_s = time.perf_counter() - t0
    first = (await status()).get("lastStats", {})
    warm_s = None
    while time.perf_counter() - t0 < 900:
        entries = (await status()).get("warm") or []
        if any(e.get("uri") == uri and e.get("complete") and e.get("budget") == budget
               for e in entries):
            warm_s = time.perf_counter() - t0
            break
        await asyncio.sleep(0.25)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=cursor, end=cursor), text="\n")]))
    cursor = types.Position(line=cursor.line + 1, character=0)
    t1 = time.perf_counter()
    await complete()
    keystroke_ms = 1e3 * (time.perf_counter() - t1)
    warm = (await status()).get("lastStats", {})
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {"first_suggestion_s": first_s, "first_prompt_tokens": first.get("prompt_tokens"),
            "warm_full_context_s": warm_s, "keystroke_after_warm_ms": keystroke_ms,
            "warm_prompt_tokens": warm.get("prompt_tokens"),
            "warm_cached_tokens": warm.get("cached_prompt_tokens")}


def part_e(models_dir: Path, results: dict[str, Any], budget: int = 8192) -> None:
    import asyncio as aio

    from random_gguf import make

    from engine.models import default_model_dir
    from engine.tokenizer import load_tokenizer

    path = make(CONFIGS / "qwen2.5-coder-0.5b.json", models_dir, ["q8_0"],
                vocab_from=default_model_dir())["q8_0"]
    tok = load_tokenizer(path)
    source = Path(os.__file__).with_name("argparse.py")
    kept, total = [], 0
    for line in source.read_text().splitlines(keepends=True):
        total += len(tok.encode(line))
        if total > budget - 400:
            break
        kept.append(line)
    sample = models_dir / "argparse_8k.py"
    sample.write_text("".join(kept))
    out = aio.run(open_to_warm(path, sample, budget))
    cold = run_worker("cold", str(path), str(out["warm_prompt_tokens"]))["cold_prefill_s"]
    out["llama_cpp_cold_prefill_s"] = cold
    results["e"] = out
    print(table(f"e. sparkedit lsp, 0.5B q8_0: open an {budget}-token file (argparse.py cut)",
                ["first suggestion s (prompt tokens)", "full context warm s",
                 "keystroke after warm ms (cached/prompt)",
                 "llama.cpp cold prefill of the full prompt s"],
                [[f"{out['first_suggestion_s']:.1f} ({out['first_prompt_tokens']})",
                  f"{out['warm_full_context_s']:.1f}" if out["warm_full_context_s"] else "-",
                  f"{out['keystroke_after_warm_ms']:.0f} ({out['warm_cached_tokens']}/"
                  f"{out['warm_prompt_tokens']})",
                  f"{cold:.1f}"]]), flush=True)


# ---------------------------------------------------------------------------- driver


def run_worker(*args: str, timeout: float = 3600, pythonpath: str | None = None
               ) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    env = dict(os.environ)
    if pythonpath:  # another llama_cpp package ahead of the installed one
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    lines = [f"\n{title}\n", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def part_a(models_dir: Path, results: dict[str, Any], stock: str | None = None) -> None:
    from random_gguf import make

    rows = []
    for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        paths = make(CONFIGS / f"{name}.json", models_dir, ["q8_0", "bf16"])
        for quant, path in paths.items():
            peer = run_worker("peer", "model", str(path))
            ours = run_worker("ours", "model", str(path))
            results.setdefault("a", {})[f"{name}/{quant}"] = {"peer": peer, "ours": ours,
                                                              "path": str(path)}
            ratio = ours["decode_tps"] / peer["decode_tps"]
            rows.append([f"{name} {quant}",
                         f"{peer['prefill_tps']:.0f} / {ours['prefill_tps']:.0f}",
                         f"{peer['decode_tps']:.1f} / {ours['decode_tps']:.1f} ({ratio:.2f}x)",
                         f"{peer['pass1_ms']:.1f} / {ours['pass1_ms']:.1f}",
                         f"{peer['pass17_ms']:.1f} / {ours.get('pass17_last_ms', 0):.1f} / "
                         f"{ours['pass17_ms']:.1f}",
                         f"{peer['peak_rss_mb']:.0f} / {ours['peak_rss_mb']:.0f} "
                         f"({ours['peak_rss_mb'] / peer['peak_rss_mb']:.2f}x)",
                         f"{ours['perfect_decode_tps']:.1f} "
                         f"({ours['perfect_decode_tps'] / ours['decode_tps']:.2f}x, "
                         f"{'same' if ours['perfect_identical'] else 'DIFFERENT'})"])
    if stock:
        stock_rows = []
        for key, pair in results["a"].items():
            pair["peer_stock"] = run_worker("peer", "model", str(pair["path"]), pythonpath=stock)
            m = pair["peer_stock"]
            stock_rows.append([key, f"{m['prefill_tps']:.0f}", f"{m['decode_tps']:.1f}",
                               f"{m['pass1_ms']:.1f}", f"{m['pass17_ms']:.1f}",
                               f"{pair['ours']['decode_tps'] / m['decode_tps']:.2f}x"])
        print(table("a'. the same with a stock llama-cpp-python build (llamafile's sgemm on: "
                    "faster batches, verification rows that round differently)",
                    ["model", "prefill tok/s", "decode tok/s", "1-token pass ms",
                     "17-token pass ms", "ours (exact build) / stock decode"], stock_rows),
              flush=True)
    print(table("a. llama.cpp's Llama / sparkedit on ggml, same file, 2 threads "
                "(prefill 512 tokens; decode 64 greedy tokens)",
                ["model", "prefill tok/s", "decode tok/s (ratio)", "1-token pass ms",
                 "17-token pass ms (ours: 1 / 17 logit rows)", "peak RSS MB (ratio)",
                 "ours, perfect draft tok/s"],
                rows), flush=True)


def part_b(n_edits: int, results: dict[str, Any]) -> None:
    from engine.ggml.gguf_cache import converted_gguf
    from engine.models import default_model_dir

    path = converted_gguf(default_model_dir(), "q8_0")
    peer = run_worker("peer", "edits", str(path), str(n_edits))
    ours = run_worker("ours", "edits", str(path), str(n_edits))
    base = peer["runs"]["plain"]
    modes = {"llama.cpp plain": peer["runs"]["plain"],
             "llama.cpp prompt lookup": peer["runs"]["lookup"],
             "sparkedit plain (drafters: [])": ours["runs"]["plain"],
             "sparkedit speculative (default)": ours["runs"]["speculative"]}
    tps = {m: sum(len(r["tokens"]) for r in runs) / sum(r["seconds"] for r in runs)
           for m, runs in modes.items()}
    rows = []
    for mode, runs in modes.items():
        same = sum(r["tokens"] == b["tokens"] for r, b in zip(runs, base, strict=True))
        rows.append([mode, f"{tps[mode]:.0f}",
                     f"{tps[mode] / tps['llama.cpp plain']:.2f}x",
                     f"{tps[mode] / tps['llama.cpp prompt lookup']:.2f}x",
                     f"{same}/{len(runs)}"])
    results["b"] = {"tokens_per_s": tps, "edits": n_edits,
                    "identical_to_llama_plain": {m: rows[i][-1] for i, m in enumerate(modes)}}
    print(table(f"b. {n_edits} real edits (click 8.1.7 -> 8.1.8), embedded model as q8_0 GGUF, "
                "whole edit (prefill + decode)",
                ["mode", "tok/s", "vs llama.cpp plain", "vs llama.cpp lookup",
                 "output = llama.cpp plain"], rows), flush=True)


def part_c(models_dir: Path, results: dict[str, Any], context: int = 8192) -> None:
    from random_gguf import make

    path = make(CONFIGS / "qwen2.5-coder-0.5b.json", models_dir, ["q8_0"])["q8_0"]
    peer = run_worker("peer", "ttft", str(path), str(context))
    ours = run_worker("ours", "ttft", str(path), str(context))
    results["c"] = {"peer": peer, "ours": ours, "context": context}
    print(table(f"c. first token after a keystroke: {context}-token context, 64 new tokens "
                "after the cached prefix, 0.5B q8_0",
                ["llama.cpp ms", "sparkedit ms", "ratio"],
                [[f"{peer['ttft_ms']:.0f}", f"{ours['ttft_ms']:.0f}",
                  f"{ours['ttft_ms'] / peer['ttft_ms']:.2f}x"]]), flush=True)


def part_d(models_dir: Path, results: dict[str, Any]) -> None:
    from random_gguf import make

    path = make(PRESETS / "qwen2.5-coder-7b.json", models_dir, ["q4_k_m"])["q4_k_m"]
    ours = run_worker("big", str(path))
    results["d"] = ours
    print(table("d. Qwen2.5-Coder-7B's config at q4_k_m (random weights), sparkedit on ggml",
                ["load s", "decode tok/s", "peak RSS GB", "weights GB"],
                [[f"{ours['load_s']:.1f}", f"{ours['decode_tps']:.2f}",
                  f"{ours['peak_rss_mb'] / 1024:.2f}",
                  f"{ours['weights_bytes'] / 2**30:.2f}"]]), flush=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "big":
            out = worker_big(rest[0])
        elif kind == "cold":
            out = worker_cold(rest[0], int(rest[1]))
        elif rest[0] == "model":
            out = worker_model(kind, rest[1])
        elif rest[0] == "edits":
            out = worker_edits(kind, rest[1], int(rest[2]))
        else:
            out = worker_ttft(kind, rest[1], int(rest[2]))
        print(json.dumps(out))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="a,b,c,d,e")
    parser.add_argument("--edits", type=int, default=72)
    parser.add_argument("--models", type=Path, default=REPO / ".bench" / "models",
                        help="where the random-weight GGUF files are written (reused)")
    parser.add_argument("--out", type=Path, default=REPO / "bench_results" / "backends.json")
    parser.add_argument("--stock-llama", metavar="DIR", default=None,
                        help="a folder holding a stock llama_cpp package (built with "
                             "llamafile): part a also measures llama.cpp's Llama on it")
    args = parser.parse_args()
    import llama_cpp

    results: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "llama_cpp_python": llama_cpp.__version__,
                    "system_info": llama_cpp.llama_print_system_info().decode().strip()},
        "settings": {"threads": THREADS, "n_ctx": N_CTX, "n_batch": N_BATCH,
                     "flash_attn": FLASH_ATTN, "prompt": PROMPT, "decode": DECODE}}
    parts = set(args.parts.split(","))
    if "a" in parts:
        part_a(args.models, results, args.stock_llama)
    if "b" in parts:
        part_b(args.edits, results)
    if "c" in parts:
        part_c(args.models, results)
    if "d" in parts:
        part_d(args.models, results)
    if "e" in parts:
        part_e(args.models, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
