// Next edits as plain data: the server's answer checked against the document version,
// what to draw for it, where the cursor lands after accepting it, and the small state
// machine (idle -> requesting -> visible -> accepted | dismissed | stale). No `vscode`
// import; nextEdit.ts turns these into decorations and WorkspaceEdits.

import { isEdit, WireEdit, WirePosition, WireRange } from "./protocol";

export interface Suggestion {
  id: string;
  uri: string;
  version: number;
  edits: WireEdit[]; // sorted by start, non-overlapping
}

export function comparePositions(a: WirePosition, b: WirePosition): number {
  return a.line - b.line || a.character - b.character;
}

export function isEmptyRange(range: WireRange): boolean {
  return comparePositions(range.start, range.end) === 0;
}

/** The answer as a suggestion for this document version; undefined when it is empty,
 * malformed, for another document or version, or has overlapping edits. */
export function suggestionFrom(answer: unknown, uri: string, version: number)
  : Suggestion | undefined {
  if (typeof answer !== "object" || answer === null) {
    return undefined;
  }
  const { edits, id, textDocument } = answer as Record<string, unknown>;
  if (!Array.isArray(edits) || edits.length === 0 || typeof id !== "string"
    || !edits.every(isEdit)) {
    return undefined;
  }
  const doc = textDocument as { uri?: unknown; version?: unknown } | undefined;
  if (doc !== undefined && (doc.uri !== uri || (doc.version !== null && doc.version !== version))) {
    return undefined;
  }
  const sorted = [...edits].sort((a, b) => comparePositions(a.range.start, b.range.start));
  for (let i = 0; i < sorted.length; i++) {
    const { start, end } = sorted[i].range;
    if (comparePositions(start, end) > 0
      || (i > 0 && comparePositions(sorted[i - 1].range.end, start) > 0)) {
      return undefined;
    }
  }
  const changes = sorted.filter((e) => e.newText !== "" || !isEmptyRange(e.range));
  return changes.length ? { id, uri, version, edits: changes } : undefined;
}

/** Text for an `after` decoration: one line (VS Code draws no newlines there). */
export function label(text: string, max = 80): string {
  const flat = text.replace(/\r\n?/g, "\n").replace(/\n/g, " ⏎ ").replace(/\t/g, "  ");
  return flat.length > max ? flat.slice(0, max - 1) + "…" : flat;
}

export interface Insertion {
  at: WirePosition; // drawn after this position
  label: string;
  text: string; // in full, for the hover
}

export interface DecorationPlan {
  deletions: WireRange[]; // struck through
  insertions: Insertion[];
}

/** Deleted text struck through, inserted text drawn after the edit's range (a replacement
 * is both). */
export function decorationPlan(edits: WireEdit[], maxLabel = 80): DecorationPlan {
  const plan: DecorationPlan = { deletions: [], insertions: [] };
  for (const edit of edits) {
    if (!isEmptyRange(edit.range)) {
      plan.deletions.push(edit.range);
    }
    if (edit.newText !== "") {
      plan.insertions.push({ at: edit.range.end, label: label(edit.newText, maxLabel),
        text: edit.newText });
    }
  }
  return plan;
}

/** Where the last edit's new text ends once all edits are applied (sorted, disjoint). */
export function cursorAfter(edits: WireEdit[]): WirePosition | undefined {
  let lineDelta = 0;
  let lastLine = -1; // the line (in the original) on which the previous edit ended
  let charDelta = 0; // shift of later text on that line
  let cursor: WirePosition | undefined;
  for (const { range, newText } of edits) {
    const startLine = range.start.line + lineDelta;
    const startChar = range.start.character + (range.start.line === lastLine ? charDelta : 0);
    const lines = newText.replace(/\r\n?/g, "\n").split("\n");
    const endLine = startLine + lines.length - 1;
    const endChar = (lines.length === 1 ? startChar : 0) + lines[lines.length - 1].length;
    cursor = { line: endLine, character: endChar };
    lineDelta += lines.length - 1 - (range.end.line - range.start.line);
    charDelta = endChar - range.end.character;
    lastLine = range.end.line;
  }
  return cursor;
}

