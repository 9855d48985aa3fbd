// activate/deactivate on the stand-in: a missing server gives a clear error; with the real
// server, the real LanguageClient starts (no duplicate command registration), ghost text
// reports didShow and `sparkedit.accept` didAccept, settings changes reach the server,
// the active editor is reported with sparkedit/didFocus, next edits and "Edit selection"
// run end to end; an instruction edit that changes nothing is said (a remote that answers
// every edit unchanged, SPARKEDIT_TEST_REMOTE_URL).

import "../testing/hook";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { activate, deactivate, Sparkedit } from "../extension";
import { PYTHON, REMOTE_URL, SAMPLE, serverArgs, SKIP, withTimeout } from "../testing/server";
import * as stub from "../testing/vscode-stub";

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));
const DEFAULTS: Record<string, unknown> = Object.fromEntries(
  Object.entries(manifest.contributes.configuration.properties)
    .map(([key, value]) => [key, (value as { default: unknown }).default]));
const COMMANDS = manifest.contributes.commands.map((c: { command: string }) => c.command);

function context() {
  return { subscriptions: [] as { dispose(): unknown }[] };
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>,
  ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("a missing server: one clear error, the commands are there and say so", async () => {
  stub.reset({ ...DEFAULTS, "sparkedit.serverPath": "sparkedit-not-installed-xyz" });
  const ctx = context();
  const sparkedit = await activate(ctx as never);
  assert.equal(sparkedit.running(), undefined);
  const errors = stub.recorded.messages.filter((m) => m.level === "error");
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /not found on PATH \(sparkedit-not-installed-xyz\)/);
  assert.deepEqual(errors[0].items, ["Open Settings"]);
  assert.equal(sparkedit.status.text, "$(error) sparkedit");
  for (const command of COMMANDS.concat("sparkedit.accept")) {
    assert.ok(stub.commands.registered().includes(command), command);
  }
  stub.openEditor("x = 1\n");
  await stub.commands.executeCommand("sparkedit.editSelection");
  assert.match(stub.recorded.messages.at(-1)!.message, /not running/);
  await stub.commands.executeCommand("sparkedit.accept", "s1"); // no server: nothing to tell
  await deactivate();
  ctx.subscriptions.forEach((d) => d.dispose());
});

