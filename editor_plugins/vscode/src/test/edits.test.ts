// Next edits as plain data: validation, decorations, cursor, state machine, and the
// WorkspaceEdit of "Edit selection".

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  anyVisible,
  cursorAfter,
  decorationPlan,
  label,
  NextEditState,
  selectionOrLine,
  suggestionFrom,
  workspaceEditParts,
} from "../edits";
import { WireEdit } from "../protocol";

const URI = "file:///work/sample.py";

function edit(l1: number, c1: number, l2: number, c2: number, newText: string): WireEdit {
  return { range: { start: { line: l1, character: c1 }, end: { line: l2, character: c2 } }, newText };
}

/** Apply disjoint edits to a text, as VS Code would (the reference for cursorAfter). */
function apply(text: string, edits: WireEdit[]): string {
  const lines = text.split("\n");
  const offset = (p: { line: number; character: number }) =>
    lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
  let out = text;
  for (const e of [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start))) {
    out = out.slice(0, offset(e.range.start)) + e.newText + out.slice(offset(e.range.end));
  }
  return out;
}

test("an answer becomes a suggestion only for the same document and version", () => {
  const answer = { id: "e1", textDocument: { uri: URI, version: 3 },
    edits: [edit(4, 0, 4, 5, "total"), edit(1, 2, 1, 2, "x")] };
  const suggestion = suggestionFrom(answer, URI, 3);
  assert.deepEqual(suggestion?.edits.map((e) => e.range.start.line), [1, 4], "sorted");
  assert.equal(suggestion?.id, "e1");
  assert.equal(suggestionFrom(answer, URI, 4), undefined, "stale version");
  assert.equal(suggestionFrom(answer, "file:///other.py", 3), undefined);
  assert.equal(suggestionFrom({ edits: [] }, URI, 3), undefined, "nothing to suggest");
  assert.equal(suggestionFrom(null, URI, 3), undefined);
  assert.equal(suggestionFrom({ id: "e2", edits: [{ range: {}, newText: "x" }] }, URI, 3), undefined);
  assert.equal(suggestionFrom({ id: "e3", edits: [edit(1, 0, 1, 4, "a"), edit(1, 2, 1, 6, "b")] },
    URI, 3), undefined, "overlapping edits");
  assert.equal(suggestionFrom({ id: "e4", edits: [edit(2, 0, 1, 0, "a")] }, URI, 3), undefined,
    "end before start");
  assert.equal(suggestionFrom({ id: "e5", edits: [edit(1, 1, 1, 1, "")] }, URI, 3), undefined,
    "no-op edits");
  assert.ok(suggestionFrom({ id: "e6", edits: [edit(1, 1, 1, 1, "y")] }, URI, 3),
    "textDocument is optional");
});

test("deletions are struck through, insertions drawn after the range on one line", () => {
  const plan = decorationPlan([
    edit(0, 4, 0, 8, ""), // deletion
    edit(2, 0, 2, 0, "if x:\n    return 1\n"), // multi-line insertion
    edit(5, 3, 5, 6, "bar"), // replacement
  ]);
  assert.deepEqual(plan.deletions, [edit(0, 4, 0, 8, "").range, edit(5, 3, 5, 6, "").range]);
  assert.deepEqual(plan.insertions.map((i) => [i.at, i.label, i.text]), [
    [{ line: 2, character: 0 }, "if x: ⏎     return 1 ⏎ ", "if x:\n    return 1\n"],
    [{ line: 5, character: 6 }, "bar", "bar"],
  ]);
  assert.equal(label("x".repeat(100), 10), "xxxxxxxxx…");
  assert.equal(label("a\r\nb\tc"), "a ⏎ b  c");
});

