// Settings -> server command and initializationOptions; the executable probe.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { findExecutable, missingServerMessage } from "../probe";
import { plainReader, serverCommand, serverSettings } from "../settings";

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));
const properties: Record<string, { default: unknown }> = manifest.contributes.configuration.properties;

/** What VS Code's getConfiguration("sparkedit") reads when the user set nothing. */
function defaults(): Record<string, unknown> {
  return Object.fromEntries(Object.entries(properties)
    .map(([key, value]) => [key.replace(/^sparkedit\./, ""), value.default]));
}

test("the defaults become the server's own defaults, and only its keys are sent", () => {
  assert.deepEqual(serverSettings(plainReader(defaults())), {
    target: "wafer-sim", backend: "auto", budget: 2048, maxTokens: 64, warmUp: true,
    warmBudget: 1024, languages: [], exclude: [], maxFileBytes: 1000000,
    debounce: { minMs: 0, maxMs: 150 }, nextEdit: true,
  });
});

test("user values pass through", () => {
  const settings = serverSettings(plainReader({
    ...defaults(), target: "cerebras", model: " llama-4 ", baseUrl: "", budget: 8192,
    languages: ["python", "tsx"], "debounce.maxMs": 300, statsFile: "off", nextEdit: false,
    backend: "ggml", quant: "q4_k_m", warmUp: false, warmBudget: 512,
  }));
  assert.equal(settings.target, "cerebras");
  assert.equal(settings.model, "llama-4");
  assert.equal(settings.budget, 8192);
  assert.deepEqual(settings.languages, ["python", "tsx"]);
  assert.deepEqual(settings.debounce, { minMs: 0, maxMs: 300 });
  assert.equal(settings.statsFile, "off");
  assert.equal(settings.nextEdit, false);
  assert.equal("serverPath" in settings, false);
  assert.equal(settings.backend, "ggml");
  assert.equal(settings.quant, "q4_k_m");
  assert.equal(settings.warmUp, false);
  assert.equal(settings.warmBudget, 512);
});

test("an empty model, baseUrl, quant or statsFile is left out, or null when just cleared", () => {
  // null resets the server to its default, which would override `sparkedit lsp --model DIR`
  const empty = serverSettings(plainReader({ ...defaults(), model: "", baseUrl: "  " }));
  assert.equal("model" in empty, false);
  assert.equal("baseUrl" in empty, false);
  assert.equal("statsFile" in empty, false);
  assert.equal("quant" in empty, false);
  const cleared = serverSettings(plainReader({ ...defaults(), model: "" }),
    (key) => key === "model" || key === "quant");
  assert.equal(cleared.model, null);
  assert.equal(cleared.quant, null);
  assert.equal("baseUrl" in cleared, false);
});

test("settings VS Code does not know are left out rather than sent as undefined", () => {
  assert.deepEqual(serverSettings(plainReader({ budget: 512 })), { budget: 512 });
  assert.deepEqual(JSON.parse(JSON.stringify(serverSettings(plainReader({})))), {});
});

test("the server command: sparkedit lsp by default, a home-relative path expanded", () => {
  assert.deepEqual(serverCommand(plainReader(defaults())), { command: "sparkedit", args: ["lsp"] });
  assert.deepEqual(serverCommand(plainReader({ serverPath: "~/venv/bin/sparkedit",
    serverArgs: ["lsp", "--log-level", "DEBUG"] }), "/home/me"),
  { command: "/home/me/venv/bin/sparkedit", args: ["lsp", "--log-level", "DEBUG"] });
  assert.deepEqual(serverCommand(plainReader({ serverPath: "  ", serverArgs: "lsp" })),
    { command: "sparkedit", args: ["lsp"] });
});

test("the probe looks the command up on PATH, or checks a path as given", () => {
  const present = new Set(["/opt/venv/bin/sparkedit", "/usr/bin/python3"]);
  const isExecutable = (file: string) => present.has(file);
  const env = { PATH: "/usr/local/bin:/opt/venv/bin:/usr/bin" };
  assert.equal(findExecutable("sparkedit", env, "linux", isExecutable), "/opt/venv/bin/sparkedit");
  assert.equal(findExecutable("python3", env, "linux", isExecutable), "/usr/bin/python3");
  assert.equal(findExecutable("missing", env, "linux", isExecutable), undefined);
  assert.equal(findExecutable("/usr/bin/python3", {}, "linux", isExecutable), "/usr/bin/python3");
  assert.equal(findExecutable("./sparkedit", env, "linux", isExecutable), undefined);
  const windows = (file: string) => file === "C:\\tools\\sparkedit.EXE";
  assert.equal(findExecutable("sparkedit", { Path: "C:\\tools", PATHEXT: ".EXE;.CMD" }, "win32",
    windows), "C:\\tools\\sparkedit.EXE");
});

test("the probe against the real file system: node is found, a made-up name is not", () => {
  assert.ok(findExecutable(process.execPath));
  assert.ok(findExecutable("node") || !process.env.PATH?.includes(path.dirname(process.execPath)));
  assert.equal(findExecutable("sparkedit-no-such-binary-xyz"), undefined);
  assert.equal(findExecutable(__filename), undefined, "not executable");
});

test("the missing-server message says where it looked and what to set", () => {
  const message = missingServerMessage("sparkedit");
  assert.match(message, /not found on PATH \(sparkedit\)/);
  assert.match(message, /sparkedit\.serverPath/);
  assert.match(missingServerMessage("/opt/x/sparkedit"), /not found at \/opt\/x\/sparkedit/);
});
