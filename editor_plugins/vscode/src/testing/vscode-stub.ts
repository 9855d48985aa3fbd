// A small stand-in for the `vscode` module: the parts the extension uses, plus recorders
// (messages, context keys, decorations, applied edits) for the tests to read. hook.ts
// makes `require("vscode")` return this module. `reset()` between tests.


export class Position {
  constructor(readonly line: number, readonly character: number) {}
  compareTo(other: Position): number {
    return this.line - other.line || this.character - other.character;
  }
  isEqual(other: Position): boolean {
    return this.compareTo(other) === 0;
  }
  isBefore(other: Position): boolean {
    return this.compareTo(other) < 0;
  }
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(start: Position | number, end: Position | number, endLine?: number, endChar?: number) {
    if (typeof start === "number") {
      this.start = new Position(start, end as number);
      this.end = new Position(endLine!, endChar!);
    } else {
      this.start = start;
      this.end = end as Position;
    }
  }
  get isEmpty(): boolean {
    return this.start.isEqual(this.end);
  }
}

export class Selection extends Range {
  constructor(readonly anchor: Position, readonly active: Position) {
    super(anchor.isBefore(active) ? anchor : active, anchor.isBefore(active) ? active : anchor);
  }
}

export class Uri {
  private constructor(readonly scheme: string, readonly path: string, private readonly raw: string) {}
  static parse(value: string): Uri {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1] ?? "file";
    return new Uri(scheme, value.replace(/^[a-z][a-z0-9+.-]*:(\/\/)?/i, "/").replace(/^\/\//, "/"),
      value);
  }
  static file(path: string): Uri {
    return new Uri("file", path, `file://${path}`);
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    return this.raw;
  }
}

export class Disposable {
  constructor(private readonly callOnDispose: () => void = () => undefined) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((d) => d.dispose()));
  }
  dispose(): void {
    this.callOnDispose();
  }
}

