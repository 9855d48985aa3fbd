"""Next-edit and instruction edits: document + cursor (or selection) -> minimal text edits.

The model rewrites an editable region around the cursor, given the recent edit history;
the original region is the speculative draft ("speculative edits": most of a rewrite is a
copy, so the engine verifies many drafted tokens per forward pass). The rewrite is turned
back into the smallest replacements, so the editor shows (and the user accepts) only what
changed. The prompt is sparkedit's token layout (edits.py) for a model that has its edit
tokens, else the plain-text layout (edit_prompt_text.py). Knows nothing about LSP; shared
by the language server and headless commands.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsp_server.completion import STATS_KEYS, TIMING_KEYS, CompletionError, Engine
from lsp_server.documents import Document
from lsp_server.edit_gates import MESSAGES, Reason, check_instruction_edit, check_next_edit
from lsp_server.edit_prompt_text import CURSOR as TEXT_CURSOR
from lsp_server.edit_prompt_text import REGION_END as TEXT_REGION_END
from lsp_server.edit_prompt_text import build_text_edit_prompt
from lsp_server.edits import (
    EDIT_TOKENS,
    END_OF_TEXT,
    FILE_SEP,
    INSTRUCTION,
    REWRITE_ENDS,
    EditPrompt,
    EditRegion,
    TextEdit,
    build_edit_prompt,
    choose_region,
    minimal_edits,
    missing_edit_tokens,
    parse_rewrite,
    selection_region,
)

if TYPE_CHECKING:
    from lsp_server.workspace import Workspace

REWRITE_GROWTH = 1.25  # the rewrite may be this much longer than the region (in tokens)
# The engine's `document` key: a newer edit request for a document cancels the older one,
# and the engine's "previous output" drafter recalls the last rewrite there. Kept apart
# from completions on the same document, which must neither cancel nor be cancelled by it.
EDIT_GROUP_SUFFIX = "#edit"


@dataclass(frozen=True)
class EditSuggestion:
    edits: list[TextEdit]  # document offsets, sorted, non-overlapping; [] for no change
    region: EditRegion
    new_region: str  # the model's rewrite of the region ("" when it did not finish)
    timing: dict[str, Any]  # completion.TIMING_KEYS; None where not measured
    stats: dict[str, Any]  # completion.STATS_KEYS; None where not measured
    finish_reason: str | None
    suppressed: Reason | None = None  # a quality gate held the rewrite back (edits [])


def why_no_edit(edit: EditSuggestion) -> str | None:
    """A sentence for the user when the suggestion changes nothing, else None."""
    if edit.edits:
        return None
    if edit.suppressed:
        return f"nothing was changed: {MESSAGES[edit.suppressed]}"
    if edit.finish_reason == "cancelled":
        return "no edit: a newer edit of this document replaced it"
    if edit.finish_reason == "length":
        return "no edit: the model's rewrite did not finish within its token limit"
    return "no change proposed"


@dataclass(frozen=True, kw_only=True)
class EditFormat:
    """A prompt layout for edits, and how the model's rewrite ends in it."""

    name: str  # "tokens" | "text"
    build: Callable[..., EditPrompt]  # takes edits.build_edit_prompt's keyword arguments
    stops: tuple[str, ...]  # stop strings for the request
    ends: tuple[str, ...]  # marker text that ends a rewrite returned as text
    drop: tuple[str, ...] = ()  # marker text removed from a rewrite (an echoed cursor)
    end_marker: str = ""  # text the rewrite ends with: its tokens count in max_tokens

    def stop_strings(self, region: str) -> list[str]:
        # Code that holds a stop string itself must not stop its own rewrite.
        return [s for s in self.stops if s not in region]

    def parse(self, output: str, finish_reason: str | None, region: str) -> str | None:
        return parse_rewrite(output, finish_reason, region=region, ends=self.ends,
                             drop=self.drop)


# The engine ends at any control token; the stop strings are for targets that return
# markers as text, and for the text layout's end marker.
TOKEN_FORMAT = EditFormat(name="tokens", build=build_edit_prompt, stops=(END_OF_TEXT,),
                          ends=REWRITE_ENDS)
TEXT_FORMAT = EditFormat(name="text", build=build_text_edit_prompt,
                         stops=(TEXT_REGION_END, END_OF_TEXT),
                         ends=(TEXT_REGION_END, END_OF_TEXT, FILE_SEP), drop=(TEXT_CURSOR,),
                         end_marker=TEXT_REGION_END)


def edit_format(engine_ids: Mapping[str, int], workspace_ids: Mapping[str, int],
                instruction: bool) -> EditFormat:
    """The token layout when the engine's model has every edit token the request needs,
    else the plain-text layout. Either way the prompt is built with the workspace's
    tokenizer, so it must be the engine's: CompletionError when the ids disagree."""
    if not missing_edit_tokens(engine_ids, instruction):
        needed = (*EDIT_TOKENS, INSTRUCTION) if instruction else EDIT_TOKENS
        if any(workspace_ids.get(name) != engine_ids[name] for name in needed):
            raise CompletionError("the engine's model has other edit token ids than the "
                                  "workspace's tokenizer; restart the language server")
        return TOKEN_FORMAT
    if dict(engine_ids) != dict(workspace_ids):
        raise CompletionError("the engine's model has other special tokens than the "
                              "workspace's tokenizer; restart the language server")
    return TEXT_FORMAT