test("the cursor lands where the last edit's text ends, after every edit is applied", () => {
  const text = "alpha beta\ngamma delta\nepsilon\n";
  const cases: WireEdit[][] = [
    [edit(0, 6, 0, 10, "BETA")],
    [edit(0, 0, 0, 5, "A"), edit(0, 6, 0, 10, "B\nC")],
    [edit(0, 5, 1, 5, ""), edit(1, 6, 1, 11, "D")],
    [edit(0, 0, 0, 0, "x\ny\n"), edit(2, 0, 2, 7, "eps\nilon")],
    [edit(1, 0, 1, 0, "new line\n")],
  ];
  for (const edits of cases) {
    const after = apply(text, edits).split("\n");
    const cursor = cursorAfter(edits)!;
    const last = edits[edits.length - 1];
    const before = after[cursor.line].slice(0, cursor.character);
    const lastLine = last.newText.split("\n").pop()!;
    assert.ok(before.endsWith(lastLine), `${JSON.stringify(edits)}: ${JSON.stringify(before)}`);
    const rest = text.split("\n")[last.range.end.line].slice(last.range.end.character);
    assert.equal(after[cursor.line].slice(cursor.character), rest, JSON.stringify(edits));
  }
  assert.equal(cursorAfter([]), undefined);
});

test("an edit is visible when its range meets a visible range", () => {
  const visible = [{ start: { line: 10, character: 0 }, end: { line: 40, character: 0 } }];
  assert.equal(anyVisible([edit(3, 0, 3, 2, "x")], visible), false);
  assert.equal(anyVisible([edit(3, 0, 3, 2, "x"), edit(12, 0, 12, 0, "y")], visible), true);
  assert.equal(anyVisible([edit(5, 0, 10, 0, "")], visible), true);
});

test("state machine: only the latest request's answer shows; changes make it stale", () => {
  const state = new NextEditState();
  const suggestion = { id: "e1", uri: URI, version: 1, edits: [edit(0, 0, 0, 0, "x")] };
  const first = state.begin(URI);
  const second = state.begin(URI);
  assert.equal(state.answer(first.ticket, suggestion), false, "an older request's answer");
  assert.equal(state.answer(second.ticket, suggestion), true);
  assert.equal(state.phase, "visible");
  assert.equal(state.invalidate("file:///other.py"), undefined, "another document");
  assert.equal(state.invalidate(URI), "e1", "a change rejects it");
  assert.equal(state.phase, "idle");

  const third = state.begin(URI);
  assert.equal(state.invalidate(URI), undefined);
  assert.equal(state.answer(third.ticket, suggestion), false, "answered after a keystroke");

  const fourth = state.begin(URI);
  state.answer(fourth.ticket, suggestion);
  const fifth = state.begin(URI);
  assert.equal(fifth.replaced, "e1", "a new request replaces the visible one");
  assert.equal(state.answer(fifth.ticket, undefined), false);
  assert.equal(state.phase, "idle");

  state.answer(state.begin(URI).ticket, suggestion);
  assert.equal(state.accept(), suggestion);
  assert.equal(state.accept(), undefined, "taken once");
  assert.equal(state.dismiss(), undefined);
  state.answer(state.begin(URI).ticket, suggestion);
  assert.equal(state.dismiss(), "e1");
  assert.equal(state.visible, undefined);
});

test("a server WorkspaceEdit as plain parts, versioned or not", () => {
  const versioned = { documentChanges: [{ textDocument: { uri: URI, version: 7 },
    edits: [edit(0, 0, 1, 0, "def f():\n")] }] };
  assert.deepEqual(workspaceEditParts(versioned),
    [{ uri: URI, version: 7, edits: [edit(0, 0, 1, 0, "def f():\n")] }]);
  assert.deepEqual(workspaceEditParts({ changes: { [URI]: [edit(0, 0, 0, 0, "x")] } }),
    [{ uri: URI, version: null, edits: [edit(0, 0, 0, 0, "x")] }]);
  assert.equal(workspaceEditParts(null), undefined);
  assert.equal(workspaceEditParts({}), undefined);
  assert.equal(workspaceEditParts({ documentChanges: [{ kind: "create", uri: URI }] }), undefined);
});

test("an empty selection edits the cursor's line", () => {
  const cursor = { start: { line: 3, character: 2 }, end: { line: 3, character: 2 } };
  assert.deepEqual(selectionOrLine(cursor, 17),
    { start: { line: 3, character: 0 }, end: { line: 3, character: 17 } });
  const selection = { start: { line: 1, character: 0 }, end: { line: 4, character: 1 } };
  assert.equal(selectionOrLine(selection, 9), selection);
});
