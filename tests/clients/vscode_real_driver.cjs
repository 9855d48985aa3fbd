// Drives a real VS Code (code-server, in Debian's chromium through playwright-core) with the
// sparkedit extension installed from its .vsix, as a person would: keys and the command
// palette only. Started by tests/clients/test_vscode_real.py, which checks the saved file.
//
// Environment: SPARKEDIT_VSCODE_URL (the workbench, folder open), SPARKEDIT_PLAYWRIGHT (the
// playwright-core folder), SPARKEDIT_CHROMIUM (the browser), SPARKEDIT_RESULTS (JSON out),
// SPARKEDIT_SHOT (PNG of the ghost text) and SPARKEDIT_PHASE: "ghost" (ghost text from the
// embedded model, photographed, accepted with Tab) or "edits" (a next edit and an
// instruction edit, from the scripted remote the settings name).
"use strict";

const fs = require("node:fs");
const { chromium } = require(process.env.SPARKEDIT_PLAYWRIGHT);

const results = { steps: [], ghost: null, error: null };
const step = (name, detail = null) => results.steps.push({ name, detail });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function palette(page, command) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: 20_000 });
  await input.fill(`>${command}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: command }).first()
    .waitFor({ timeout: 20_000 });
  await page.keyboard.press("Enter");
}

async function goTo(page, where) {
  await page.keyboard.press("Control+G");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: 20_000 });
  await input.fill(`:${where}`);
  await page.keyboard.press("Enter");
  await sleep(300);
}

async function save(page) {
  await page.keyboard.press("Control+S");
  await page.locator(".tab.active:not(.dirty)").waitFor({ timeout: 20_000 });
}

async function ghostText(page, attempts) {
  const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text");
  for (let i = 0; i < attempts; i++) {
    await palette(page, "Trigger Inline Suggestion"); // editor.action.inlineSuggest.trigger
    try {
      await ghost.first().waitFor({ state: "visible", timeout: 20_000 });
      return (await ghost.allTextContents()).join("\n");
    } catch {
      step("no ghost text yet", i);
    }
  }
  return null;
}

async function ghostPhase(page) {
  // Ghost text: line 36 cut after `self.`, a suggestion asked for at its end.
  await goTo(page, "36:25");
  await page.keyboard.press("Shift+End");
  await page.keyboard.press("Delete");
  const ghost = await ghostText(page, 4);
  results.ghost = ghost;
  if (ghost === null) {
    throw new Error("no ghost text appeared at line 36");
  }
  step("ghost text shown", ghost);
  await sleep(300);
  await page.screenshot({ path: process.env.SPARKEDIT_SHOT });
  await page.keyboard.press("Tab");
  await sleep(300);
  await save(page);
  step("Tab accepted the ghost text and the file is saved");
}

async function editPhase(page) {
  // Next edit: rename the parameter `sku` of remove() to `code`, then ask at line 35.
  await goTo(page, "33:22");
  await page.keyboard.press("Shift+ArrowRight");
  await page.keyboard.press("Shift+ArrowRight");
  await page.keyboard.press("Shift+ArrowRight");
  await page.keyboard.type("code");
  await page.keyboard.press("Escape"); // no ghost text in the way
  await goTo(page, "35:9");
  await palette(page, "sparkedit: Suggest the next edit");
  await page.waitForFunction(() => [...document.querySelectorAll(".view-lines span")]
    .some((s) => getComputedStyle(s).textDecorationLine.includes("line-through")),
  null, { timeout: 60_000 });
  step("next edit previewed");
  await palette(page, "sparkedit: Accept the next edit");
  await sleep(500);
  await save(page);
  step("next edit accepted and saved");

  // Instruction edit on lines 16-17 (`def subtotal` and its return).
  await goTo(page, "16:1");
  await page.keyboard.press("Shift+ArrowDown");
  await page.keyboard.press("Shift+ArrowDown");
  await palette(page, "sparkedit: Edit selection with instruction");
  const ask = page.locator(".quick-input-widget input");
  await ask.waitFor({ state: "visible", timeout: 20_000 });
  await ask.fill("add a docstring");
  await page.keyboard.press("Enter");
  await page.locator(".tab.active.dirty").waitFor({ timeout: 60_000 });
  await save(page);
  step("instruction edit applied and saved");
}

let page;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.SPARKEDIT_CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    await page.goto(process.env.SPARKEDIT_VSCODE_URL);
    await page.locator(".monaco-workbench .part.statusbar").waitFor({ timeout: 120_000 });
    step("workbench loaded");

    await page.keyboard.press("Control+P");
    await page.locator(".quick-input-widget input").fill("sample.py");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "sample.py" }).first()
      .waitFor({ timeout: 30_000 });
    await page.keyboard.press("Enter");
    await page.locator(".tab.active", { hasText: "sample.py" }).waitFor({ timeout: 30_000 });
    await page.locator(".monaco-editor .view-lines").first().click();
    step("sample.py open");
    await page.locator(".statusbar-item", { hasText: "sparkedit" }).first()
      .waitFor({ timeout: 60_000 });
    step("the extension's status item is shown");

    if (process.env.SPARKEDIT_PHASE === "ghost") {
      await ghostPhase(page);
    } else {
      await editPhase(page);
    }
  } catch (error) {
    results.statusbar = await page?.locator(".statusbar").innerText().catch(() => null);
    await page?.screenshot({ path: `${process.env.SPARKEDIT_SHOT}.failed.png` }).catch(() => {});
    throw error;
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  results.error = String(error && error.stack ? error.stack : error);
}).finally(() => {
  fs.writeFileSync(process.env.SPARKEDIT_RESULTS, JSON.stringify(results, null, 2));
});
