// The next-edit controller on the stand-in: debounced requests, decorations and the
// context key, accept (WorkspaceEdit, cursor, didAccept), dismiss (didReject), staleness.

import "../testing/hook";
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { CONTEXT_KEY, NextEditController, ServerLink } from "../nextEdit";
import * as stub from "../testing/vscode-stub";

const TEXT = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\n";
const URI = "file:///work/sample.py";

interface Sent {
  method: string;
  params: any;
}

/** A language client stand-in: answers next edits from `answer`, records the rest. */
class FakeLink implements ServerLink {
  requests: Sent[] = [];
  notifications: Sent[] = [];
  answer: (params: any) => unknown = () => ({ edits: [] });
  async sendRequest(method: string, params: unknown) {
    this.requests.push({ method, params });
    await new Promise((resolve) => setImmediate(resolve));
    return this.answer(params);
  }
  async sendNotification(method: string, params: unknown) {
    this.notifications.push({ method, params });
  }
  sent(method: string): unknown[] {
    return this.notifications.filter((n) => n.method === method).map((n) => n.params);
  }
}

const RENAME = (version: number) => ({
  id: "e1",
  textDocument: { uri: URI, version },
  edits: [{ range: { start: { line: 4, character: 6 }, end: { line: 4, character: 10 } },
    newText: "rect_area" }],
});

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

let link: FakeLink;
let controller: NextEditController;
let enabled: boolean;

beforeEach(() => {
  stub.reset();
  link = new FakeLink();
  enabled = true;
  controller = new NextEditController({ link: () => link, enabled: () => enabled, delayMs: 20 });
});

afterEach(() => controller.dispose());

function decorations(editor: stub.TextEditor) {
  const [deleted, inserted] = stub.recorded.decorationTypes;
  return { deleted: editor.decorations.get(deleted) ?? [], inserted: editor.decorations.get(inserted) ?? [] };
}

test("an edit, a pause, then one request at the cursor for that version", async () => {
  const editor = stub.openEditor(TEXT, URI);
  editor.moveTo(2, 0);
  await tick(60);
  assert.equal(link.requests.length, 0, "moving around a document not edited asks nothing");
  editor.document.edit([{ range: new stub.Range(4, 17, 4, 17), newText: "\n" }]);
  editor.moveTo(5, 0);
  assert.equal(link.requests.length, 0, "debounced");
  await tick(60);
  assert.equal(link.requests.length, 1);
  assert.deepEqual(link.requests[0], { method: "sparkedit/nextEdit", params: {
    textDocument: { uri: URI, version: 2 }, position: { line: 5, character: 0 } } });
  editor.moveTo(1, 0); // once edited, a pause after moving asks again
  await tick(60);
  assert.deepEqual(link.requests[1].params.position, { line: 1, character: 0 });
});

test("the answer is drawn: struck deletions, inserted text after, the context key set", async () => {
  const editor = stub.openEditor(TEXT, URI);
  link.answer = (params) => RENAME(params.textDocument.version);
  editor.moveTo(4, 6);
  const shown = await controller.request(editor as never);
  assert.equal(shown?.id, "e1");
  const { deleted, inserted } = decorations(editor);
  assert.deepEqual(deleted.map((d) => [d.range.start.character, d.range.end.character]), [[6, 10]]);
  assert.equal(inserted[0].renderOptions.after.contentText, "rect_area");
  assert.deepEqual([inserted[0].range.start.line, inserted[0].range.start.character], [4, 10]);
  assert.match(inserted[0].hoverMessage.value, /rect_area/);
  assert.equal(stub.recorded.context.get(CONTEXT_KEY), true);
  assert.deepEqual(link.sent("sparkedit/didShow"), [{ id: "e1" }]);
  assert.equal(stub.recorded.decorationTypes[0].options.textDecoration, "line-through");
});

