"""Ghost text, fast: type-through, stale-request cancellation, adaptive debounce, and the
next suggestion computed ahead after an accept.

`InlineService` sits between the server's `textDocument/inlineCompletion` handler and the
engine. It never imports pygls. Per request, in order:
1. a newer request (or keystroke) for the same document cancels the older one and its
   engine job (`cancel_stale`), and at most MAX_INFLIGHT documents have one in flight;
2. a suggestion the user is typing through, or one computed ahead after an accept, answers
   at once without the engine (`SuggestionCache`);
3. otherwise it waits the adaptive debounce (cancelled for free if another keystroke
   comes), asks the engine, shapes the text to the syntax (single line mid-line, stopped at
   the end of the enclosing block) and remembers it for type-through.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from lsp_server.completion import Suggestion
from lsp_server.documents import Document
from lsp_server.feedback import Feedback
from lsp_server.ghost import shape_suggestion
from lsp_server.suggestions import AdaptiveDebounce, SuggestionCache, predicted_after_accept
from lsp_server.workspace import Workspace

log = logging.getLogger(__name__)

MAX_SHOWN = 256  # suggestions remembered for didShow/didAccept/didReject
# Requests in flight across documents: one per document already (a newer one cancels the
# older); past this many documents the oldest request is cancelled, so a storm over many
# documents cannot queue unbounded work at the engine.
MAX_INFLIGHT = 4
Complete = Callable[[Document, int], Awaitable[Suggestion | None]]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def printable(text: str) -> str:
    """Ghost text with line ends as "\n" and no other control characters: a lone "\r" is
    a line break to LSP but not to every editor, so it would desynchronise the copies."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


@dataclass(frozen=True, kw_only=True)
class Shown:
    """A suggestion handed to the client: where, on which text, and what."""

    id: str
    uri: str
    text: str  # the document text it was computed for
    offset: int
    suggestion: str


@dataclass(frozen=True, kw_only=True)
class Ahead:
    """The next suggestion being computed as if an accept had happened."""

    task: asyncio.Future
    text: str  # the document as it will be after the accept
    offset: int


@dataclass(frozen=True, kw_only=True)
class InlineAnswer:
    id: str
    text: str
    from_cache: bool
    suggestion: Suggestion | None  # None when answered from the cache


