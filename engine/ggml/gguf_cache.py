"""Converted checkpoints: a Hugging Face folder becomes GGUF once, then is reused.

Folder: ``$SPARKEDIT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/sparkedit`` (else
``~/.cache/sparkedit``); conversions live in ``gguf/<checkpoint hash>/<quant>.gguf``.

Key: the SHA-256 of the checkpoint's files (config, tokenizer, weights), so an edited or
replaced checkpoint never reuses a stale conversion. Hashing a multi-gigabyte checkpoint
takes seconds, so the hash is remembered in ``hashes.json`` against each file's size and
modification time and recomputed only when one of them changes.

Bound: the conversions together stay under ``$SPARKEDIT_GGUF_CACHE_GB`` (default 32 GiB);
the least recently used go first (a file's modification time is refreshed on use).

Atomicity: a conversion is written to a ``.partial`` name and renamed into place only when
complete, under a lock, so an interrupted conversion is never used (its leftovers are
removed by the next attempt) and two engines never convert the same checkpoint at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.ggml.convert import ConversionError, quantize, source_dtype, write_gguf
from engine.weights import checkpoint_tensors

DEFAULT_BOUND_GB = 32.0
HASHED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json",
                "model.safetensors.index.json")


def cache_root() -> Path:
    if os.environ.get("SPARKEDIT_CACHE_DIR"):
        return Path(os.environ["SPARKEDIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sparkedit"


def _bound_bytes() -> int:
    try:
        gb = float(os.environ.get("SPARKEDIT_GGUF_CACHE_GB", DEFAULT_BOUND_GB))
    except ValueError:
        gb = DEFAULT_BOUND_GB
    return int(gb * 2**30)


def _checkpoint_files(folder: Path) -> list[Path]:
    weights = sorted({ref.path for ref in checkpoint_tensors(folder).values()})
    return [folder / n for n in HASHED_FILES if (folder / n).is_file()] + weights


def checkpoint_hash(folder: Path) -> str:
    """SHA-256 over the checkpoint's files, remembered against their sizes and mtimes."""
    files = _checkpoint_files(folder.resolve())
    stamp = json.dumps([[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    memo_path = cache_root() / "hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if not isinstance(memo, dict):
        memo = {}
    if stamp in memo:
        return str(memo[stamp])
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    value = digest.hexdigest()
    memo[stamp] = value
    _write_json(memo_path, dict(list(memo.items())[-256:]))
    return value


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def converted_gguf(folder: Path, quant: str, *,
                   progress: Callable[[str], None] | None = None) -> Path:
    """The GGUF of ``folder`` at ``quant``, converting it the first time. Raises
    ConversionError (one line naming the file) when the folder cannot be converted."""
    try:
        digest = checkpoint_hash(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise ConversionError(f"{folder}: {exc}") from exc
    home = cache_root() / "gguf" / digest[:20]
    target = home / f"{quant}.gguf"
    with _locked(home):
        if target.is_file():
            os.utime(target)  # most recently used
            return target
        for leftover in home.glob("*.partial"):
            leftover.unlink(missing_ok=True)  # an interrupted conversion: never used
        started = time.perf_counter()
        source_type = source_dtype(checkpoint_tensors(folder))
        direct = quant in ("f32", "bf16")
        first = home / f"{quant if direct else source_type}.{os.getpid()}.partial"
        try:
            write_gguf(folder, first, dtype=quant if direct else source_type,
                       progress=progress)
            if direct:
                os.replace(first, target)
            else:
                if progress is not None:
                    progress(f"quantizing {folder.name} to {quant} with llama.cpp")
                second = home / f"{quant}.{os.getpid()}.q.partial"
                quantize(first, second, quant)
                os.replace(second, target)
        finally:
            for leftover in home.glob(f"*.{os.getpid()}*.partial"):
                leftover.unlink(missing_ok=True)
        _write_json(home / "source.json", {
            "source": str(folder.resolve()), "sha256": digest,
            "converted": {**_read_meta(home).get("converted", {}),
                          quant: {"seconds": round(time.perf_counter() - started, 1),
                                  "bytes": target.stat().st_size}}})
    evict(keep=target)
    return target


def _read_meta(home: Path) -> dict[str, Any]:
    try:
        meta = json.loads((home / "source.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def evict(*, keep: Path | None = None, bound: int | None = None) -> list[Path]:
    """Remove the least recently used conversions until the rest fit the bound."""
    bound = _bound_bytes() if bound is None else bound
    files = sorted((cache_root() / "gguf").glob("*/*.gguf"), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    removed = []
    for path in files:
        if total <= bound:
            break
        if keep is not None and path == keep:
            continue
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            Path(str(path) + ".json").unlink(missing_ok=True)
        removed.append(path)
    return removed


def remembered(gguf: Path, key: str) -> Any:
    """A value stored beside a GGUF file by ``remember`` (None when absent)."""
    try:
        return json.loads(Path(str(gguf) + ".json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def remember(gguf: Path, key: str, value: Any) -> None:
    path = Path(str(gguf) + ".json")
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    known[key] = value
    _write_json(path, known)