export class EventEmitter<T> {
  private listeners: ((value: T) => unknown)[] = [];
  readonly event = (listener: (value: T) => unknown): Disposable => {
    this.listeners.push(listener);
    return new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    });
  };
  fire(value: T): void {
    [...this.listeners].forEach((l) => l(value));
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class CancellationError extends Error {}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  readonly token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel(): void {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this.emitter.fire();
    }
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class MarkdownString {
  value = "";
  appendCodeblock(code: string, language = ""): MarkdownString {
    this.value += "\n```" + language + "\n" + code + "\n```\n";
    return this;
  }
  appendText(text: string): MarkdownString {
    this.value += text;
    return this;
  }
}

export class WorkspaceEdit {
  readonly edits: { uri: Uri; range: Range; newText: string }[] = [];
  replace(uri: Uri, range: Range, newText: string): void {
    this.edits.push({ uri, range, newText });
  }
  get size(): number {
    return new Set(this.edits.map((e) => e.uri.toString())).size;
  }
}

export enum StatusBarAlignment { Left = 1, Right = 2 }
export enum TextEditorRevealType { Default = 0, InCenter = 1, InCenterIfOutsideViewport = 2, AtTop = 3 }
export enum ProgressLocation { SourceControl = 1, Window = 10, Notification = 15 }
export enum LogLevel { Off = 0, Trace = 1, Debug = 2, Info = 3, Warning = 4, Error = 5 }
export enum EndOfLine { LF = 1, CRLF = 2 }

export const version = "1.91.0";

// -- documents and editors the tests create

export class TextDocument {
  version = 1;
  constructor(readonly uri: Uri, private text: string, readonly languageId = "python") {}
  getText(): string {
    return this.text;
  }
  get lineCount(): number {
    return this.text.split("\n").length;
  }
  lineAt(line: number): { text: string } {
    return { text: this.text.split("\n")[line] ?? "" };
  }
  offsetAt(p: Position): number {
    const lines = this.text.split("\n");
    let offset = 0;
    for (let i = 0; i < p.line; i++) {
      offset += lines[i].length + 1;
    }
    return offset + p.character;
  }
  /** Apply edits (non-overlapping, positions in the current text) and fire the change,
   * bottom-up as VS Code reports them (so that each applies to the previous result). */
  edit(edits: { range: Range; newText: string }[]): void {
    const sorted = [...edits].sort((a, b) => b.range.start.compareTo(a.range.start));
    for (const { range, newText } of sorted) {
      this.text = this.text.slice(0, this.offsetAt(range.start)) + newText
        + this.text.slice(this.offsetAt(range.end));
    }
    this.version++;
    changes.fire({ document: this, reason: undefined, contentChanges: sorted.map((e) => ({
      range: e.range, text: e.newText, rangeOffset: 0, rangeLength: 0 })) });
  }
}

export class TextEditor {
  selection: Selection = new Selection(new Position(0, 0), new Position(0, 0));
  visibleRanges: Range[] = [new Range(0, 0, 10_000, 0)];
  readonly decorations = new Map<unknown, any[]>();
  revealed: Range[] = [];
  constructor(readonly document: TextDocument) {}
  setDecorations(type: unknown, options: any[]): void {
    this.decorations.set(type, options);
  }
  revealRange(range: Range): void {
    this.revealed.push(range);
  }
  /** Move the cursor as a user would (fires the selection event). */
  moveTo(line: number, character: number): void {
    this.selection = new Selection(new Position(line, character), new Position(line, character));
    selections.fire({ textEditor: this, selections: [this.selection], kind: 1 });
  }
}

// -- recorders

export const recorded = {
  messages: [] as { level: "info" | "warning" | "error"; message: string; items: unknown[] }[],
  context: new Map<string, unknown>(),
  decorationTypes: [] as { options: any; disposed: boolean }[],
  statusItems: [] as any[],
  executed: [] as { command: string; args: unknown[] }[],
};
/** Answers the next message boxes and input boxes give, in order (default: undefined). */
export const answers = { messages: [] as (string | undefined)[], inputs: [] as (string | undefined)[] };

const changes = new EventEmitter<any>();
const selections = new EventEmitter<any>();
const activeEditors = new EventEmitter<TextEditor | undefined>();
const configurationChanges = new EventEmitter<any>();
const commandHandlers = new Map<string, (...args: any[]) => unknown>();
let settings: Record<string, unknown> = {};
const documents: TextDocument[] = [];

export function reset(values: Record<string, unknown> = {}): void {
  recorded.messages.length = 0;
  recorded.context.clear();
  recorded.decorationTypes.length = 0;
  recorded.statusItems.length = 0;
  recorded.executed.length = 0;
  answers.messages.length = 0;
  answers.inputs.length = 0;
  commandHandlers.clear();
  documents.length = 0;
  settings = { ...values };
  window.activeTextEditor = undefined;
}

export function openEditor(text: string, uri = "file:///work/sample.py", languageId = "python")
  : TextEditor {
  const document = new TextDocument(Uri.parse(uri), text, languageId);
  documents.push(document);
  const editor = new TextEditor(document);
  window.activeTextEditor = editor;
  activeEditors.fire(editor);
  return editor;
}

/** Make `editor` the active one, as a click on its tab does (fires the event). */
export function fireActiveEditor(editor: TextEditor | undefined): void {
  window.activeTextEditor = editor;
  activeEditors.fire(editor);
}

/** Change settings ("sparkedit.x" keys) and fire onDidChangeConfiguration. */
export function configure(values: Record<string, unknown>): void {
  Object.assign(settings, values);
  const keys = Object.keys(values);
  configurationChanges.fire({
    affectsConfiguration: (section: string) =>
      keys.some((k) => k === section || k.startsWith(section + ".")),
  });
}

function message(level: "info" | "warning" | "error") {
  return (text: string, ...items: unknown[]): Promise<string | undefined> => {
    recorded.messages.push({ level, message: text, items });
    return Promise.resolve(answers.messages.shift());
  };
}

export const window = {
  activeTextEditor: undefined as TextEditor | undefined,
  visibleTextEditors: [] as TextEditor[],
  tabGroups: { all: [] as unknown[], onDidChangeTabs: new EventEmitter<unknown>().event },
  onDidChangeTextEditorSelection: selections.event,
  onDidChangeActiveTextEditor: activeEditors.event,
  onDidChangeVisibleTextEditors: new EventEmitter<unknown>().event,
  showInformationMessage: message("info"),
  showWarningMessage: message("warning"),
  showErrorMessage: message("error"),
  showInputBox: (_options?: unknown) => Promise.resolve(answers.inputs.shift()),
  withProgress: <R>(_options: unknown,
    task: (progress: unknown, token: CancellationTokenSource["token"]) => Promise<R>) =>
    task({ report: () => undefined }, new CancellationTokenSource().token),
  createTextEditorDecorationType(options: any) {
    const type = { options, disposed: false, dispose() { type.disposed = true; } };
    recorded.decorationTypes.push(type);
    return type;
  },
  createStatusBarItem(..._args: unknown[]) {
    const item: any = { text: "", tooltip: "", shown: false, show() { item.shown = true; },
      hide() { item.shown = false; }, dispose() { item.shown = false; } };
    recorded.statusItems.push(item);
    return item;
  },
  createOutputChannel(name: string, _options?: unknown) {
    const lines: string[] = [];
    const log = (line: string) => { lines.push(line); };
    return { name, lines, logLevel: LogLevel.Info, onDidChangeLogLevel: new EventEmitter().event,
      append: log, appendLine: log, replace: log, clear: () => { lines.length = 0; },
      trace: log, debug: log, info: log, warn: log, error: log,
      show: () => undefined, hide: () => undefined, dispose: () => undefined };
  },
};

export const workspace = {
  get textDocuments(): TextDocument[] {
    return documents;
  },
  workspaceFolders: undefined as unknown,
  notebookDocuments: [] as unknown[],
  onDidChangeTextDocument: changes.event,
  onDidChangeConfiguration: configurationChanges.event,
  onDidOpenTextDocument: new EventEmitter<unknown>().event,
  onDidCloseTextDocument: new EventEmitter<TextDocument>().event,
  onDidSaveTextDocument: new EventEmitter<unknown>().event,
  onWillSaveTextDocument: new EventEmitter<unknown>().event,
  onDidChangeWorkspaceFolders: new EventEmitter<unknown>().event,
  getConfiguration(section?: string) {
    const prefix = section ? section + "." : "";
    return {
      get<T>(key: string, fallback?: T): T | undefined {
        const value = settings[prefix + key];
        return value === undefined ? fallback : value as T;
      },
      has: (key: string) => prefix + key in settings,
    };
  },
  createFileSystemWatcher(..._args: unknown[]) {
    const event = new EventEmitter<unknown>().event;
    return { onDidCreate: event, onDidChange: event, onDidDelete: event, dispose: () => undefined };
  },
  async applyEdit(edit: WorkspaceEdit): Promise<boolean> {
    for (const uri of new Set(edit.edits.map((e) => e.uri.toString()))) {
      const document = documents.find((d) => d.uri.toString() === uri);
      if (!document) {
        return false;
      }
      document.edit(edit.edits.filter((e) => e.uri.toString() === uri));
    }
    return true;
  },
};

export const commands = {
  registerCommand(id: string, handler: (...args: any[]) => unknown): Disposable {
    if (commandHandlers.has(id)) {
      throw new Error(`command '${id}' already exists`); // as VS Code does
    }
    commandHandlers.set(id, handler);
    return new Disposable(() => commandHandlers.delete(id));
  },
  async executeCommand(id: string, ...args: unknown[]): Promise<unknown> {
    recorded.executed.push({ command: id, args });
    if (id === "setContext") {
      recorded.context.set(args[0] as string, args[1]);
      return undefined;
    }
    const handler = commandHandlers.get(id);
    if (!handler) {
      throw new Error(`command '${id}' not found`);
    }
    return handler(...args);
  },
  registered(): string[] {
    return [...commandHandlers.keys()];
  },
};

export const languages = {
  match: () => 10,
  registerInlineCompletionItemProvider: () => new Disposable(),
  createDiagnosticCollection: () => ({ set() {}, delete() {}, clear() {}, dispose() {} }),
};

export const env = { appName: "stub", language: "en", openExternal: async () => true };

// -- classes vscode-languageclient extends or builds (it loads with the stand-in; the tests
// that drive a real LanguageClient need inline completion items to carry their command)

class Shape {
  constructor(..._args: unknown[]) {}
}
export class CompletionItem extends Shape {}
export class CodeLens extends Shape {}
export class CodeAction extends Shape {}
export class Diagnostic extends Shape {}
export class DocumentLink extends Shape {}
export class InlayHint extends Shape {}
export class SymbolInformation extends Shape {}
export class CallHierarchyItem extends Shape {}
export class TypeHierarchyItem extends Shape {}
export class InlineCompletionItem {
  constructor(public insertText: string | { value: string }, public range?: Range,
    public command?: { title: string; command: string; arguments?: unknown[] }) {}
}
export class InlineCompletionList {
  constructor(public items: InlineCompletionItem[]) {}
}
export enum InlineCompletionTriggerKind { Invoke = 0, Automatic = 1 }
/** Read at construction by the language client's converters; any member will do. */
export const CodeActionKind: Record<string, string> = new Proxy({}, { get: (_, key) => String(key) });
