// The status-bar item: engine state and the last suggestion's latency, from the
// `sparkedit/status` notifications (and requests); a click runs "sparkedit: Show status".

import * as vscode from "vscode";
import { StatusPayload } from "./protocol";
import { statusBarText, statusLines, statusTooltip } from "./statusText";

export const SHOW_STATUS_COMMAND = "sparkedit.showStatus";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private _last: StatusPayload = { state: "starting", message: "starting the language server" };

  constructor() {
    this.item = vscode.window.createStatusBarItem("sparkedit.status",
      vscode.StatusBarAlignment.Right, 100);
    this.item.name = "sparkedit";
    this.item.command = SHOW_STATUS_COMMAND;
    this.update(this._last);
    this.item.show();
  }

  get last(): StatusPayload {
    return this._last;
  }

  get text(): string {
    return this.item.text;
  }

  update(status: StatusPayload): void {
    this._last = status;
    this.item.text = statusBarText(status);
    this.item.tooltip = statusTooltip(status);
    this.item.backgroundColor = status.state === "error"
      ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }

  /** The server could not be started or stopped for good. */
  failed(message: string): void {
    this.update({ state: "error", message });
  }

  /** "sparkedit: Show status": the details in a dialog, with the log one click away. */
  async show(output: vscode.OutputChannel): Promise<void> {
    const [first, ...rest] = statusLines(this._last);
    const choice = await vscode.window.showInformationMessage(`sparkedit: ${first}`,
      { modal: true, detail: rest.join("\n") }, "Show log");
    if (choice === "Show log") {
      output.show(true);
    }
  }

  dispose(): void {
    this.item.dispose();
  }
}
