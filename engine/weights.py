"""Load Hugging Face safetensors checkpoints into float32 numpy arrays.

Handles a single ``model.safetensors`` or a sharded checkpoint described by
``model.safetensors.index.json``. F32, F16 and BF16 tensors are supported.
numpy has no bfloat16 type, and safetensors' numpy API refuses BF16 tensors, so
those are read as raw little-endian uint16 from the file (offsets from the
safetensors header) and widened: a bfloat16 is the top half of a float32.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open

_NATIVE = {"F32", "F16", "F64"}


def _read_header(path: Path) -> tuple[dict, int]:
    """The safetensors JSON header and the byte offset where tensor data starts."""
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header, 8 + n


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) to float32 values (exact)."""
    assert raw.dtype == np.uint16
    return (raw.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even.

    Used by tests and tools that write bf16 checkpoints; NaN handling is not needed
    for weights.
    """
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def load_safetensors_file(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of one ``.safetensors`` file, as float32 (other dtypes kept)."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    bf16_names: list[str] = []
    with safe_open(str(path), framework="np") as f:
        for name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            dtype = f.get_slice(name).get_dtype()
            if dtype == "BF16":
                bf16_names.append(name)
                continue
            arr = f.get_tensor(name)
            out[name] = arr.astype(np.float32) if dtype in _NATIVE else arr
    if bf16_names:
        header, data_start = _read_header(path)
        # A memmap avoids reading the whole file when only a few tensors are bf16.
        blob = np.memmap(path, dtype=np.uint8, mode="r")
        for name in bf16_names:
            meta = header[name]
            begin, end = meta["data_offsets"]
            raw = np.frombuffer(blob[data_start + begin : data_start + end], dtype="<u2")
            out[name] = bf16_to_f32(raw.astype(np.uint16)).reshape(meta["shape"])
        del blob
    return out


def load_checkpoint(model_dir: str | Path) -> dict[str, np.ndarray]:
    """All weights of a Hugging Face model folder (single file or shards)."""
    model_dir = Path(model_dir)
    single = model_dir / "model.safetensors"
    if single.exists():
        return load_safetensors_file(single)
    index = model_dir / "model.safetensors.index.json"
    if not index.exists():
        raise FileNotFoundError(f"no model.safetensors or its shard index in {model_dir}")
    weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
    out: dict[str, np.ndarray] = {}
    for shard in sorted(set(weight_map.values())):
        out.update(load_safetensors_file(model_dir / shard))
    return out


def _checkpoint_files(model_dir: Path) -> list[Path]:
    single = model_dir / "model.safetensors"
    if single.exists():
        return [single]
    index = model_dir / "model.safetensors.index.json"
    if not index.exists():
        raise FileNotFoundError(f"no model.safetensors or its shard index in {model_dir}")
    shards = set(json.loads(index.read_text())["weight_map"].values())
    return [model_dir / s for s in sorted(shards)]


def checkpoint_parameter_count(model_dir: str | Path) -> int:
    """Parameters of a folder's checkpoint, from the safetensors headers alone (no data
    is read): how much memory a backend will need can be known before loading."""
    return sum(int(np.prod(t.shape, dtype=np.int64))
               for t in checkpoint_tensors(model_dir).values())


_RAW_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's bytes lie in a safetensors file: read on demand, one at a time,
    so a converter holds a single tensor in memory however large the checkpoint."""

    path: Path
    dtype: str  # "F32" | "F16" | "BF16"
    shape: tuple[int, ...]
    start: int  # absolute byte offsets in the file
    end: int

    def raw(self) -> np.ndarray:
        """The stored values: float32, float16, or bfloat16 bit patterns as uint16."""
        if self.dtype not in _RAW_DTYPES:
            raise ValueError(f"{self.path.name}: tensor dtype {self.dtype} is not supported "
                             "(F32, F16, BF16)")
        blob = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.start,
                         shape=(self.end - self.start,))
        return np.array(blob.view(_RAW_DTYPES[self.dtype]).reshape(self.shape))

    def float32(self) -> np.ndarray:
        raw = self.raw()
        return bf16_to_f32(raw) if self.dtype == "BF16" else raw.astype(np.float32)


def checkpoint_tensors(model_dir: str | Path) -> dict[str, TensorRef]:
    """Every tensor of a folder's checkpoint (single file or shards), located, not read."""
    model_dir = Path(model_dir)
    out: dict[str, TensorRef] = {}
    for path in _checkpoint_files(model_dir):
        header, data_start = _read_header(path)
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            begin, end = meta["data_offsets"]
            out[name] = TensorRef(path, meta["dtype"], tuple(meta["shape"]),
                                  data_start + begin, data_start + end)
    return out
