// The sparkedit methods on the wire (see lsp_server/server.py) and their payloads as
// plain data. No `vscode` import: the pure modules and the protocol tests share this.

export const NEXT_EDIT = "sparkedit/nextEdit";
export const STATUS = "sparkedit/status";
export const DID_SHOW = "sparkedit/didShow";
export const DID_ACCEPT = "sparkedit/didAccept";
export const DID_REJECT = "sparkedit/didReject";
/** The editor shows this document: the server warms the engine's cache for it. */
export const DID_FOCUS = "sparkedit/didFocus";
/** The server command inline completion items carry (`arguments: [id]`). */
export const ACCEPT_COMMAND = "sparkedit.accept";
/** The server command behind "Edit selection with instruction". */
export const EDIT_SELECTION_COMMAND = "sparkedit.editSelection";
/** Server commands the extension registers itself (the language client must not):
 * `sparkedit.accept` reports the accept as `sparkedit/didAccept`, and
 * `sparkedit.editSelection` first asks for the instruction. */
export const EXTENSION_COMMANDS: readonly string[] = [ACCEPT_COMMAND, EDIT_SELECTION_COMMAND];

export interface WirePosition {
  line: number;
  character: number;
}

export interface WireRange {
  start: WirePosition;
  end: WirePosition;
}

export interface WireEdit {
  range: WireRange;
  newText: string;
}

export interface FocusParams {
  textDocument: { uri: string };
  position?: WirePosition;
}

/** The server syncs only these schemes (client.ts): other editors (output, diff views of
 * git objects) are not documents it knows. */
const FOCUS_SCHEMES = ["file", "untitled"];

/** `sparkedit/didFocus` params for an editor's document and cursor, or undefined for a
 * document the server does not see. */
export function focusParams(document: { uri: { scheme: string; toString(): string } },
  cursor?: WirePosition): FocusParams | undefined {
  if (!FOCUS_SCHEMES.includes(document.uri.scheme)) {
    return undefined;
  }
  const params: FocusParams = { textDocument: { uri: document.uri.toString() } };
  if (cursor) {
    params.position = { line: cursor.line, character: cursor.character };
  }
  return params;
}

export interface NextEditParams {
  textDocument: { uri: string; version: number };
  position: WirePosition;
}

/** `sparkedit/nextEdit`'s answer: `{edits: []}` when there is nothing to suggest. */
export interface NextEditResult {
  edits: WireEdit[];
  id?: string;
  textDocument?: { uri: string; version: number | null };
}

export interface Latencies {
  context_ms?: number | null;
  ttft_ms?: number | null;
  total_ms?: number | null;
}

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  count: number;
}

/** The `sparkedit/status` payload; every field optional so that an older or newer server
 * never breaks the status bar. */
export interface StatusPayload {
  state?: string;
  message?: string;
  model?: string | null;
  untrained?: boolean | null;
  target?: string;
  enginePid?: number | null;
  indexReady?: boolean;
  lastLatencies?: Latencies;
  /** The document the server warms up, and per document the warm-up's state. */
  focus?: string | null;
  warm?: { uri: string; budget: number; complete: boolean; warming: number | null }[];
  stats?: {
    shown?: number;
    accepted?: number;
    partiallyAccepted?: number;
    rejected?: number;
    requests?: number;
    answeredFromCache?: number;
    cancelled?: number;
    acceptanceRate?: number | null;
    latencyMs?: Percentiles;
    [key: string]: unknown;
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isPosition(value: unknown): value is WirePosition {
  return isObject(value) && Number.isInteger(value.line) && Number.isInteger(value.character)
    && (value.line as number) >= 0 && (value.character as number) >= 0;
}

export function isRange(value: unknown): value is WireRange {
  return isObject(value) && isPosition(value.start) && isPosition(value.end);
}

export function isEdit(value: unknown): value is WireEdit {
  return isObject(value) && isRange(value.range) && typeof value.newText === "string";
}

/** The id an inline completion item's command carries, if it is sparkedit's accept command. */
export function suggestionId(command: { command?: string; arguments?: unknown[] } | undefined)
  : string | undefined {
  if (command?.command !== ACCEPT_COMMAND) {
    return undefined;
  }
  const id = command.arguments?.[0];
  return typeof id === "string" ? id : undefined;
}