def _history(workspace: Workspace, open_burst: bool) -> list[str]:
    entries = workspace.history.entries(include_open=open_burst)
    return [entry.diff for entry in entries if workspace.builder.allowed(entry.path)]


def gate(workspace: Workspace, doc: Document, region: EditRegion, new_region: str,
         instruction: bool) -> Reason | None:
    """Why the rewrite must not be shown (edit_gates.py), or None."""
    spec = workspace.registry.for_document(doc.uri, doc.language_id)
    parser = workspace.registry.parser(spec) if spec is not None else None
    tree = workspace.tree(doc.uri)
    # the server's tree, when it is still the tree of this text, saves a parse from scratch
    parsed = tree.tree if tree is not None and tree.text == doc.text else None
    if instruction:
        return check_instruction_edit(text=doc.text, start=region.start, end=region.end,
                                      new_region=new_region, parser=parser, tree=parsed)
    path = workspace.display_path(doc.uri)
    history = [entry.diff for entry in workspace.history.entries(include_open=True)
               if entry.path == path]
    return check_next_edit(text=doc.text, start=region.start, end=region.end,
                           new_region=new_region, cursor=region.cursor, history=history,
                           parser=parser, tree=parsed)


async def predict_edit(workspace: Workspace, doc: Document, offset: int, *, engine: Engine,
                       info: dict[str, Any], budget: int, instruction: str | None = None,
                       selection: tuple[int, int] | None = None,
                       max_new_tokens_extra: int = 32, open_burst: bool = True,
                       remote: bool = False,
                       drafters: tuple[str, ...] | None = None) -> EditSuggestion:
    """The model's edit of the region around string offset `offset` of `doc` (or of the
    lines of `selection`, string offsets, for an instruction edit).

    Raises CompletionError for a request that cannot be served (the engine's tokenizer is
    not the workspace's, the region does not fit the budget or the context, or holds a
    marker of the plain-text layout); engine errors
    (EngineError, EngineConnectionError) propagate for the caller to degrade on. An output
    cut short by `max_tokens` gives no edits and finish_reason "length".
    `open_burst`: the history ends with the burst of typing still open (the change just
    made, which is what a next edit follows from; the closed diffs before it keep their
    cached prefix). `remote`: the prompt goes to a remote target: secrets outside the
    region are redacted and an excluded document is refused. `drafters`: the engine's
    drafters allowed (() for plain decoding, None for the engine's default).
    """
    started = time.perf_counter()
    fmt = edit_format(info.get("special_tokens") or {}, workspace.special_ids,
                      instruction is not None)
    if remote and not workspace.allowed(doc.uri):
        raise CompletionError(f"{workspace.display_path(doc.uri)} is excluded from remote "
                              "contexts")
    text = doc.text
    if selection is not None:
        region = selection_region(text, *selection)
    else:
        spec = workspace.registry.for_document(doc.uri, doc.language_id)
        region = choose_region(text, offset, workspace.tree(doc.uri), spec)
    region_text = text[region.start:region.end]
    counter = workspace.counter
    max_tokens = math.ceil(counter.count(region_text) * REWRITE_GROWTH) + max_new_tokens_extra \
        + counter.count(fmt.end_marker)
    prompt_budget = budget
    limit = info.get("context_limit")
    if isinstance(limit, int) and limit > 0:
        prompt_budget = min(budget, limit - max_tokens)
    if prompt_budget <= 0:
        raise CompletionError(f"the edit region's rewrite needs {max_tokens} tokens, which "
                              f"leaves no prompt budget in a context of {limit}")
    workspace.history.close_open(time.monotonic())
    try:
        prompt = fmt.build(counter=counter, special_ids=workspace.special_ids,
                           path=workspace.display_path(doc.uri), text=text, region=region,
                           history=_history(workspace, open_burst), instruction=instruction,
                           budget=prompt_budget, redact=remote)
    except ValueError as exc:
        raise CompletionError(str(exc)) from exc
    context_ms = (time.perf_counter() - started) * 1000

    answer = await engine.generate({
        "tokens": prompt.tokens,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 0,
        "stop": fmt.stop_strings(region_text),
        "draft": region_text,
        "heal": None,
        "stream": False,
        "document": doc.uri + EDIT_GROUP_SUFFIX,
        "drafters": None if drafters is None else list(drafters),
    })
    engine_timing = answer.get("timing") or {}
    engine_stats = answer.get("stats") or {}
    timing: dict[str, Any] = {key: engine_timing.get(key) for key in TIMING_KEYS}
    timing["context_ms"] = round(context_ms, 3)
    stats = {key: engine_stats.get(key) for key in STATS_KEYS}
    finish = answer.get("finish_reason")
    new_region = fmt.parse(answer.get("text", ""), finish, region_text)
    if new_region is None:
        return EditSuggestion(edits=[], region=region, new_region="", timing=timing,
                              stats=stats, finish_reason="length" if finish != "cancelled"
                              else finish)
    suppressed = gate(workspace, doc, region, new_region, instruction is not None)
    edits = [] if suppressed else minimal_edits(region_text, new_region, region.start)
    return EditSuggestion(edits=edits, region=region, new_region=new_region, timing=timing,
                          stats=stats, finish_reason=finish, suppressed=suppressed)
