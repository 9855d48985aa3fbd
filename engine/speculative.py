"""Speculative decoding: which draft to verify, how long, the verification rule, statistics.

One pass runs ``[last, d1..dK]`` through ``Transformer.forward`` and yields K+1 rows of
logits; ``verify`` turns them into the accepted draft tokens plus one token of the
model's own. The rule is the same for greedy and for sampling with a model-free
draft (FIELD_NOTES "Speculative decoding, stated exactly"): draw the target's token
at each position, exactly as plain decoding would, and keep going while it equals
the draft. Greedy output therefore equals plain greedy, and sampled output has the
target's distribution -- it even consumes the random stream exactly as plain
sampling does, one draw per emitted token.

The draft length K is chosen per pass by ``DraftTuner`` from the measured cost of a
pass of K+1 tokens and the acceptance rate seen so far, maximising expected tokens
per second of passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.drafters import CopyDrafter, Drafter, PromptLookup, SuggestionMemory
from engine.sampling import sample

DRAFTERS = ("region", "previous", "lookup")


def verify(
    logits: np.ndarray,
    draft: Sequence[int],
    *,
    temperature: float,
    top_p: float,
    rng: np.random.Generator,
) -> list[int]:
    """logits [K+1, V] of a pass over [last, d1..dK] -> the accepted d1..dn plus the
    model's token after them (n + 1 tokens, n <= K)."""
    if temperature == 0:
        choice = np.argmax(logits, axis=-1)  # [K+1]; argmax per row, as plain greedy
        n = 0
        while n < len(draft) and choice[n] == draft[n]:
            n += 1
        return [int(t) for t in choice[: n + 1]]
    out: list[int] = []
    for i in range(len(draft) + 1):
        out.append(sample(logits[i], temperature=temperature, top_p=top_p, rng=rng))
        if i == len(draft) or out[-1] != draft[i]:
            break
    return out


def expected_tokens(alpha: float, k: int) -> float:
    """Tokens per pass with K drafted at per-token acceptance alpha: (1 - a^(K+1)) / (1 - a)."""
    if alpha >= 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


@dataclass(kw_only=True)
class DraftTuner:
    """Online estimates behind the choice of K; lives as long as the model does.

    Pass cost is fitted as ``a + b * T`` (T tokens in the pass) by exponentially
    decayed least squares, with a ridge pull towards a prior slope so that a run of
    passes of one size still gives a usable slope. Acceptance per drafter is the
    geometric model's estimate accepted / (accepted + rejections), decayed likewise,
    starting from a prior of ``prior_alpha``. Not thread-safe: the worker owns it.
    """

    max_draft: int = 32
    prior_alpha: float = 0.6
    prior_slope: float = 0.03  # a token's share of a one-token pass, before measurement
    decay: float = 0.97
    _sums: list[float] = field(default_factory=lambda: [0.0] * 5)  # w, wT, wT2, wc, wTc
    _accept: dict[str, list[float]] = field(default_factory=dict)  # name -> [acc, rej]

    def alpha(self, drafter: str) -> float:
        acc, rej = self._accept.get(drafter, (0.0, 0.0))
        prior = 2.0  # pseudo-observations behind prior_alpha
        return (acc + prior * self.prior_alpha) / (acc + rej + prior)

    def cost(self, n_tokens: int) -> float:
        w, wt, wt2, wc, wtc = self._sums
        if w == 0:
            return 1.0 + self.prior_slope * n_tokens  # relative units: only ratios matter
        mean_t, mean_c = wt / w, wc / w
        lam = 0.5  # ridge weight, in units of the variance of T: matters only when T barely varies
        sxx = wt2 / w - mean_t**2
        sxy = wtc / w - mean_t * mean_c
        b = max(0.0, (sxy + lam * self.prior_slope * mean_c) / (sxx + lam))
        a = max(1e-9, mean_c - b * mean_t)
        return a + b * n_tokens

    def choose(self, drafter: str, available: int) -> int:
        """The K in 0..min(available, max_draft) with the most expected tokens per cost."""
        alpha = self.alpha(drafter)
        best_k, best = 0, 0.0
        for k in range(min(available, self.max_draft) + 1):
            rate = expected_tokens(alpha, k) / self.cost(k + 1)
            if rate > best:
                best_k, best = k, rate
        return best_k

    def record_pass(self, n_tokens: int, seconds: float) -> None:
        s = [x * self.decay for x in self._sums]
        t = float(n_tokens)
        for i, x in enumerate((1.0, t, t * t, seconds, t * seconds)):
            s[i] += x
        self._sums = s

    def forget(self, keep: float = 0.5) -> None:
        """Pull acceptance back towards the prior at a request's start: a drafter that
        failed on one request gets drafts again on the next, and its rate can recover."""
        for counts in self._accept.values():
            counts[0] *= keep
            counts[1] *= keep

    def record_draft(self, drafter: str, drafted: int, accepted: int) -> None:
        acc, rej = self._accept.setdefault(drafter, [0.0, 0.0])
        self._accept[drafter] = [acc * self.decay + accepted,
                                 rej * self.decay + (1.0 if accepted < drafted else 0.0)]


