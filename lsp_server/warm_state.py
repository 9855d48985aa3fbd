"""Which documents' completion prompts the engine holds prefilled, and at which budget a
completion for each should ask now.

A cold prefill of a large context takes tens of seconds on a CPU, so the server prefills
the active document's prompt in the background (`warmup.py`): first at the small warm
budget (quick), then at the full budget. Until the full-budget prompt is in the engine's
prefix cache, completions for the document ask with the small budget, whose prompt is
already warm; a keystroke then never pays for a cold full-size prefill.

`WarmState` is the bookkeeping only, without asyncio or the engine; `warmup.py` drives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lsp_server.context.layout import shared_prefix

# A full-budget prompt whose stable part (everything before the current file) differs from
# the last one prefilled in more than its last this-many tokens is no longer warm.
STALE_TOKENS = 256
FIRST_SCREEN_LINES = 40  # where a document's cursor is assumed before anything says


@dataclass
class DocWarmth:
    """One document's warm-up record."""

    head: tuple[int, ...] | None = None  # the stable part of the last full prompt prefilled
    small: bool = False  # the warm budget's prompt was prefilled completely
    warming: int | None = None  # the budget being prefilled now
    request_offset: int | None = None  # where the last completion was asked for
    focus_offset: int | None = None  # where the cursor was when the editor focused it

    @property
    def full(self) -> bool:
        return self.head is not None


class WarmState:
    """Per document URI: what is warm in the engine's prefix cache.

    Bound: the documents told about and not forgotten (the open ones). Only the active
    document keeps a full-budget claim: prefilling another document's large context may
    evict its blocks from the engine's cache, so a document that stops being active drops
    back to the warm budget until it is prefilled again. A claim also ends when the stable
    part of the prompt changes (`refresh`), and every claim ends when the engine restarts
    (`reset`: its cache is gone).
    """

    def __init__(self, *, stale_tokens: int = STALE_TOKENS) -> None:
        self._docs: dict[str, DocWarmth] = {}
        self.active: str | None = None
        self.stale_tokens = stale_tokens

    def doc(self, uri: str) -> DocWarmth:
        return self._docs.setdefault(uri, DocWarmth())

    # -- which document

    def activate(self, uri: str) -> bool:
        """Make `uri` the document warmed; True when that is a change."""
        if uri == self.active:
            self.doc(uri)
            return False
        if self.active is not None and self.active in self._docs:
            previous = self._docs[self.active]
            previous.head, previous.small = None, False
        self.active = uri
        self.doc(uri)
        return True

    def forget(self, uri: str) -> None:
        self._docs.pop(uri, None)
        if self.active == uri:
            self.active = None

    def reset(self) -> None:
        """The engine's cache is gone (a restart) or the budgets changed: nothing is warm;
        cursors and the active document are kept."""
        for record in self._docs.values():
            record.head, record.small, record.warming = None, False, None

    # -- where the cursor is

    def requested(self, uri: str, offset: int) -> None:
        self.doc(uri).request_offset = offset

    def focused(self, uri: str, offset: int | None) -> None:
        if offset is not None:
            self.doc(uri).focus_offset = offset

    def cursor(self, uri: str, text: str) -> int:
        """Where to build the prompt: the last request's offset, else the focus's, else the
        end of the first screen; clamped to the text, which may have changed since."""
        record = self._docs.get(uri) or DocWarmth()
        for offset in (record.request_offset, record.focus_offset):
            if offset is not None:
                return max(0, min(offset, len(text)))
        return first_screen_offset(text)

    # -- prefills

    def refresh(self, uri: str, head: Sequence[int]) -> None:
        """A warm-up is about to prefill a prompt whose stable part is `head`: the full
        claim holds only if that part still is (nearly) what was prefilled."""
        record = self.doc(uri)
        if record.head is None:
            return
        if len(head) - shared_prefix(record.head, head) > self.stale_tokens:
            record.head = None

    def begin(self, uri: str, budget: int) -> None:
        self.doc(uri).warming = budget

    def done(self, uri: str, budget: int, *, complete: bool, full: bool,
             head: Sequence[int] = ()) -> None:
        """A prefill of `budget` ended: `complete` when its whole prompt is cached."""
        record = self._docs.get(uri)
        if record is None:
            return  # closed meanwhile
        if record.warming == budget:
            record.warming = None
        if not complete:
            return
        if full:
            record.head = tuple(head)
            record.small = True  # the full prompt's warm state covers small requests
        else:
            record.small = True

    def stopped(self, uri: str) -> bool:
        """A warm-up ended without `done` (cancelled or failed); True if one was running."""
        record = self._docs.get(uri)
        if record is None or record.warming is None:
            return False
        record.warming = None
        return True

    def use_full(self, uri: str) -> bool:
        record = self._docs.get(uri)
        return record is not None and record.full

    def budget(self, uri: str, *, small: int, full: int) -> int:
        """The budget a completion for `uri` asks with now."""
        return full if small >= full or self.use_full(uri) else small

    def snapshot(self, *, small: int, full: int) -> list[dict[str, Any]]:
        """`sparkedit/status`'s `warm`: per document `{uri, budget, complete, warming}` (a
        list, not a map keyed by URI: typed clients read records more easily)."""
        return [{"uri": uri, "budget": self.budget(uri, small=small, full=full),
                 "complete": record.full, "warming": record.warming}
                for uri, record in self._docs.items()]


def first_screen_offset(text: str, lines: int = FIRST_SCREEN_LINES) -> int:
    """The end of line `lines` (1-based) of `text`, or its end when it is shorter."""
    at = -1
    for _ in range(lines):
        at = text.find("\n", at + 1)
        if at < 0:
            return len(text)
    return at


def stable_head(tokens: Sequence[int], current_tokens: int) -> tuple[int, ...]:
    """The prompt's tokens before the current file's (`current_tokens` of them at the end,
    markers included): what stays the same wherever the cursor is."""
    return tuple(tokens[:max(0, len(tokens) - current_tokens)])