describe("the extension with the real server", { skip: SKIP }, () => {
  let sparkedit: Sparkedit;
  let ctx: ReturnType<typeof context>;
  const providers: any[] = [];

  after(async () => {
    await withTimeout(deactivate(), 20_000, "deactivate");
    ctx?.subscriptions.forEach((d) => d.dispose());
  });

  test("activate starts the language client with the settings", async () => {
    stub.reset({ ...DEFAULTS, "sparkedit.serverPath": PYTHON, "sparkedit.serverArgs": serverArgs(),
      "sparkedit.statsFile": "off" });
    stub.languages.registerInlineCompletionItemProvider = ((_selector: unknown, provider: unknown) => {
      providers.push(provider);
      return new stub.Disposable();
    }) as never;
    stub.openEditor(SAMPLE, "file:///work/sample.py");
    ctx = context();
    sparkedit = await withTimeout(activate(ctx as never), 60_000, "activate");
    assert.ok(sparkedit.running(), JSON.stringify(stub.recorded.messages));
    assert.equal(stub.recorded.messages.filter((m) => m.level === "error").length, 0);
    assert.equal(providers.length, 1, "the client's own inline completion provider");
  });

  test("ghost text: didShow for the shown item, sparkedit.accept reports the accept", async () => {
    const editor = stub.window.activeTextEditor!;
    const lines = SAMPLE.split("\n");
    let id: string | undefined;
    for (const line of [30, 36, 20, 44, 12, 50]) {
      const token = new stub.CancellationTokenSource().token;
      const result: any = await withTimeout(providers[0].provideInlineCompletionItems(editor.document,
        new stub.Position(line, lines[line].length), { triggerKind: 1 }, token), 60_000, "inline");
      const items = Array.isArray(result) ? result : result?.items ?? [];
      if (items.length) {
        assert.equal(items[0].command.command, "sparkedit.accept");
        id = items[0].command.arguments[0];
        break;
      }
    }
    assert.ok(id, "no suggestion anywhere in the sample");
    // VS Code runs the item's command when the ghost text is accepted.
    await stub.commands.executeCommand("sparkedit.accept", id);
    const status = await withTimeout(sparkedit.running()!.sendRequest("sparkedit/status", {}),
      10_000, "status") as any;
    assert.ok(status.stats.shown >= 1, JSON.stringify(status.stats));
    assert.ok(status.stats.accepted >= 1, JSON.stringify(status.stats));
    // The --model of serverArgs still serves: the empty `sparkedit.model` sent no null.
    assert.equal(status.untrained, true, JSON.stringify(status));
    await until("the status bar's latency", () => /\d+ ms$/.test(sparkedit.status.text) || undefined);
  });

  test("the active editor is sent as sparkedit/didFocus, at start and on every change", async () => {
    const status = () => withTimeout(sparkedit.running()!.sendRequest("sparkedit/status", {}),
      10_000, "status") as Promise<any>;
    assert.equal((await status()).focus, "file:///work/sample.py"); // the editor open at start
    const sample = stub.window.activeTextEditor!;
    const other = stub.openEditor("def g():\n    pass\n", "file:///work/other.py");
    await until("the server's focus on other.py",
      async () => (await status()).focus === "file:///work/other.py" || undefined);
    stub.openEditor("log line", "output:sparkedit"); // not a document the server sees
    sample.selection = new stub.Selection(new stub.Position(30, 4), new stub.Position(30, 4));
    stub.fireActiveEditor(sample);
    await until("the server's focus back on sample.py",
      async () => (await status()).focus === "file:///work/sample.py" || undefined);
    assert.equal(other.document.uri.toString(), "file:///work/other.py");
  });

  test("a settings change reaches the running server (it warns about a bad value)", async () => {
    stub.configure({ "sparkedit.maxTokens": 0 });
    const warning = await until("the server's warning", () => stub.recorded.messages.find(
      (m) => m.level === "warning" && /maxTokens/.test(m.message)));
    assert.match(warning.message, /sparkedit settings/);
    stub.configure({ "sparkedit.maxTokens": 64 });
  });

  test("a next edit request goes through the client and validates its answer", async () => {
    const editor = stub.window.activeTextEditor!;
    editor.selection = new stub.Selection(new stub.Position(30, 4), new stub.Position(30, 4));
    const suggestion = await withTimeout(sparkedit.nextEdit.request(editor as never), 60_000,
      "next edit");
    if (suggestion) { // an untrained model may well propose nothing
      assert.equal(suggestion.version, editor.document.version);
      assert.equal(stub.recorded.context.get("sparkedit.nextEditVisible"), true);
      await stub.commands.executeCommand("sparkedit.dismissNextEdit");
      assert.equal(stub.recorded.context.get("sparkedit.nextEditVisible"), false);
    }
  });

  test("Edit selection asks for an instruction and applies the server's edit", async () => {
    const editor = stub.window.activeTextEditor!;
    const before = editor.document.getText();
    editor.selection = new stub.Selection(new stub.Position(10, 0), new stub.Position(12, 0));
    stub.answers.inputs.push("add a docstring");
    const outcome = await withTimeout(
      stub.commands.executeCommand("sparkedit.editSelection") as Promise<string>, 60_000, "edit");
    assert.ok(["applied", "no-edit"].includes(outcome), outcome);
    if (outcome === "no-edit") {
      assert.equal(editor.document.getText(), before);
      assert.match(stub.recorded.messages.at(-1)!.message, /^sparkedit: (no |nothing)/);
    }
    const text = await withTimeout(sparkedit.running()!.sendRequest("sparkedit/documentText",
      { uri: editor.document.uri.toString() }), 10_000, "documentText") as any;
    assert.equal(text.text, editor.document.getText(), "the server's copy follows the edit");
  });

  test("deactivate stops the server", async () => {
    await withTimeout(deactivate(), 20_000, "deactivate");
    assert.equal(sparkedit.running(), undefined);
  });
});

describe("an instruction edit that changes nothing", {
  skip: SKIP || (REMOTE_URL ? false : "SPARKEDIT_TEST_REMOTE_URL is not set "
    + "(tests/clients/test_vscode_extension.py sets it)"),
}, () => {
  test("applies nothing and the user is told", async () => {
    stub.reset({ ...DEFAULTS, "sparkedit.serverPath": PYTHON,
      "sparkedit.serverArgs": ["-m", "lsp_server.cli", "lsp"], "sparkedit.statsFile": "off",
      "sparkedit.target": "cerebras", "sparkedit.baseUrl": REMOTE_URL,
      "sparkedit.model": "coder-test" });
    const editor = stub.openEditor(SAMPLE, "file:///work/sample.py");
    const ctx = context();
    await withTimeout(activate(ctx as never), 60_000, "activate");
    try {
      const before = editor.document.getText();
      editor.selection = new stub.Selection(new stub.Position(10, 0), new stub.Position(12, 0));
      stub.answers.inputs.push("add a docstring");
      const outcome = await withTimeout(
        stub.commands.executeCommand("sparkedit.editSelection") as Promise<string>, 60_000, "edit");
      assert.equal(outcome, "no-edit");
      assert.equal(editor.document.getText(), before);
      const said = await until("the server's message", () => stub.recorded.messages.find(
        (m) => m.message.startsWith("sparkedit: n")), 10_000).catch(() => undefined);
      assert.equal(said?.message, "sparkedit: no change proposed for the selection",
        JSON.stringify(stub.recorded.messages));
    } finally {
      await withTimeout(deactivate(), 20_000, "deactivate");
      ctx.subscriptions.forEach((d) => d.dispose());
    }
  });
});
