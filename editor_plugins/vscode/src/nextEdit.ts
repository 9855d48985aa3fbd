// Next edits in the editor: ask `sparkedit/nextEdit` after a pause in editing or moving,
// draw the answer as decorations (stable VS Code cannot show multi-line ghost text away
// from the cursor), and apply it on Tab. What to draw and the state machine are plain
// data in edits.ts.

import * as vscode from "vscode";
import {
  anyVisible,
  cursorAfter,
  decorationPlan,
  NextEditState,
  Suggestion,
  suggestionFrom,
} from "./edits";
import {
  DID_ACCEPT,
  DID_REJECT,
  DID_SHOW,
  NEXT_EDIT,
  NextEditParams,
  WirePosition,
  WireRange,
} from "./protocol";

export const CONTEXT_KEY = "sparkedit.nextEditVisible";
export const REQUEST_DELAY_MS = 300; // after the last keystroke or cursor move

/** What the controller needs of the language client (tests pass a fake). */
export interface ServerLink {
  sendRequest(method: string, params: unknown, token?: vscode.CancellationToken): Promise<unknown>;
  sendNotification(method: string, params: unknown): Promise<void>;
}

export interface NextEditOptions {
  link: () => ServerLink | undefined; // undefined while the server is not running
  enabled: () => boolean; // the sparkedit.nextEdit setting
  delayMs?: number;
}

export function toPosition(p: WirePosition): vscode.Position {
  return new vscode.Position(p.line, p.character);
}

export function toRange(r: WireRange): vscode.Range {
  return new vscode.Range(toPosition(r.start), toPosition(r.end));
}

function toWire(r: vscode.Range): WireRange {
  return { start: { line: r.start.line, character: r.start.character },
    end: { line: r.end.line, character: r.end.character } };
}

function handled(sent: Promise<void> | undefined): void {
  sent?.catch(() => undefined); // the server went away: nothing to tell it
}

export class NextEditController implements vscode.Disposable {
  readonly state = new NextEditState();
  private readonly deleted: vscode.TextEditorDecorationType;
  private readonly inserted: vscode.TextEditorDecorationType;
  private readonly disposables: vscode.Disposable[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: vscode.CancellationTokenSource | undefined;
  private drawnIn: vscode.TextEditor | undefined;
  // Documents edited since they were opened: moving the cursor asks for a next edit only in
  // these (a next edit is a rewrite of a whole region, not worth it while just reading).
  private readonly edited = new Set<string>();

  constructor(private readonly options: NextEditOptions) {
    this.deleted = vscode.window.createTextEditorDecorationType({
      textDecoration: "line-through",
      backgroundColor: new vscode.ThemeColor("diffEditor.removedTextBackground"),
    });
    this.inserted = vscode.window.createTextEditorDecorationType({
      after: {
        color: new vscode.ThemeColor("editorGhostText.foreground"),
        backgroundColor: new vscode.ThemeColor("diffEditor.insertedTextBackground"),
        fontStyle: "italic",
      },
    });
    this.disposables.push(
      this.deleted,
      this.inserted,
      vscode.workspace.onDidChangeTextDocument((e) => this.onDidChange(e)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onDidMove(e)),
      vscode.window.onDidChangeActiveTextEditor((editor) => this.onDidSwitch(editor)),
      vscode.workspace.onDidCloseTextDocument((d) => this.edited.delete(d.uri.toString())),
    );
  }

  dispose(): void {
    this.dismiss();
    clearTimeout(this.timer);
    this.disposables.forEach((d) => d.dispose());
  }

  private onDidChange(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0) {
      return; // only the dirty state changed
    }
    const uri = e.document.uri.toString();
    this.edited.add(uri);
    this.reject(this.state.invalidate(uri));
    const editor = vscode.window.activeTextEditor;
    if (editor?.document === e.document) {
      this.schedule(editor);
    }
  }

  private onDidMove(e: vscode.TextEditorSelectionChangeEvent): void {
    // A visible suggestion stays while the cursor moves: Tab takes it, Escape drops it.
    if (e.textEditor === vscode.window.activeTextEditor && this.state.phase !== "visible") {
      this.schedule(e.textEditor);
    }
  }

  private onDidSwitch(editor: vscode.TextEditor | undefined): void {
    this.reject(this.state.invalidate());
    this.inFlight?.cancel();
    clearTimeout(this.timer);
    if (editor) {
      this.schedule(editor);
    }
  }

