// Ghost-text feedback middleware and the server commands the extension keeps for itself.

import "../testing/hook";
import assert from "node:assert/strict";
import { test } from "node:test";
import { EXTENSION_COMMANDS, leaveCommandsToExtension } from "../client";
import { firstItemId, inlineMiddleware, ShownIds } from "../inline";
import * as stub from "../testing/vscode-stub";

const accept = (id: unknown) => ({ title: "accept", command: "sparkedit.accept", arguments: [id] });

function item(text: string, id?: unknown) {
  return new stub.InlineCompletionItem(text, undefined, id === undefined ? undefined : accept(id));
}

test("the first item's sparkedit id, from a list or an array", () => {
  assert.equal(firstItemId([item("x", "s1"), item("y", "s2")] as never), "s1");
  assert.equal(firstItemId(new stub.InlineCompletionList([item("x", "s3")]) as never), "s3");
  assert.equal(firstItemId([item("x")] as never), undefined);
  assert.equal(firstItemId([item("x", 7)] as never), undefined);
  assert.equal(firstItemId([] as never), undefined);
  assert.equal(firstItemId(null), undefined);
});

test("didShow once per shown suggestion and document, after the items arrive", async () => {
  const sent: unknown[] = [];
  const answered: boolean[] = [];
  const middleware = inlineMiddleware((method, params) => sent.push([method, params]),
    new ShownIds(), (hadItems) => answered.push(hadItems));
  const document = { uri: stub.Uri.parse("file:///work/a.py") };
  const token = new stub.CancellationTokenSource().token;
  let result: unknown = [item("return x", "s1")];
  const next = async () => result;
  const provide = () => middleware.provideInlineCompletionItems!(document as never, {} as never,
    {} as never, token as never, next as never);
  assert.equal(await provide(), result, "the items go through unchanged");
  await provide(); // typed through: the same id again
  result = [item("eturn x", "s2")];
  await provide();
  result = [];
  await provide();
  assert.deepEqual(sent, [["sparkedit/didShow", { id: "s1" }], ["sparkedit/didShow", { id: "s2" }]]);
  assert.deepEqual(answered, [true, true, true, false]);
});

test("nothing is reported for a request VS Code already cancelled", async () => {
  const sent: unknown[] = [];
  const middleware = inlineMiddleware((method, params) => sent.push([method, params]));
  const source = new stub.CancellationTokenSource();
  source.cancel();
  await middleware.provideInlineCompletionItems!({ uri: stub.Uri.parse("file:///a.py") } as never,
    {} as never, {} as never, source.token as never, (async () => [item("x", "s1")]) as never);
  assert.deepEqual(sent, []);
});

test("the client registers the server's commands except the extension's own", () => {
  const registered: string[][] = [];
  const feature = { register(data: { registerOptions: { commands: string[] } }) {
    registered.push(data.registerOptions.commands);
  } };
  leaveCommandsToExtension(feature as never, EXTENSION_COMMANDS);
  const data = { id: "1", registerOptions: { commands: ["sparkedit.editSelection",
    "sparkedit.accept", "sparkedit.other"] } };
  feature.register(data);
  assert.deepEqual(registered, [["sparkedit.other"]]);
  assert.deepEqual(data.registerOptions.commands.length, 3, "the server's list is not mutated");
  feature.register({ id: "2", registerOptions: {} } as never);
  assert.deepEqual(registered[1], []);
});
