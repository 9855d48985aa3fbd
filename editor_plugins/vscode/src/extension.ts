// Wiring only: start `sparkedit lsp` with the settings, register the commands, and hand
// the server's answers to the status bar and the next-edit controller. Ghost text is the
// language client's built-in inline completion.

import * as os from "os";
import * as vscode from "vscode";
import { DidChangeConfigurationNotification, LanguageClient, State } from "vscode-languageclient/node";
import { createClient } from "./client";
import { editSelection } from "./editSelection";
import { inlineMiddleware, ShownIds } from "./inline";
import { NextEditController } from "./nextEdit";
import { findExecutable, missingServerMessage } from "./probe";
import {
  ACCEPT_COMMAND, DID_ACCEPT, DID_FOCUS, EDIT_SELECTION_COMMAND, focusParams, STATUS, StatusPayload,
} from "./protocol";
import { RESTART_KEYS, SECTION, serverCommand, serverSettings } from "./settings";
import { SHOW_STATUS_COMMAND, StatusBar } from "./status";

export const COMMANDS = {
  acceptNextEdit: "sparkedit.acceptNextEdit",
  dismissNextEdit: "sparkedit.dismissNextEdit",
  requestNextEdit: "sparkedit.requestNextEdit",
  restartServer: "sparkedit.restartServer",
};

const STATUS_REFRESH_MS = 2000; // the status bar's latency is refreshed at most this often
// pygls never answers a custom request whose message has no `params` member (it fails to
// parse it), and the client leaves the member out when given no parameter: send `{}`.
const NO_PARAMS = {};

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class Sparkedit implements vscode.Disposable {
  readonly output = vscode.window.createOutputChannel("sparkedit", { log: true });
  readonly status = new StatusBar();
  readonly nextEdit: NextEditController;
  private readonly shown = new ShownIds();
  private client: LanguageClient | undefined;
  private lastRefresh = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    this.nextEdit = new NextEditController({
      link: () => this.running(),
      enabled: () => vscode.workspace.getConfiguration(SECTION).get<boolean>("nextEdit", true),
    });
  }

  /** The language client while it is running, else undefined. */
  running(): LanguageClient | undefined {
    return this.client?.isRunning() ? this.client : undefined;
  }

  async start(): Promise<void> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const server = serverCommand(config, os.homedir());
    if (!findExecutable(server.command)) {
      this.fail(missingServerMessage(server.command), "Open Settings");
      return;
    }
    this.status.update({ state: "starting", message: "starting the language server" });
    const client: LanguageClient = createClient(server, serverSettings(config), this.output,
      inlineMiddleware((method, params) => client.sendNotification(method, params), this.shown,
        (hadItems) => this.refreshStatus(hadItems)));
    client.onNotification(STATUS, (status: StatusPayload) => this.status.update(status));
    client.onDidChangeState(({ newState }) => {
      // The client restarts a crashed server a few times by itself; Stopped is final.
      if (newState === State.Stopped && this.client === client) {
        this.status.failed("the language server stopped (its log is in the sparkedit output)");
      }
    });
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      this.client = undefined;
      this.fail(`sparkedit: the language server did not start: ${describe(error)}`, "Show log");
      return;
    }
    this.refreshStatus(true);
    this.focus(vscode.window.activeTextEditor);
  }

  /** Tell the server which document the user looks at (and where the cursor is), so that
   * it warms the engine up for it before the first keystroke. */
  focus(editor: vscode.TextEditor | undefined): void {
    const client = this.running();
    const params = editor && focusParams(editor.document, editor.selection.active);
    if (client && params) {
      client.sendNotification(DID_FOCUS, params).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.nextEdit.dismiss();
    if (client?.needsStop()) {
      try {
        await client.stop();
      } catch (error) {
        this.output.warn(`stopping the language server: ${describe(error)}`);
      }
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async configurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration(SECTION)) {
      return;
    }
    if (RESTART_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
      await this.restart();
      return;
    }
    const settings = serverSettings(vscode.workspace.getConfiguration(SECTION),
      (key) => event.affectsConfiguration(`${SECTION}.${key}`));
    await this.running()?.sendNotification(DidChangeConfigurationNotification.type,
      { settings: { [SECTION]: settings } });
  }

  /** `sparkedit.accept [id]`, the command VS Code runs when ghost text is accepted. */
  accept(id: unknown): void {
    if (typeof id === "string") {
      this.running()?.sendNotification(DID_ACCEPT, { id }).catch(() => undefined);
    }
  }

  /** After a suggestion: ask for the status (its latencies), at most every
   * STATUS_REFRESH_MS, the last one in a burst included. */
  refreshStatus(hadItems: boolean): void {
    if (!hadItems || this.refreshTimer) {
      return;
    }
    const wait = Math.max(0, this.lastRefresh + STATUS_REFRESH_MS - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.lastRefresh = Date.now();
      this.running()?.sendRequest(STATUS, NO_PARAMS)
        .then((status) => this.status.update(status as StatusPayload), () => undefined);
    }, wait);
  }

  async showStatus(): Promise<void> {
    const client = this.running();
    if (client) {
      try {
        this.status.update(await client.sendRequest(STATUS, NO_PARAMS) as StatusPayload);
      } catch (error) {
        this.output.warn(`sparkedit/status: ${describe(error)}`);
      }
    }
    await this.status.show(this.output);
  }

  async requestNextEdit(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !this.running()) {
      void vscode.window.showWarningMessage(editor
        ? "sparkedit: the language server is not running (see \"sparkedit: Show status\")."
        : "sparkedit: open a file first.");
      return;
    }
    if (!await this.nextEdit.request(editor)) {
      void vscode.window.showInformationMessage("sparkedit: no next edit here.");
    }
  }

  private fail(message: string, action: "Open Settings" | "Show log"): void {
    this.status.failed(message);
    this.output.error(message);
    void vscode.window.showErrorMessage(message, action).then((choice) => {
      if (choice === "Open Settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", "sparkedit.serverPath");
      } else if (choice === "Show log") {
        this.output.show(true);
      }
    });
  }

  dispose(): void {
    clearTimeout(this.refreshTimer);
    this.nextEdit.dispose();
    this.status.dispose();
    this.output.dispose();
  }
}

let instance: Sparkedit | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<Sparkedit> {
  const sparkedit = new Sparkedit();
  instance = sparkedit;
  const register = (id: string, run: (...args: unknown[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, run));
  context.subscriptions.push(sparkedit);
  register(ACCEPT_COMMAND, (id) => sparkedit.accept(id));
  register(EDIT_SELECTION_COMMAND, () => editSelection(sparkedit.running()));
  register(COMMANDS.acceptNextEdit, () => sparkedit.nextEdit.accept());
  register(COMMANDS.dismissNextEdit, () => sparkedit.nextEdit.dismiss());
  register(COMMANDS.requestNextEdit, () => sparkedit.requestNextEdit());
  register(COMMANDS.restartServer, () => sparkedit.restart());
  register(SHOW_STATUS_COMMAND, () => sparkedit.showStatus());
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration(
    (event) => void sparkedit.configurationChanged(event)));
  context.subscriptions.push(vscode.window.onDidChangeActiveTextEditor(
    (editor) => sparkedit.focus(editor)));
  await sparkedit.start();
  return sparkedit;
}

export async function deactivate(): Promise<void> {
  const sparkedit = instance;
  instance = undefined;
  await sparkedit?.stop();
}