class InlineService:
    def __init__(self, *, complete: Complete, feedback: Feedback,
                 debounce: AdaptiveDebounce, workspace: Callable[[], Workspace]) -> None:
        self._complete = complete
        self.feedback = feedback
        self.debounce = debounce
        self._workspace = workspace
        self.cache = SuggestionCache()
        self._shown: OrderedDict[str, Shown] = OrderedDict()
        self._edits: OrderedDict[str, tuple[str, int]] = OrderedDict()  # id -> (uri, length)
        self._typed: dict[str, int] = {}  # id -> characters typed through it so far
        self._latency: dict[str, float] = {}  # id -> ms from request to its latest answer
        self._pending: dict[str, str] = {}  # uri -> the ghost text id shown and not settled
        self._inflight: dict[str, asyncio.Task] = {}
        self._ahead: dict[str, Ahead] = {}
        self._ids = itertools.count(1)

    # -- keystrokes and cancellation

    def keystroke(self, uri: str, now: float | None = None) -> None:
        """A change to `uri`: its in-flight request is stale (the client may not say so)."""
        self.debounce.keystroke(time.monotonic() if now is None else now)
        self.cancel_stale(uri)

    def cancel_stale(self, uri: str) -> None:
        task = self._inflight.pop(uri, None)
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    # -- answering

    async def answer(self, doc: Document, offset: int) -> InlineAnswer | None:
        """Ghost text at `offset` of `doc`, or None. CancelledError when superseded."""
        started = time.monotonic()
        self.cancel_stale(doc.uri)
        task = asyncio.current_task()
        if task is not None:
            self._inflight[doc.uri] = task
            while len(self._inflight) > MAX_INFLIGHT:
                self.cancel_stale(next(iter(self._inflight)))  # the oldest
        try:
            return await self._answer(doc, offset, started)
        except asyncio.CancelledError:
            self.feedback.request(answered_from_cache=False, cancelled=True, latency_ms=None,
                                  prompt_tokens=None, cached_prompt_tokens=None)
            raise
        finally:
            if task is not None and self._inflight.get(doc.uri) is task:
                del self._inflight[doc.uri]

    async def _answer(self, doc: Document, offset: int, started: float) -> InlineAnswer | None:
        await self._settle_ahead(doc, offset)
        hit = self.cache.lookup(doc.uri, doc.text, offset)
        if hit is not None:
            latency = (time.monotonic() - started) * 1000
            self.feedback.request(answered_from_cache=True, cancelled=False,
                                  latency_ms=latency, prompt_tokens=None,
                                  cached_prompt_tokens=None)
            # The same suggestion, typed into: the same id, so feedback counts it once;
            # accept lengths the client reports are relative to what is left of it.
            self._typed[hit.suggestion_id] = hit.typed
            self._latency[hit.suggestion_id] = latency
            return InlineAnswer(id=hit.suggestion_id, text=hit.remaining, from_cache=True,
                                suggestion=None)
        delay = self.debounce.delay_ms(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        suggestion = await self._complete(doc, offset)
        latency = (time.monotonic() - started) * 1000
        stats = suggestion.stats if suggestion else {}
        self.feedback.request(answered_from_cache=False, cancelled=False, latency_ms=latency,
                              prompt_tokens=stats.get("prompt_tokens"),
                              cached_prompt_tokens=stats.get("cached_prompt_tokens"))
        if suggestion is None:
            return None
        ttft = suggestion.timing.get("ttft_ms")
        self.debounce.latency(float(ttft) if isinstance(ttft, int | float) else latency)
        text = self._shape(suggestion.text, doc, offset)
        if not text:
            return None
        shown = self._remember(doc.uri, doc.text, offset, text)
        self._latency[shown.id] = latency
        return InlineAnswer(id=shown.id, text=text, from_cache=False,
                            suggestion=replace(suggestion, text=text))

    def _shape(self, text: str, doc: Document, offset: int) -> str:
        text = printable(text)
        workspace = self._workspace()
        tree = workspace.tree(doc.uri)
        spec = workspace.registry.for_document(doc.uri, doc.language_id)
        if tree is not None and tree.char_count != len(doc.text):
            tree = None  # the tree has moved on to a newer version of the document
        return shape_suggestion(text, doc.text, offset, tree=tree, spec=spec)

    def _remember(self, uri: str, text: str, offset: int, suggestion: str) -> Shown:
        shown = Shown(id=f"s{next(self._ids)}", uri=uri, text=text, offset=offset,
                      suggestion=suggestion)
        self._shown[shown.id] = shown
        while len(self._shown) > MAX_SHOWN:
            old, _ = self._shown.popitem(last=False)
            self._typed.pop(old, None)
            self._latency.pop(old, None)
        self.cache.store(uri, text, offset, suggestion, suggestion_id=shown.id,
                         now=time.monotonic())
        return shown

    # -- feedback

    def did_show(self, suggestion_id: str) -> None:
        shown = self._shown.get(suggestion_id)
        if shown is not None:
            # A new suggestion shown in a document ends the one shown there before: editors
            # replace ghost text without saying so, and it was not accepted.
            previous = self._pending.get(shown.uri)
            if previous is not None and previous != suggestion_id:
                self.feedback.rejected(previous, now=time.time())
            self._pending[shown.uri] = suggestion_id
            self.feedback.shown(suggestion_id, uri=shown.uri, kind="ghost",
                                length=len(shown.suggestion),
                                latency_ms=self._latency.get(suggestion_id), now=time.time())
        elif suggestion_id in self._edits:
            uri, length = self._edits[suggestion_id]
            self.feedback.shown(suggestion_id, uri=uri, kind="next_edit", length=length,
                                latency_ms=None, now=time.time())
        else:
            log.info("didShow for an unknown suggestion %s", suggestion_id)

    def register_edit(self, uri: str, edit: Any) -> str:
        """An id for a next edit handed to the client; its feedback uses it like ghost
        text's (the client says when it shows it)."""
        suggestion_id = f"e{next(self._ids)}"
        self._edits[suggestion_id] = (uri, sum(len(e.new_text) for e in edit.edits))
        while len(self._edits) > MAX_SHOWN:
            self._edits.popitem(last=False)
        return suggestion_id

    def did_reject(self, suggestion_id: str) -> None:
        self._settle(suggestion_id)
        self.feedback.rejected(suggestion_id, now=time.time())

    def _settle(self, suggestion_id: str) -> None:
        shown = self._shown.get(suggestion_id)
        if shown is not None and self._pending.get(shown.uri) == suggestion_id:
            del self._pending[shown.uri]

    def did_accept(self, suggestion_id: str, accepted_length: int | None,
                   documents: Callable[[str], Document | None]) -> None:
        """Record the accept and compute the next suggestion as if it had happened."""
        self._settle(suggestion_id)
        if accepted_length is not None:  # relative to what was left after typing through
            accepted_length += self._typed.get(suggestion_id, 0)
        self.feedback.accepted(suggestion_id, accepted_length, now=time.time())
        shown = self._shown.get(suggestion_id)
        if shown is None:
            return
        n = len(shown.suggestion) if accepted_length is None else \
            max(0, min(accepted_length, len(shown.suggestion)))
        text, offset = predicted_after_accept(shown.text, shown.offset, shown.suggestion, n)
        doc = documents(shown.uri)
        language_id = doc.language_id if doc else ""
        predicted = Document(uri=shown.uri, text=text, version=None, language_id=language_id)
        old = self._ahead.pop(shown.uri, None)
        if old is not None and not old.task.done():
            old.task.cancel()
        self._ahead[shown.uri] = Ahead(
            task=asyncio.ensure_future(self._compute_ahead(predicted, offset)),
            text=text, offset=offset)

    async def _settle_ahead(self, doc: Document, offset: int) -> None:
        """A suggestion computed ahead for exactly this text and cursor is waited for (it
        is the answer); one for anything else is cancelled (it would hold up the engine)."""
        ahead = self._ahead.pop(doc.uri, None)
        if ahead is None or ahead.task.done():
            return
        if ahead.offset == offset and ahead.text == doc.text:
            await asyncio.shield(ahead.task)
        else:
            ahead.task.cancel()

    async def _compute_ahead(self, doc: Document, offset: int) -> None:
        try:
            suggestion = await self._complete(doc, offset)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a background guess: never let it break the session
            log.info("next suggestion ahead of an accept failed: %s", exc)
            return
        if suggestion is not None and (text := self._shape(suggestion.text, doc, offset)):
            self._remember(doc.uri, doc.text, offset, text)

    def forget(self, uri: str) -> None:
        self.cancel_stale(uri)
        ahead = self._ahead.pop(uri, None)
        if ahead is not None and not ahead.task.done():
            ahead.task.cancel()
        self.cache.invalidate(uri)

    def summary(self) -> dict[str, Any]:
        return {**self.feedback.summary(), "debounceMs": self.debounce.delay_ms(time.monotonic())}
