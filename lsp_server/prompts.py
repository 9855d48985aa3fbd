"""Fill-in-the-middle prompts as token ids, fitted to a token budget.

Pure: the caller tokenizes prefix and suffix with the engine (ids plus character
offsets) and passes the special-token ids from the engine's `info`; this module only
chooses which tokens to keep and lays them out.

Cuts happen at line starts so the model sees whole lines: the prefix loses lines at
its top, the suffix loses lines at its bottom. Tokens are kept exactly as the engine
produced them for the whole text; for byte-level BPE a cut at a line start gives the
same ids as re-tokenizing the kept text, and it saves a round trip per keystroke.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from lsp_server.context.healing import healable_text

FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
END_OF_TEXT = "<|endoftext|>"
FILE_SEP = "<|file_sep|>"
SPECIALS_PER_PROMPT = 3  # one each of prefix, suffix and middle markers

# The prefix carries most of the signal for what comes next at the cursor.
DEFAULT_PREFIX_SHARE = 0.75


class FimOrder(StrEnum):
    """Segment order. SPM puts the suffix first so that typing at the cursor only
    appends to the prompt (the embedded model's KV cache is reused); PSM is the
    order real Qwen2.5-Coder checkpoints were trained on."""

    SPM = "spm"
    PSM = "psm"


@dataclass(frozen=True, kw_only=True)
class Tokenized:
    """Token ids of a text and each token's [start, end) character offsets in it."""

    text: str
    ids: Sequence[int]
    offsets: Sequence[tuple[int, int]]

    def __post_init__(self) -> None:
        assert len(self.ids) == len(self.offsets), "one offset pair per token"


@dataclass(frozen=True, kw_only=True)
class FimTokens:
    prefix: int
    suffix: int
    middle: int

    @classmethod
    def from_info(cls, special_tokens: Mapping[str, int]) -> FimTokens:
        """Read the ids from `info["special_tokens"]` (names with or without `<|...|>`).

        Raises KeyError naming the missing token: a model without FIM tokens cannot
        complete in the middle, and saying so beats a nonsense prompt.
        """

        def find(name: str) -> int:
            bare = name.strip("<|>")
            for key in (name, bare):
                if key in special_tokens:
                    return int(special_tokens[key])
            raise KeyError(f"the model has no {name} token")

        return cls(prefix=find(FIM_PREFIX), suffix=find(FIM_SUFFIX), middle=find(FIM_MIDDLE))


@dataclass(frozen=True, kw_only=True)
class FimPrompt:
    tokens: list[int]
    prefix_tokens: int  # kept from the prefix
    suffix_tokens: int  # kept from the suffix
    prefix_chars_dropped: int
    suffix_chars_dropped: int
    heal: str = ""  # text of the prefix's last token, dropped for the engine to re-choose


def healable_tail(prefix: Tokenized, start: int) -> str:
    """Text of the prefix's last token when token healing should re-choose it: a piece of
    a word or of punctuation on the cursor's line ("jo" in "os.path.jo"). Not whitespace or
    a line end (the model saw those end a prefix), and only ASCII whose offsets are its own,
    so the dropped text is exactly the dropped token's bytes."""
    if len(prefix.ids) - start < 2:
        return ""
    prev_end, (begin, end) = prefix.offsets[-2][1], prefix.offsets[-1]
    text = prefix.text[begin:end]
    return text if healable_text(text) and prev_end <= begin else ""


def _starts_line(text: str, offset: int) -> bool:
    return offset == 0 or text[offset - 1] in "\n\r"


def keep_prefix(prefix: Tokenized, limit: int) -> int:
    """Index of the first prefix token to keep so at most `limit` tokens remain.

    The first kept token starts a line when any line start lies in the window; if one
    line alone is longer than the window, cut inside it (a partial line beats none).
    """
    n = len(prefix.ids)
    if n <= limit:
        return 0
    first_allowed = n - limit
    for i in range(first_allowed, n):
        if _starts_line(prefix.text, prefix.offsets[i][0]):
            return i
    return first_allowed


def keep_suffix(suffix: Tokenized, limit: int) -> int:
    """Number of leading suffix tokens to keep (at most `limit`), ending at a line end."""
    n = len(suffix.ids)
    if n <= limit:
        return n
    for j in range(limit, 0, -1):
        # Keeping tokens [0, j): token j must begin a line.
        if _starts_line(suffix.text, suffix.offsets[j][0]):
            return j
    return limit


def split_budget(available: int, prefix_len: int, suffix_len: int,
                 prefix_share: float = DEFAULT_PREFIX_SHARE) -> tuple[int, int]:
    """Token limits for prefix and suffix; a side that needs less gives the rest away."""
    if prefix_len + suffix_len <= available:
        return prefix_len, suffix_len
    prefix_limit = int(available * prefix_share)
    suffix_limit = available - prefix_limit
    if suffix_len < suffix_limit:
        prefix_limit = available - suffix_len
    elif prefix_len < prefix_limit:
        suffix_limit = available - prefix_len
    return min(prefix_limit, prefix_len), min(suffix_limit, suffix_len)


def build_fim_prompt(
    *, prefix: Tokenized, suffix: Tokenized, budget: int, special: FimTokens,
    order: FimOrder = FimOrder.SPM, prefix_share: float = DEFAULT_PREFIX_SHARE,
    heal: bool = False,
) -> FimPrompt:
    """Lay out a FIM prompt of at most `budget` tokens, special tokens included.

    With `heal`, the prefix's last token is left out when it is part of a word and its
    text is returned as `heal`, for the engine's token healing (engine/healing.py).

    Raises ValueError when the budget cannot hold even the three markers.
    """
    available = budget - SPECIALS_PER_PROMPT
    if available < 0:
        raise ValueError(f"a budget of {budget} tokens cannot hold the "
                         f"{SPECIALS_PER_PROMPT} FIM markers")
    prefix_limit, suffix_limit = split_budget(available, len(prefix.ids), len(suffix.ids),
                                              prefix_share)
    start = keep_prefix(prefix, prefix_limit)
    end = keep_suffix(suffix, suffix_limit)
    healed = healable_tail(prefix, start) if heal else ""
    pre = list(prefix.ids[start:len(prefix.ids) - (1 if healed else 0)])
    suf = list(suffix.ids[:end])
    if order is FimOrder.SPM:
        tokens = [special.suffix, *suf, special.prefix, *pre, special.middle]
    else:
        tokens = [special.prefix, *pre, special.suffix, *suf, special.middle]
    assert len(tokens) <= budget, "trimming must respect the budget"
    prefix_dropped = prefix.offsets[start][0] if start < len(prefix.ids) else len(prefix.text)
    suffix_kept_chars = suffix.offsets[end - 1][1] if end > 0 else 0
    return FimPrompt(
        tokens=tokens,
        prefix_tokens=len(pre),
        suffix_tokens=len(suf),
        prefix_chars_dropped=prefix_dropped if start > 0 else 0,
        suffix_chars_dropped=len(suffix.text) - suffix_kept_chars if end < len(suffix.ids)
        else 0,
        heal=healed,
    )
