// Status text from `sparkedit/status` payloads, and the status-bar item on the stand-in.

import "../testing/hook";
import assert from "node:assert/strict";
import { test } from "node:test";
import { StatusBar } from "../status";
import { statusBarText, statusLines, statusTooltip } from "../statusText";
import * as stub from "../testing/vscode-stub";

const READY = {
  state: "ready", message: "engine ready", model: "tiny-untrained", untrained: true,
  target: "wafer-sim", indexReady: true,
  lastLatencies: { context_ms: 3.2, ttft_ms: 41.7, total_ms: 142.4 },
  stats: { shown: 4, accepted: 1, partiallyAccepted: 1, rejected: 2, acceptanceRate: 0.5,
    requests: 9, answeredFromCache: 3, cancelled: 2,
    latencyMs: { p50: 120.0, p95: 310.5, count: 6 } },
};

test("the status bar shows the state and the last total latency", () => {
  assert.equal(statusBarText(READY), "$(zap) sparkedit 142 ms");
  assert.equal(statusBarText({ state: "ready", lastLatencies: {} }), "$(zap) sparkedit");
  assert.equal(statusBarText({ state: "starting" }), "$(sync~spin) sparkedit");
  assert.equal(statusBarText({ state: "error", message: "boom" }), "$(error) sparkedit");
  assert.equal(statusBarText({ state: "stopped" }), "$(circle-slash) sparkedit");
  assert.equal(statusBarText({}), "$(question) sparkedit");
});

test("the detail lines: state, engine, latency breakdown, acceptance, requests", () => {
  assert.deepEqual(statusLines(READY), [
    "ready: engine ready",
    "model tiny-untrained (untrained) · target wafer-sim",
    "last suggestion: context 3 ms · first token 42 ms · total 142 ms",
    "shown 4 · accepted 1 (+1 in part) · rejected 2 · acceptance 50%",
    "latency: p50 120 ms · p95 311 ms (6)",
    "requests 9 · from cache 3 · cancelled 2",
  ]);
  assert.deepEqual(statusLines({ state: "starting", indexReady: false }),
    ["starting", "workspace index: building"]);
  assert.match(statusTooltip(READY), /^sparkedit\nready: engine ready\n/);
  assert.deepEqual(statusLines({ state: "ready", lastLatencies: { ttft_ms: null, total_ms: 9 } }),
    ["ready", "last suggestion: total 9 ms"]);
});

test("the warm-up line is about the focused document", () => {
  const uri = "file:///work/a.py";
  const warm = (complete: boolean, warming: number | null, budget: number) =>
    ({ state: "ready", focus: uri, warm: [{ uri: "file:///work/b.py", budget: 1, complete: true,
      warming: null }, { uri, budget, complete, warming }] });
  assert.deepEqual(statusLines(warm(false, 1024, 1024)), ["ready",
    "warming up the context (1024 tokens); suggestions use 1024 tokens meanwhile"]);
  assert.deepEqual(statusLines(warm(false, null, 1024)),
    ["ready", "context not warm; suggestions use 1024 tokens meanwhile"]);
  assert.deepEqual(statusLines(warm(true, null, 8192)),
    ["ready", "context warm: 8192 tokens prefilled"]);
  assert.deepEqual(statusLines({ state: "ready", focus: null, warm: [] }), ["ready"]);
});

test("the status-bar item follows the notifications and opens the status on click", async () => {
  stub.reset();
  const bar = new StatusBar();
  const item = stub.recorded.statusItems[0];
  assert.equal(item.shown, true);
  assert.equal(item.command, "sparkedit.showStatus");
  assert.equal(item.text, "$(sync~spin) sparkedit");
  bar.update(READY);
  assert.equal(item.text, "$(zap) sparkedit 142 ms");
  assert.equal(item.backgroundColor, undefined);
  bar.failed("the language server executable was not found");
  assert.equal(item.text, "$(error) sparkedit");
  assert.equal(item.backgroundColor.id, "statusBarItem.errorBackground");
  assert.match(item.tooltip, /not found/);
  bar.update(READY);
  await bar.show(stub.window.createOutputChannel("x") as never);
  const [shown] = stub.recorded.messages;
  assert.equal(shown.message, "sparkedit: ready: engine ready");
  assert.match((shown.items[0] as { detail: string }).detail, /acceptance 50%/);
  bar.dispose();
  assert.equal(item.shown, false);
});
