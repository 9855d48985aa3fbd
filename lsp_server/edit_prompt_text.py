"""The plain-text edit prompt, for checkpoints without sparkedit's edit tokens.

A real Qwen2.5-Coder checkpoint has no `<|region_start|>` or `<|rewrite|>`, so its edit
prompt marks the parts with text, as Zed's Zeta does for Qwen2.5-Coder (the exact layout is
in `build_text_edit_prompt` and docs/prompt_formats.md). Every piece, markers included, is
tokenized on its own with the literal encoder, so the count is exact, and the budget is
fitted by the token layout's rules (`edits.fit_context`).

Source text must not forge the structure. The text around the region (history, before,
after), the instruction and the path are neutralized: a marker string gets a backslash after
its "<" and a line that starts like a section header gets one before it, so every marker
and every header line in the prompt is the builder's own, and a parser
(engine/targets/remote_prompt.py) finds each at its first occurrence. The region cannot be
changed like that (the rewrite replaces it verbatim, and it is the speculative draft), so a
region that holds a marker string is refused. A header line inside the region is harmless:
the region's own markers delimit it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from lsp_server.context.tokens import TokenCounter
from lsp_server.edits import EditPrompt, EditRegion, check_fixed, cleaner, fit_context

REGION_START = "<|editable_region_start|>"
REGION_END = "<|editable_region_end|>"
CURSOR = "<|user_cursor_is_here|>"
MARKERS = (REGION_START, REGION_END, CURSOR)

INSTRUCTION_HEADER = "### Instruction:\n"
EDITS_HEADER = "### User Edits:\n\n"
EXCERPT_HEADER = "### User Excerpt:\n\n"
# The prompt ends by opening the region again, so the answer is the new region itself
# (the draft lines up from its first token) followed by REGION_END.
TAIL = f"\n### Response:\n{REGION_START}\n"

_HEADER_LINE = re.compile(r"^(?=### (?:Instruction|User Edits|User Excerpt|Response):)",
                          re.MULTILINE)


def neutralize(text: str) -> str:
    """`text` with no marker string and no line that starts like a section header:
    `<|editable_region_end|>` becomes `<\\|editable_region_end|>` and `### Response:` at
    the start of a line becomes `\\### Response:` (Markdown's escape)."""
    for marker in MARKERS:
        if marker in text:
            text = text.replace(marker, "<\\" + marker[1:])
    return _HEADER_LINE.sub(r"\\", text) if "### " in text else text


def region_markers(region: str) -> list[str]:
    """The marker strings a region holds (then it cannot be shown in this layout)."""
    return [marker for marker in MARKERS if marker in region]


def build_text_edit_prompt(*, counter: TokenCounter, special_ids: Mapping[str, int], path: str,
                           text: str, region: EditRegion, history: Sequence[str],
                           instruction: str | None, budget: int,
                           redact: bool = False) -> EditPrompt:
    """The edit prompt in plain text (`special_ids` is not needed; the signature is
    `edits.build_edit_prompt`'s). With instruction I, diffs D1..Dn, path P, the text
    before the region B, the region R split at the cursor into R1 R2, and the text after A:

        ### Instruction:\\n I \\n\\n                      (instruction edits only)
        ### User Edits:\\n\\n D1 .. Dn                   (each diff ends with "\\n")
        \\n### User Excerpt:\\n\\n P \\n B
        <|editable_region_start|>\\n R1 <|user_cursor_is_here|> R2 <|editable_region_end|>\\n
        A \\n### Response:\\n<|editable_region_start|>\\n

    and the model answers the new region then `<|editable_region_end|>`. Each part above is
    tokenized on its own. Never more than `budget` tokens (trimmed by `fit_context`'s
    rules); ValueError when the region and markers alone exceed it, or when the region
    holds a marker string.

    `redact`: secrets in history, before and after are redacted (for a remote target); the
    region never is. `before_chars_dropped` and `after_chars_dropped` count the text after
    redaction and neutralizing.
    """
    region_text = text[region.start:region.end]
    held = region_markers(region_text)
    if held:
        raise ValueError(f"the edit region holds the prompt marker {held[0]}, which the "
                         "plain-text edit layout cannot show")
    redacted = cleaner(redact)

    def clean(part: str) -> str:
        return neutralize(redacted(part))

    def clean_diff(diff: str) -> str:
        diff = clean(diff)
        return diff if not diff or diff.endswith("\n") else diff + "\n"

    cursor = region.cursor - region.start
    ids = counter.ids
    head = ids(f"{INSTRUCTION_HEADER}{neutralize(instruction)}\n\n") \
        if instruction is not None else ()
    edits_head = ids(EDITS_HEADER)
    excerpt_head = ids(f"\n{EXCERPT_HEADER}{neutralize(path)}\n")
    middle = [*ids(f"{REGION_START}\n"), *ids(region_text[:cursor]), *ids(CURSOR),
              *ids(region_text[cursor:]), *ids(f"{REGION_END}\n")]
    tail = ids(TAIL)
    fixed = len(head) + len(edits_head) + len(excerpt_head) + len(middle) + len(tail)
    check_fixed(fixed, budget)
    fitted = fit_context(counter, budget - fixed, history, clean(text[:region.start]),
                         clean(text[region.end:]), clean=clean_diff)
    tokens = [*head, *edits_head]
    for diff_ids in fitted.history:
        tokens += diff_ids
    tokens += [*excerpt_head, *fitted.before_ids, *middle, *fitted.after_ids, *tail]
    assert len(tokens) <= budget, "every part was fitted to the budget"
    return fitted.prompt(tokens, counter, region_text)