function overlaps(a: WireRange, b: WireRange): boolean {
  return comparePositions(a.start, b.end) <= 0 && comparePositions(b.start, a.end) <= 0;
}

/** Whether any edit can be seen in the editor's visible ranges (an edit out of sight is
 * revealed by the first Tab, applied by the second). */
export function anyVisible(edits: WireEdit[], visible: WireRange[]): boolean {
  return edits.some((e) => visible.some((v) => overlaps(e.range, v)));
}

export type Phase = "idle" | "requesting" | "visible";

/** One suggestion at a time. Tickets make late answers harmless: only the answer to the
 * latest request can become visible, and any change to its document makes it stale. */
export class NextEditState {
  private ticket = 0;
  private _phase: Phase = "idle";
  private _visible: Suggestion | undefined;
  private requestUri: string | undefined;

  get phase(): Phase {
    return this._phase;
  }

  get visible(): Suggestion | undefined {
    return this._visible;
  }

  /** A new request; returns its ticket and the id of a suggestion it replaces (rejected). */
  begin(uri: string): { ticket: number; replaced?: string } {
    const replaced = this._visible?.id;
    this._visible = undefined;
    this._phase = "requesting";
    this.requestUri = uri;
    return { ticket: ++this.ticket, replaced };
  }

  /** The answer to request `ticket`: true when it is now the visible suggestion. */
  answer(ticket: number, suggestion: Suggestion | undefined): boolean {
    if (ticket !== this.ticket || this._phase !== "requesting") {
      return false;
    }
    this._visible = suggestion;
    this._phase = suggestion ? "visible" : "idle";
    return suggestion !== undefined;
  }

  /** The document `uri` changed (or the editor moved away): a visible suggestion for it is
   * rejected (its id returned), a request in flight will be ignored. */
  invalidate(uri?: string): string | undefined {
    if (this._phase === "requesting" && (uri === undefined || this.requestUri === uri)) {
      this.ticket++;
      this._phase = "idle";
      return undefined;
    }
    if (this._visible && (uri === undefined || this._visible.uri === uri)) {
      const id = this._visible.id;
      this._visible = undefined;
      this._phase = "idle";
      return id;
    }
    return undefined;
  }

  /** Take the visible suggestion to apply it. */
  accept(): Suggestion | undefined {
    const taken = this._visible;
    if (taken) {
      this._visible = undefined;
      this._phase = "idle";
    }
    return taken;
  }

  /** Escape: the visible suggestion's id (to reject), and any request in flight dropped. */
  dismiss(): string | undefined {
    return this.invalidate();
  }
}

/** One document's part of a server `WorkspaceEdit` (`documentChanges` or `changes`). */
export interface DocumentEdits {
  uri: string;
  version: number | null; // the version the edits were computed for, when the server says
  edits: WireEdit[];
}

/** The text edits of a protocol `WorkspaceEdit` as plain data; undefined when it is not
 * one (file creations, renames and deletions are not something sparkedit sends). */
export function workspaceEditParts(value: unknown): DocumentEdits[] | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const { documentChanges, changes } = value as Record<string, unknown>;
  const parts: DocumentEdits[] = [];
  if (Array.isArray(documentChanges)) {
    for (const change of documentChanges) {
      const doc = (change as { textDocument?: { uri?: unknown; version?: unknown } }).textDocument;
      const edits = (change as { edits?: unknown }).edits;
      if (typeof doc?.uri !== "string" || !Array.isArray(edits) || !edits.every(isEdit)) {
        return undefined;
      }
      parts.push({ uri: doc.uri, version: typeof doc.version === "number" ? doc.version : null,
        edits });
    }
  } else if (typeof changes === "object" && changes !== null) {
    for (const [uri, edits] of Object.entries(changes)) {
      if (!Array.isArray(edits) || !edits.every(isEdit)) {
        return undefined;
      }
      parts.push({ uri, version: null, edits });
    }
  } else {
    return undefined;
  }
  return parts;
}

/** The range "Edit selection" sends: the selection, or the cursor's whole line. */
export function selectionOrLine(selection: WireRange, lineLength: number): WireRange {
  if (!isEmptyRange(selection)) {
    return selection;
  }
  const line = selection.start.line;
  return { start: { line, character: 0 }, end: { line, character: lineLength } };
}