@dataclass(frozen=True, kw_only=True)
class SpecConfig:
    """Which drafters run, in priority order; () is plain decoding."""

    drafters: tuple[str, ...] = DRAFTERS

    def __post_init__(self) -> None:
        unknown = set(self.drafters) - set(DRAFTERS)
        if unknown:
            raise ValueError(f"unknown drafters {sorted(unknown)}; known: {DRAFTERS}")


PLAIN = SpecConfig(drafters=())


class Speculation:
    """One request's drafters and counts. ``propose`` asks the drafters in priority
    order and takes the first that has a guess, cut to the tuned length."""

    def __init__(self, config: SpecConfig, tuner: DraftTuner, *, prompt: Sequence[int],
                 region: Sequence[int] | None, previous: Sequence[int] | None,
                 vocab_size: int) -> None:
        self.tuner = tuner
        tuner.forget()
        self.drafters: list[Drafter] = []
        for name in config.drafters:
            if name == "region" and region:
                self.drafters.append(CopyDrafter("region", region, from_start=True))
            elif name == "previous" and previous:
                self.drafters.append(CopyDrafter("previous", previous, from_start=False))
            elif name == "lookup":
                self.drafters.append(PromptLookup(prompt, vocab_size))
        self.counts = {d.name: {"drafted": 0, "accepted": 0, "passes": 0} for d in self.drafters}

    def propose(self, seq: Sequence[int], n_out: int, room: int) -> tuple[str | None, list[int]]:
        """(drafter name, draft of at most ``room`` tokens) or (None, [])."""
        if room <= 0:
            return None, []
        limit = min(room, self.tuner.max_draft)
        for drafter in self.drafters:
            guess = drafter.propose(seq, n_out, limit)
            k = self.tuner.choose(drafter.name, len(guess)) if guess else 0
            if k:
                return drafter.name, guess[:k]
        return None, []

    def record(self, drafter: str | None, drafted: int, accepted: int,
               n_tokens: int | None, seconds: float) -> None:
        """After a pass of ``n_tokens`` tokens that took ``seconds``; None for the
        prefill pass, whose cost says nothing about decode passes."""
        if n_tokens is not None:
            self.tuner.record_pass(n_tokens, seconds)
        if drafter is not None and drafted:
            self.tuner.record_draft(drafter, drafted, accepted)
            c = self.counts[drafter]
            c["drafted"] += drafted
            c["accepted"] += accepted
            c["passes"] += 1

    @property
    def accepted(self) -> int:
        return sum(c["accepted"] for c in self.counts.values())

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: dict(c) for name, c in self.counts.items()}


__all__ = ["DRAFTERS", "PLAIN", "DraftTuner", "SpecConfig", "Speculation", "SuggestionMemory",
           "expected_tokens", "verify"]
