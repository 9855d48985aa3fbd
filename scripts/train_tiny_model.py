"""Train the embedded code model on this machine's CPU and export it for the engine.

Steps, each resumable from the work folder:
1. corpus: permissively licensed Python on disk (see training_data.py), split by path hash;
2. tokenizer: byte-level BPE trained with `tokenizers`, sparkedit's special tokens first;
3. token streams: seeded lm / repo / fim / edit examples, written once as uint16 arrays;
4. training: a Llama-family decoder in torch (bf16 autocast on the CPU), AdamW, warm-up
   then cosine decay, a checkpoint every `--checkpoint-every` steps, a progress line and
   a CSV loss log;
5. export: fp16 safetensors with Hugging Face Llama names, config.json, tokenizer.json,
   then the exported folder is loaded through the engine and its logits compared with
   the torch model's.

Usage: python scripts/train_tiny_model.py --steps 2400 [--long-steps N] [--out DIR]
Needs the `train` extra (torch==2.13.0). Checkpoints, token streams and the loss log live in
$SPARKEDIT_TRAIN_DIR/runs/<out name> (default ~/.cache/sparkedit/train), outside the work
tree; a rerun resumes from the checkpoint, or, when there is none, warm-starts from the
exported model in --out if it has this shape. train_setup.py picks corpus and example mix.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import train_setup as setup
import training_data as td
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn

REPO = Path(__file__).resolve().parent.parent
SPECIAL_TOKENS = list(td.SPECIAL)  # order fixes the ids: <|endoftext|> is 0


@dataclass(frozen=True, kw_only=True)
class Shape:
    vocab_size: int = 8192
    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    num_key_value_heads: int = 1
    intermediate_size: int = 688
    max_position_embeddings: int = 1024
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# ---------------------------------------------------------------------------------------
# Model (Hugging Face Llama names, so the export is a plain rename-free state dict)

def rotary(shape: Shape, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    hd = shape.head_dim
    inv_freq = 1.0 / (shape.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)  # [T, hd], the HF rotate_half convention
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Attention(nn.Module):
    def __init__(self, s: Shape) -> None:
        super().__init__()
        self.s = s
        hd = s.head_dim
        self.q_proj = nn.Linear(s.hidden_size, s.num_attention_heads * hd, bias=False)
        self.k_proj = nn.Linear(s.hidden_size, s.num_key_value_heads * hd, bias=False)
        self.v_proj = nn.Linear(s.hidden_size, s.num_key_value_heads * hd, bias=False)
        self.o_proj = nn.Linear(s.num_attention_heads * hd, s.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        s, hd = self.s, self.s.head_dim
        q = self.q_proj(x).view(b, t, s.num_attention_heads, hd).transpose(1, 2)  # [B,H,T,hd]
        k = self.k_proj(x).view(b, t, s.num_key_value_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, s.num_key_value_heads, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class Mlp(nn.Module):
    def __init__(self, s: Shape) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(s.hidden_size, s.intermediate_size, bias=False)
        self.up_proj = nn.Linear(s.hidden_size, s.intermediate_size, bias=False)
        self.down_proj = nn.Linear(s.intermediate_size, s.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, s: Shape) -> None:
        super().__init__()
        self.input_layernorm = nn.RMSNorm(s.hidden_size, eps=s.rms_norm_eps)
        self.self_attn = Attention(s)
        self.post_attention_layernorm = nn.RMSNorm(s.hidden_size, eps=s.rms_norm_eps)
        self.mlp = Mlp(s)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    def __init__(self, s: Shape) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(s.vocab_size, s.hidden_size)
        self.layers = nn.ModuleList(Layer(s) for _ in range(s.num_hidden_layers))
        self.norm = nn.RMSNorm(s.hidden_size, eps=s.rms_norm_eps)
        cos, sin = rotary(s, s.max_position_embeddings)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # Residual outputs scaled with depth (GPT-2) so early training is stable.
                scale = 1 / math.sqrt(2 * s.num_hidden_layers) if name.endswith(
                    ("o_proj.weight", "down_proj.weight")) else 1.0
                nn.init.normal_(p, std=std * scale)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        x = self.embed_tokens(tokens)
        cos, sin = self.cos[:t], self.sin[:t]
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x) @ self.embed_tokens.weight.T  # tied head: [B, T, V]


# ---------------------------------------------------------------------------------------
# Data

def train_tokenizer(files: list[td.SourceFile], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2,
                                  special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((f.text for f in files), trainer=trainer)
    for i, name in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(name) == i, name
    return tok


def batch(stream: np.ndarray, rng: np.random.Generator, size: int, seq: int) -> torch.Tensor:
    starts = rng.integers(0, len(stream) - seq - 1, size)
    return torch.from_numpy(np.stack([stream[s:s + seq + 1] for s in starts]).astype(np.int64))


# ---------------------------------------------------------------------------------------
# Training

def parse_language_weights(items: list[str]) -> dict[str, float]:
    """["python=3"] -> {"python": 3.0}; SystemExit with one line on a malformed item."""
    weights = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"--language-weight wants LANG=NUMBER, not {item!r}") from None
    return weights


def learning_rate(step: int, progress: float, peak: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 10 % as progress goes 0 -> 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def loss_of(model: Decoder, xy: torch.Tensor, dtype: torch.dtype = torch.float32
            ) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        logits = model(xy[:, :-1])
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), xy[:, 1:].reshape(-1))


@torch.no_grad()
def validation_loss(model: Decoder, stream: np.ndarray, seq: int, batches: int = 8,
                    dtype: torch.dtype = torch.float32) -> float:
    model.eval()
    rng = np.random.default_rng(0)
    losses = [loss_of(model, batch(stream, rng, 8, seq), dtype).item() for _ in range(batches)]
    model.train()
    return float(np.mean(losses))


def export(model: Decoder, shape: Shape, tokenizer: Tokenizer, out: Path, card: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file({f"model.{k}": v for k, v in weights.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        **{k: v for k, v in asdict(shape).items()}, "head_dim": shape.head_dim,
        "tie_word_embeddings": True, "attention_bias": False, "bos_token_id": 0,
        "eos_token_id": 0, "torch_dtype": "float16",
        "sparkedit": {"untrained": False, "fim_order": "spm",
                      "generator": "scripts/train_tiny_model.py", "training": card},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer.save(str(out / "tokenizer.json"), pretty=False)


def check_export(model: Decoder, out: Path) -> float:
    """Max relative logit error of the engine's numpy model against torch (fp16 weights)."""
    sys.path.insert(0, str(REPO))
    from engine.model import load_model

    engine_model = load_model(out)
    tokens = torch.arange(1, 200) % engine_model.config.vocab_size
    with torch.no_grad():
        half = Decoder(Shape(**{k: v for k, v in json.loads(
            (out / "config.json").read_text()).items() if k in Shape.__dataclass_fields__}))
        half.load_state_dict({k: v.to(torch.float16).float() for k, v in
                              model.state_dict().items()})
        expected = half(tokens[None])[0].numpy()
    got = engine_model.forward(tokens.numpy(), engine_model.new_cache())
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None,
                    help="checkpoints, token streams, loss log (default: "
                         "$SPARKEDIT_TRAIN_DIR/runs/<out folder name>, outside the work tree)")
    ap.add_argument("--out", type=Path, default=REPO / "engine" / "models" / "sparkedit-coder-v2")
    ap.add_argument("--corpus", choices=("auto", "fetched", "local"), default="auto")
    ap.add_argument("--steps", type=int, default=2400, help="steps at --seq")
    ap.add_argument("--long-steps", type=int, default=0, help="then steps at --long-seq")
    ap.add_argument("--long-seq", type=int, default=4096)
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="stop (and export) after this much training time in all; a rerun "
                         "goes on from the checkpoint")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--language-weight", action="append", default=[], metavar="LANG=W",
                    help="draw LANG's files W times as often as another language's (default "
                         "1 each); may be repeated")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=1)
    ap.add_argument("--ffn", type=int, default=688)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--dtype", choices=("auto", "bf16", "fp32"), default="auto",
                    help="auto: bf16 autocast where the CPU has bf16 arithmetic")
    ap.add_argument("--warm-start", type=Path, default=None,
                    help="with no checkpoint: start from this exported folder's weights and "
                         "tokenizer (default: --out when it holds a model of this shape)")
    ap.add_argument("--checkpoint-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=200)
    args = ap.parse_args()

    language_weights = parse_language_weights(args.language_weight)
    torch.manual_seed(args.seed)
    torch.set_flush_denormal(True)  # random-init training on this CPU crawls on denormals
    root = setup.train_root()
    work = args.work or root / "runs" / args.out.name
    work.mkdir(parents=True, exist_ok=True)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}.get(args.dtype) or setup.fast_dtype()
    total_steps = args.steps + args.long_steps
    shape = Shape(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                  num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                  intermediate_size=args.ffn, rope_theta=args.rope_theta,
                  max_position_embeddings=max(args.seq, args.long_seq if args.long_steps else 0))

    files, licences = setup.load_files(args.corpus, root)
    train_files = [f for f in files if not f.held_out]
    held_out = [f for f in files if f.held_out]
    (work / "corpus.json").write_text(json.dumps({
        "licences": licences, "train_files": len(train_files), "held_out_files":
        [f.path for f in held_out], "train_bytes": sum(len(f.text) for f in train_files)},
        indent=1))

    ckpt_path = work / "checkpoint.pt"
    warm_from = args.warm_start or args.out
    warm = None if ckpt_path.exists() else setup.warm_start_weights(warm_from, args.vocab)
    tok_path = work / "tokenizer.json"
    if not tok_path.exists() and warm is not None and setup.tokenizer_of(warm_from):
        setup.tokenizer_of(warm_from).save(str(tok_path))  # the weights' own token ids
    if tok_path.exists():
        tokenizer = Tokenizer.from_file(str(tok_path))
    else:
        t0 = time.time()
        tokenizer = train_tokenizer(train_files, args.vocab)
        tokenizer.save(str(tok_path))
        print(f"tokenizer trained in {time.time() - t0:.0f} s", flush=True)
    encoder = td.Encoder(tokenizer)

    def stream_for(name: str, seq: int, steps: int, seed: int, sources: list) -> np.ndarray:
        n = steps * args.batch * seq + seq * 8
        train = name == "train"
        weights = language_weights if train else {}  # validation stays one mix across runs
        tag = name + "".join(f"+{lang}{w:g}" for lang, w in sorted(weights.items()))
        path = work / f"{tag}-{seq}-{n}-{seed}.npy"
        if path.exists():
            return np.load(path)
        for cached in work.glob(f"{tag}-{seq}-*-{seed}.npy"):  # a longer run's stream, same seed
            if int(cached.stem.split("-")[2]) >= n:
                return np.load(cached)[:n]
        t0 = time.time()
        pairs = setup.release_pairs(root) if train else []
        examples = setup.example_stream(sources, seed, seq * 3, pairs, weights or None)
        out = setup.token_stream(examples, encoder, n)
        np.save(path, out)
        print(f"{n:,} {name} tokens at {seq} built in {time.time() - t0:.0f} s", flush=True)
        return out

    model = Decoder(shape)
    if warm is not None:
        try:
            model.load_state_dict(warm)
            print(f"warm start from {warm_from}", flush=True)
        except RuntimeError:  # another shape
            print(f"{warm_from} has another shape: starting from random weights", flush=True)
            warm, model = None, Decoder(shape)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    step, elapsed, cpu_s = 0, 0.0, 0.0  # wall and process CPU seconds of training
    rng = np.random.default_rng(args.seed)
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        step, elapsed = ckpt["step"], ckpt["elapsed"]
        cpu_s = ckpt.get("cpu_s", elapsed * torch.get_num_threads())
        rng.bit_generator.state = ckpt["rng"]
        print(f"resumed at step {step}", flush=True)
    params = sum(p.numel() for p in model.parameters())
    print(f"{params / 1e6:.2f}M parameters, {args.steps} steps of {args.batch}x{args.seq} + "
          f"{args.long_steps} of {args.batch}x{args.long_seq} tokens, {dtype}, {work}",
          flush=True)

    phases = [(args.seq, 0, args.steps)] + ([(args.long_seq, args.steps, total_steps)]
                                           if args.long_steps else [])
    budget_s = args.max_minutes * 60 if args.max_minutes else None
    log_path = work / "loss.csv"
    with log_path.open("a", newline="") as log_file:
        log = csv.writer(log_file)
        if step == 0:
            log.writerow(["step", "tokens", "train_loss", "val_loss", "lr", "elapsed_s"])
        for seq, first, last in phases:
            if step >= last or (budget_s is not None and elapsed >= budget_s):
                continue
            stream = stream_for("train", seq, last - first, args.seed + first, train_files)
            val = stream_for("validation", seq, 4, args.seed + 1, held_out or train_files[:50])
            t_last, cpu_last = time.time(), time.process_time()
            while step < last and (budget_s is None or elapsed < budget_s):
                lr = learning_rate(step, step / total_steps, args.lr, args.warmup)
                for group in opt.param_groups:
                    group["lr"] = lr
                loss = loss_of(model, batch(stream, rng, args.batch, seq), dtype)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                step += 1
                now = time.time()
                elapsed += now - t_last
                cpu_s += time.process_time() - cpu_last
                t_last, cpu_last = now, time.process_time()
                val_loss = validation_loss(model, val, seq, dtype=dtype) if (
                    step % args.eval_every == 0 or step == last) else None
                done = step == last or (budget_s is not None and elapsed >= budget_s)
                log.writerow([step, step * args.batch * seq, f"{loss.item():.4f}",
                              "" if val_loss is None else f"{val_loss:.4f}", f"{lr:.2e}",
                              f"{elapsed:.0f}"])
                if step % 10 == 0 or val_loss is not None:
                    rate = (step - first) / max(elapsed, 1e-9) if first == 0 else 0.0
                    bar = "#" * int(30 * step / total_steps)
                    print(f"[{bar:<30}] {step}/{total_steps} seq {seq} loss {loss.item():.3f}"
                          + (f" val {val_loss:.3f}" if val_loss is not None else "")
                          + (f" {rate * args.batch * seq:.0f} tok/s" if rate else "")
                          + f" {elapsed / 60:.0f} min", flush=True)
                    log_file.flush()
                if step % args.checkpoint_every == 0 or done:
                    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                                "step": step, "elapsed": elapsed, "cpu_s": cpu_s,
                                "rng": rng.bit_generator.state}, ckpt_path)

    seq = phases[-1][0] if step > args.steps else args.seq
    val = stream_for("validation", seq, 4, args.seed + 1, held_out or train_files[:50])
    tokens = args.batch * (min(step, args.steps) * args.seq
                           + max(0, step - args.steps) * args.long_seq)
    card = {"steps": step, "tokens": tokens, "batch": args.batch,
            "seq": args.seq, "long_seq": args.long_seq if args.long_steps else None,
            "long_steps": args.long_steps, "peak_lr": args.lr, "seed": args.seed,
            "dtype": str(dtype).removeprefix("torch."), "train_seconds": round(elapsed),
            "cpu_hours": round(cpu_s / 3600, 2),
            "parameters": params, "warm_start": str(warm_from) if warm is not None else None,
            "final_val_loss": round(validation_loss(model, val, seq, batches=16, dtype=dtype), 4),
            "licences": licences}
    export(model, shape, tokenizer, args.out, card)
    err = check_export(model, args.out)
    print(f"exported to {args.out}; engine vs torch max relative logit error {err:.2e}")
    return 0 if err < 1e-2 else 1


if __name__ == "__main__":
    sys.exit(main())