  private schedule(editor: vscode.TextEditor): void {
    clearTimeout(this.timer);
    const { scheme } = editor.document.uri;
    if (!this.options.enabled() || (scheme !== "file" && scheme !== "untitled")
      || !this.edited.has(editor.document.uri.toString())) {
      return;
    }
    this.timer = setTimeout(() => void this.request(editor),
      this.options.delayMs ?? REQUEST_DELAY_MS);
  }

  /** Ask for a next edit at `editor`'s cursor now; resolves to the suggestion shown. */
  async request(editor: vscode.TextEditor): Promise<Suggestion | undefined> {
    const link = this.options.link();
    if (!link) {
      return undefined;
    }
    clearTimeout(this.timer);
    this.inFlight?.cancel();
    const document = editor.document;
    const uri = document.uri.toString();
    const version = document.version;
    const { ticket, replaced } = this.state.begin(uri);
    this.reject(replaced);
    const source = new vscode.CancellationTokenSource();
    this.inFlight = source;
    const cursor = editor.selection.active;
    const params: NextEditParams = {
      textDocument: { uri, version },
      position: { line: cursor.line, character: cursor.character },
    };
    let answer: unknown;
    try {
      answer = await link.sendRequest(NEXT_EDIT, params, source.token);
    } catch {
      answer = undefined; // cancelled by a newer request, or the server failed: no suggestion
    } finally {
      if (this.inFlight === source) {
        this.inFlight = undefined;
      }
      source.dispose();
    }
    const current = document.version === version && editor === vscode.window.activeTextEditor;
    const suggestion = current ? suggestionFrom(answer, uri, version) : undefined;
    if (!this.state.answer(ticket, suggestion) || !suggestion) {
      return undefined;
    }
    this.draw(editor, suggestion);
    handled(link.sendNotification(DID_SHOW, { id: suggestion.id }));
    return suggestion;
  }

  private draw(editor: vscode.TextEditor, suggestion: Suggestion): void {
    const plan = decorationPlan(suggestion.edits);
    const hover = (text: string) =>
      new vscode.MarkdownString().appendCodeblock(text, editor.document.languageId);
    editor.setDecorations(this.deleted, plan.deletions.map((range) => ({ range: toRange(range) })));
    editor.setDecorations(this.inserted, plan.insertions.map((insertion) => ({
      range: new vscode.Range(toPosition(insertion.at), toPosition(insertion.at)),
      hoverMessage: hover(insertion.text),
      renderOptions: { after: { contentText: insertion.label } },
    })));
    this.drawnIn = editor;
    void vscode.commands.executeCommand("setContext", CONTEXT_KEY, true);
  }

  private erase(): void {
    if (this.drawnIn) {
      this.drawnIn.setDecorations(this.deleted, []);
      this.drawnIn.setDecorations(this.inserted, []);
      this.drawnIn = undefined;
      void vscode.commands.executeCommand("setContext", CONTEXT_KEY, false);
    }
  }

  private reject(id: string | undefined): void {
    if (id !== undefined) {
      this.erase();
      handled(this.options.link()?.sendNotification(DID_REJECT, { id }));
    }
  }

  /** Tab: apply the visible suggestion (or, when none of it is on screen, reveal it first).
   * Resolves to whether the edit was applied. */
  async accept(): Promise<boolean> {
    const suggestion = this.state.visible;
    const editor = this.drawnIn;
    if (!suggestion || !editor) {
      return false;
    }
    if (editor.document.version !== suggestion.version) {
      this.dismiss();
      return false;
    }
    if (!anyVisible(suggestion.edits, editor.visibleRanges.map(toWire))) {
      editor.revealRange(toRange(suggestion.edits[0].range),
        vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      return false;
    }
    this.state.accept();
    this.erase(); // before applying: the change it causes must not count as a rejection
    const edit = new vscode.WorkspaceEdit();
    for (const { range, newText } of suggestion.edits) {
      edit.replace(editor.document.uri, toRange(range), newText);
    }
    const applied = await vscode.workspace.applyEdit(edit);
    const link = this.options.link();
    handled(link?.sendNotification(applied ? DID_ACCEPT : DID_REJECT, { id: suggestion.id }));
    const cursor = applied ? cursorAfter(suggestion.edits) : undefined;
    if (cursor && editor === vscode.window.activeTextEditor) {
      editor.selection = new vscode.Selection(toPosition(cursor), toPosition(cursor));
    }
    return applied;
  }

  /** Escape: drop the visible suggestion (rejected) and any request in flight. */
  dismiss(): void {
    this.inFlight?.cancel();
    clearTimeout(this.timer);
    this.reject(this.state.dismiss());
    this.erase();
  }
}
