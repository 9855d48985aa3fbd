// The protocol the extension relies on, against the real Python server, through
// vscode-languageclient's own JSON-RPC stack (vscode-languageserver-protocol/node).

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { suggestionFrom, workspaceEditParts } from "../edits";
import { ACCEPT_COMMAND, DID_FOCUS, EXTENSION_COMMANDS, focusParams, suggestionId } from "../protocol";
import { plainReader, serverSettings } from "../settings";
import { statusBarText } from "../statusText";
import { SAMPLE, ServerProcess, SKIP } from "../testing/server";

const URI = "file:///work/sample.py";

function defaults(): Record<string, unknown> {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));
  return Object.fromEntries(Object.entries(manifest.contributes.configuration.properties)
    .map(([key, value]) => [key.replace(/^sparkedit\./, ""), (value as { default: unknown }).default]));
}

test("didFocus params: the document and cursor, nothing for a document the server does not see", () => {
  const doc = (uri: string, scheme: string) => ({ uri: { scheme, toString: () => uri } });
  assert.deepEqual(focusParams(doc(URI, "file"), { line: 3, character: 7 }),
    { textDocument: { uri: URI }, position: { line: 3, character: 7 } });
  assert.deepEqual(focusParams(doc("untitled:Untitled-1", "untitled")),
    { textDocument: { uri: "untitled:Untitled-1" } });
  assert.equal(focusParams(doc("output:tasks", "output"), { line: 0, character: 0 }), undefined);
  assert.equal(focusParams(doc("git:/work/a.py?ref", "git")), undefined);
});