test("accept applies the edits, moves the cursor after them and reports didAccept", async () => {
  const editor = stub.openEditor(TEXT, URI);
  link.answer = (params) => RENAME(params.textDocument.version);
  await controller.request(editor as never);
  assert.equal(await controller.accept(), true);
  assert.equal(editor.document.getText(), TEXT.replace("print(area", "print(rect_area"));
  assert.deepEqual([editor.selection.active.line, editor.selection.active.character], [4, 15]);
  assert.deepEqual(link.sent("sparkedit/didAccept"), [{ id: "e1" }]);
  assert.deepEqual(link.sent("sparkedit/didReject"), [], "its own change is no rejection");
  assert.equal(stub.recorded.context.get(CONTEXT_KEY), false);
  assert.deepEqual(decorations(editor).inserted, []);
  assert.equal(await controller.accept(), false, "nothing left to accept");
});

test("dismiss clears the decorations and reports didReject", async () => {
  const editor = stub.openEditor(TEXT, URI);
  link.answer = (params) => RENAME(params.textDocument.version);
  await controller.request(editor as never);
  controller.dismiss();
  assert.deepEqual(link.sent("sparkedit/didReject"), [{ id: "e1" }]);
  assert.equal(stub.recorded.context.get(CONTEXT_KEY), false);
  assert.deepEqual(decorations(editor).deleted, []);
  assert.equal(editor.document.getText(), TEXT);
  controller.dismiss();
  assert.equal(link.sent("sparkedit/didReject").length, 1, "once");
});

test("typing over a visible suggestion rejects it; an answer for an old version is dropped",
  async () => {
    const editor = stub.openEditor(TEXT, URI);
    link.answer = (params) => RENAME(params.textDocument.version);
    await controller.request(editor as never);
    editor.document.edit([{ range: new stub.Range(0, 0, 0, 0), newText: "#" }]);
    assert.deepEqual(link.sent("sparkedit/didReject"), [{ id: "e1" }]);
    assert.equal(stub.recorded.context.get(CONTEXT_KEY), false);

    link.answer = () => RENAME(2); // answered for version 2 ...
    const pending = controller.request(editor as never);
    editor.document.edit([{ range: new stub.Range(0, 1, 0, 1, ), newText: " " }]); // ... now 3
    assert.equal(await pending, undefined);
    assert.equal(controller.state.phase, "idle");
    assert.deepEqual(decorations(editor).inserted, []);
  });

test("an edit out of sight is revealed by the first Tab and applied by the second", async () => {
  const editor = stub.openEditor(TEXT, URI);
  editor.visibleRanges = [new stub.Range(0, 0, 2, 0)];
  link.answer = (params) => RENAME(params.textDocument.version);
  await controller.request(editor as never);
  assert.equal(await controller.accept(), false);
  assert.equal(editor.revealed[0].start.line, 4);
  assert.equal(editor.document.getText(), TEXT);
  editor.visibleRanges = [new stub.Range(2, 0, 6, 0)];
  assert.equal(await controller.accept(), true);
  assert.match(editor.document.getText(), /rect_area/);
});

test("no requests when the setting is off, for other schemes, or without a server", async () => {
  enabled = false;
  const editor = stub.openEditor(TEXT, URI);
  editor.document.edit([{ range: new stub.Range(0, 0, 0, 0), newText: "#" }]);
  await tick(60);
  assert.equal(link.requests.length, 0);
  enabled = true;
  const output = stub.openEditor("x", "output:extension-output");
  output.document.edit([{ range: new stub.Range(0, 0, 0, 0), newText: "y" }]);
  await tick(60);
  assert.equal(link.requests.length, 0);
  const none = new NextEditController({ link: () => undefined, enabled: () => true });
  assert.equal(await none.request(editor as never), undefined);
  none.dispose();
});

test("switching editors rejects the visible suggestion", async () => {
  const editor = stub.openEditor(TEXT, URI);
  link.answer = (params) => RENAME(params.textDocument.version);
  await controller.request(editor as never);
  stub.openEditor("y = 1\n", "file:///work/other.py");
  assert.deepEqual(link.sent("sparkedit/didReject"), [{ id: "e1" }]);
  assert.deepEqual(decorations(editor).inserted, []);
});
