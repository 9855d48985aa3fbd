// "sparkedit: Edit selection with instruction": ask for the instruction, run the server's
// `sparkedit.editSelection` command, apply the WorkspaceEdit it answers.

import * as vscode from "vscode";
import { DocumentEdits, selectionOrLine, workspaceEditParts } from "./edits";
import { ServerLink, toRange } from "./nextEdit";
import { EDIT_SELECTION_COMMAND } from "./protocol";

export type EditOutcome = "applied" | "cancelled" | "no-server" | "no-edit" | "stale" | "failed";

/** A vscode.WorkspaceEdit of the parts, or undefined when a part was computed for another
 * version of its document than the one open now (the user typed while waiting). */
export function toWorkspaceEdit(parts: DocumentEdits[]): vscode.WorkspaceEdit | undefined {
  const edit = new vscode.WorkspaceEdit();
  for (const part of parts) {
    const uri = vscode.Uri.parse(part.uri);
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === part.uri);
    if (part.version !== null && open !== undefined && open.version !== part.version) {
      return undefined;
    }
    for (const { range, newText } of part.edits) {
      edit.replace(uri, toRange(range), newText);
    }
  }
  return edit;
}

export async function editSelection(link: ServerLink | undefined,
  instruction?: string): Promise<EditOutcome> {
  const editor = vscode.window.activeTextEditor;
  if (!link || !editor) {
    void vscode.window.showWarningMessage(link
      ? "sparkedit: open a file and select the code to edit first."
      : "sparkedit: the language server is not running (see \"sparkedit: Show status\").");
    return "no-server";
  }
  const asked = instruction ?? await vscode.window.showInputBox({
    title: "sparkedit: edit selection",
    prompt: "What should change in the selected code (or the current line)?",
    placeHolder: "e.g. add type hints",
    ignoreFocusOut: true,
  });
  if (!asked?.trim()) {
    return "cancelled";
  }
  const document = editor.document;
  const { start, end } = editor.selection;
  const range = selectionOrLine({
    start: { line: start.line, character: start.character },
    end: { line: end.line, character: end.character },
  }, document.lineAt(start.line).text.length);
  let answer: unknown;
  let cancelled = false;
  try {
    answer = await vscode.window.withProgress({
      location: vscode.ProgressLocation.Notification,
      title: "sparkedit: editing…",
      cancellable: true,
    }, (_progress, token) => {
      token.onCancellationRequested(() => { cancelled = true; });
      return link.sendRequest("workspace/executeCommand", {
        command: EDIT_SELECTION_COMMAND,
        arguments: [document.uri.toString(), range, asked.trim()],
      }, token);
    });
  } catch (error) {
    if (cancelled) {
      return "cancelled";
    }
    void vscode.window.showErrorMessage(`sparkedit: the edit failed: ${String(error)}`);
    return "failed";
  }
  if (cancelled) {
    return "cancelled";
  }
  const parts = workspaceEditParts(answer);
  if (!parts || parts.length === 0) {
    // null: the server has said why in a window/showMessage (no change proposed, the edit
    // does not parse, ...), which the language client shows.
    return "no-edit";
  }
  const edit = toWorkspaceEdit(parts);
  if (!edit) {
    void vscode.window.showWarningMessage(
      "sparkedit: the document changed while the edit was computed; run the command again.");
    return "stale";
  }
  return await vscode.workspace.applyEdit(edit) ? "applied" : "failed";
}