describe("sparkedit lsp through vscode-languageserver-protocol", { skip: SKIP }, () => {
  let server: ServerProcess;
  let initialized: any;

  before(async () => {
    server = new ServerProcess();
    initialized = await server.request("initialize", {
      processId: process.pid,
      rootUri: null,
      capabilities: {
        general: { positionEncodings: ["utf-16"] },
        textDocument: { inlineCompletion: { dynamicRegistration: true } },
        workspace: { executeCommand: { dynamicRegistration: true } },
      },
      initializationOptions: { statsFile: "off" },
    });
    await server.notify("initialized", {});
  });

  after(async () => {
    await server?.close();
  });

  test("initialize: utf-16, inline completion, and the commands the extension takes over", () => {
    const capabilities = initialized.capabilities;
    assert.equal(capabilities.positionEncoding ?? "utf-16", "utf-16");
    assert.ok(capabilities.inlineCompletionProvider);
    assert.equal(capabilities.textDocumentSync?.change ?? capabilities.textDocumentSync, 2);
    // The language client would register these as VS Code commands; client.ts leaves them
    // to the extension, so the list must name them.
    for (const command of EXTENSION_COMMANDS) {
      assert.ok(capabilities.executeCommandProvider.commands.includes(command), command);
    }
  });

  test("the extension's settings payload is accepted without a warning", async () => {
    const settings = { ...serverSettings(plainReader(defaults())), statsFile: "off" };
    await server.notify("workspace/didChangeConfiguration", { settings: { sparkedit: settings } });
    const status = await server.request("sparkedit/status", {}, 10_000);
    const warnings = server.notifications.filter((n) => n.method === "window/showMessage");
    assert.deepEqual(warnings, []);
    assert.equal(status.target, "wafer-sim");
    assert.doesNotMatch(server.stderr, /initializationOptions:/);
  });

  test("utf-16 positions: an edit after an astral character lands where VS Code put it",
    async () => {
      const uri = "file:///work/emoji.py";
      await server.notify("textDocument/didOpen", { textDocument: { uri, languageId: "python",
        version: 1, text: "s = \"😀é\"\n" } });
      // 😀 is two UTF-16 code units (one code point, four UTF-8 bytes): the closing quote,
      // after it and é, is at character 8.
      await server.notify("textDocument/didChange", { textDocument: { uri, version: 2 },
        contentChanges: [{ range: { start: { line: 0, character: 8 }, end: { line: 0, character: 8 } },
          text: "!" }] });
      const doc = await server.request("sparkedit/documentText", { uri }, 10_000);
      assert.deepEqual(doc, { uri, version: 2, text: "s = \"😀é!\"\n" });
    });

  test("inline completion items carry sparkedit.accept [id]; feedback reaches the stats",
    async () => {
      await server.notify("textDocument/didOpen", { textDocument: { uri: URI, languageId: "python",
        version: 1, text: SAMPLE } });
      const lines = SAMPLE.split("\n");
      let found: { id: string; text: string } | undefined;
      for (const line of [30, 36, 20, 44, 12, 50]) {
        const answer = await server.request("textDocument/inlineCompletion", {
          textDocument: { uri: URI }, position: { line, character: lines[line].length },
          context: { triggerKind: 2 },
        });
        const items = Array.isArray(answer) ? answer : answer?.items ?? [];
        if (items.length && items[0].insertText) {
          assert.equal(items[0].command.command, ACCEPT_COMMAND);
          const id = suggestionId(items[0].command);
          assert.equal(typeof id, "string");
          found = { id: id!, text: items[0].insertText };
          break;
        }
      }
      assert.ok(found, "no suggestion anywhere in the sample");
      const before = (await server.request("sparkedit/status", {}, 10_000)).stats;
      await server.notify("sparkedit/didShow", { id: found.id });
      await server.notify("sparkedit/didAccept", { id: found.id });
      const status = await server.request("sparkedit/status", {}, 10_000);
      assert.equal(status.stats.shown, before.shown + 1);
      assert.equal(status.stats.accepted, before.accepted + 1);
      assert.equal(status.state, "ready");
      assert.match(statusBarText(status), /^\$\(zap\) sparkedit \d+ ms$/);
    });

  test("sparkedit/didFocus makes the document the one the server warms up", async () => {
    const uri = "file:///work/focus.py";
    await server.notify("textDocument/didOpen", { textDocument: { uri, languageId: "python",
      version: 1, text: "def f(x):\n    return x\n" } });
    await server.notify(DID_FOCUS, { textDocument: { uri }, position: { line: 1, character: 4 } });
    const status = await server.request("sparkedit/status", {}, 10_000);
    assert.equal(status.focus, uri);
    assert.ok(Array.isArray(status.warm), JSON.stringify(status));
  });

  test("sparkedit/nextEdit answers {edits} for the version asked, nothing for a stale one",
    async () => {
      const uri = "file:///work/area.py";
      const text = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\nprint(area(4, 5))\n";
      await server.notify("textDocument/didOpen", { textDocument: { uri, languageId: "python",
        version: 1, text } });
      const params = { textDocument: { uri, version: 1 }, position: { line: 4, character: 6 } };
      const answer = await server.request("sparkedit/nextEdit", params);
      assert.ok(Array.isArray(answer.edits));
      if (answer.edits.length) { // an untrained model may well propose nothing
        const suggestion = suggestionFrom(answer, uri, 1);
        assert.ok(suggestion, JSON.stringify(answer));
        await server.notify("sparkedit/didShow", { id: suggestion.id });
        await server.notify("sparkedit/didReject", { id: suggestion.id });
      }
      const stale = { ...params, textDocument: { uri, version: 0 } };
      assert.deepEqual(await server.request("sparkedit/nextEdit", stale), { edits: [] });
    });

  test("workspace/executeCommand sparkedit.editSelection answers a versioned edit or null",
    async () => {
      const uri = "file:///work/hint.py";
      await server.notify("textDocument/didOpen", { textDocument: { uri, languageId: "python",
        version: 4, text: "def area(w, h):\n    return w * h\n" } });
      const range = { start: { line: 0, character: 0 }, end: { line: 1, character: 16 } };
      const answer = await server.request("workspace/executeCommand",
        { command: "sparkedit.editSelection", arguments: [uri, range, "add type hints"] });
      if (answer !== null) {
        const parts = workspaceEditParts(answer);
        assert.ok(parts, JSON.stringify(answer));
        assert.deepEqual(parts.map((p) => [p.uri, p.version]), [[uri, 4]]);
      }
      await assert.rejects(server.request("workspace/executeCommand",
        { command: "sparkedit.editSelection", arguments: [uri, range] }), /uri, range, instruction/);
    });

  test("shutdown and exit end the server process", async () => {
    const code = await server.close();
    assert.equal(code, 0, server.stderr.slice(-2000));
  });
});
