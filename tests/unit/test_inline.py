"""InlineService: ids across type-through, implicit rejects, accept lengths, stale requests.
The engine is replaced by a function that returns a fixed suggestion, counting its calls."""

from __future__ import annotations

import asyncio

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server.completion import Suggestion
from lsp_server.documents import Document
from lsp_server.feedback import Feedback
from lsp_server.inline import MAX_INFLIGHT, InlineService
from lsp_server.suggestions import AdaptiveDebounce
from lsp_server.workspace import Workspace, WorkspaceSettings

TEXT = "def f(x):\n    return \n"
CURSOR = TEXT.index("return ") + len("return ")


def service(answer: str = "x + 1", delay: float = 0.0) -> tuple[InlineService, list[int]]:
    calls: list[int] = []
    workspace = Workspace(tokenizer=Tokenizer.from_dir(default_model_dir()),
                          settings=WorkspaceSettings())

    async def complete(doc: Document, offset: int) -> Suggestion:
        calls.append(offset)
        await asyncio.sleep(delay)
        return Suggestion(text=answer, finish_reason="stop", timing={"ttft_ms": 1.0},
                          stats={}, model="m", untrained=False)

    return InlineService(complete=complete, feedback=Feedback(None),
                         debounce=AdaptiveDebounce(0, 0), workspace=lambda: workspace), calls


def doc(text: str, version: int = 1) -> Document:
    return Document(uri="file:///a.py", text=text, version=version, language_id="python")


async def test_typing_through_keeps_the_id_and_accept_lengths_add_up():
    inline, calls = service()
    first = await inline.answer(doc(TEXT), CURSOR)
    assert first is not None and first.text == "x + 1" and not first.from_cache
    typed = TEXT[:CURSOR] + "x " + TEXT[CURSOR:]
    second = await inline.answer(doc(typed, 2), CURSOR + 2)
    assert second is not None and second.from_cache and second.text == "+ 1"
    assert second.id == first.id and calls == [CURSOR]
    inline.did_show(first.id)
    inline.did_accept(first.id, 1, lambda uri: None)  # "+" of what was left: 3 of 5 chars
    summary = inline.feedback.summary()
    assert summary["shown"] == 1 and summary["partiallyAccepted"] == 1
    assert summary["acceptedChars"] == 3


async def test_a_new_suggestion_shown_ends_the_previous_one_as_rejected():
    inline, _ = service()
    first = await inline.answer(doc(TEXT), CURSOR)
    inline.did_show(first.id)
    other_text = TEXT + "\n"
    second = await inline.answer(doc(other_text, 2), len(other_text))
    inline.did_show(second.id)
    summary = inline.feedback.summary()
    assert summary["shown"] == 2 and summary["rejected"] == 1


async def test_a_keystroke_cancels_the_request_in_flight():
    inline, calls = service(delay=5.0)
    pending = asyncio.ensure_future(inline.answer(doc(TEXT), CURSOR))
    await asyncio.sleep(0.05)
    inline.keystroke("file:///a.py")
    try:
        await asyncio.wait_for(pending, 1)
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the stale request was not cancelled")
    assert inline.feedback.summary()["cancelled"] == 1


async def test_a_storm_over_many_documents_keeps_few_requests_in_flight():
    inline, calls = service(delay=0.2)
    docs = [Document(uri=f"file:///{n}.py", text=TEXT, version=1, language_id="python")
            for n in range(40)]
    answers = [asyncio.ensure_future(inline.answer(d, CURSOR)) for d in docs]
    results = await asyncio.gather(*answers, return_exceptions=True)
    cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
    answered = [r for r in results if r is not None and not isinstance(r, BaseException)]
    assert len(cancelled) == len(docs) - MAX_INFLIGHT  # the oldest went, unanswered by it
    assert [a.text for a in answered] == ["x + 1"] * MAX_INFLIGHT
    assert results[-MAX_INFLIGHT:] == answered  # the newest were kept
    assert len(calls) <= len(docs) and not inline._inflight
    summary = inline.feedback.summary()
    assert summary["cancelled"] == len(cancelled)


def test_printable_ghost_text_has_plain_line_ends_and_no_control_characters():
    from lsp_server.inline import printable

    assert printable("a\r\nb\rc\x00d\x1b[0m\te") == "a\nb\ncd[0m\te"
    assert printable("x = 1\n") == "x = 1\n"
