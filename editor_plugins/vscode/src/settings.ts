// VS Code settings -> how to start the server and what it is told. Pure: takes anything
// with `get(key)` (a `vscode.WorkspaceConfiguration` for the "sparkedit" section, or a
// plain object in the tests). The server validates every value and warns about bad ones,
// so nothing here re-validates; this only picks the server's keys and maps "" to null.

export const SECTION = "sparkedit";

export interface SettingsReader {
  get<T>(key: string): T | undefined;
}

/** The server's settings, camelCase as on the wire (lsp_server/options.py). */
export interface ServerSettings {
  target?: string;
  model?: string | null;
  baseUrl?: string | null;
  backend?: string;
  quant?: string | null;
  budget?: number;
  maxTokens?: number;
  warmUp?: boolean;
  warmBudget?: number;
  languages?: string[];
  exclude?: string[];
  maxFileBytes?: number;
  debounce?: { minMs?: number; maxMs?: number };
  nextEdit?: boolean;
  statsFile?: string | null;
}

export interface ServerCommand {
  command: string;
  args: string[];
}

export const DEFAULT_SERVER_PATH = "sparkedit";
export const DEFAULT_SERVER_ARGS = ["lsp"];

// Settings that change how the process is started; any other change is sent to the
// running server with workspace/didChangeConfiguration.
export const RESTART_KEYS = ["serverPath", "serverArgs"];

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

// `model`, `baseUrl`, `quant` and `statsFile` are string settings whose empty value means "the server's default", which the server spells
// null. Null also overrides the command line (`sparkedit lsp --model DIR`), so it is sent
// only when the user has just cleared the setting; otherwise an empty one is left out.

function drop<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) {
      delete value[key];
    }
  }
  return value;
}

export function serverCommand(settings: SettingsReader, home?: string): ServerCommand {
  let command = text(settings.get("serverPath"))?.trim() || DEFAULT_SERVER_PATH;
  if (home && (command === "~" || command.startsWith("~/"))) {
    command = home + command.slice(1);
  }
  const raw = settings.get<unknown>("serverArgs");
  const args = Array.isArray(raw) && raw.every((a) => typeof a === "string")
    ? raw as string[] : DEFAULT_SERVER_ARGS;
  return { command, args: [...args] };
}

/** `initializationOptions`, and the `sparkedit` section of didChangeConfiguration;
 * `changed(key)` says whether a configuration change touched `sparkedit.<key>`. */
export function serverSettings(settings: SettingsReader,
  changed: (key: string) => boolean = () => false): ServerSettings {
  const optional = (key: string): string | null | undefined => {
    const value = text(settings.get(key))?.trim();
    return value ? value : changed(key) ? null : undefined;
  };
  const debounce = drop({
    minMs: settings.get<number>("debounce.minMs"),
    maxMs: settings.get<number>("debounce.maxMs"),
  });
  return drop({
    target: settings.get<string>("target"),
    model: optional("model"),
    baseUrl: optional("baseUrl"),
    backend: settings.get<string>("backend"),
    quant: optional("quant"),
    budget: settings.get<number>("budget"),
    maxTokens: settings.get<number>("maxTokens"),
    warmUp: settings.get<boolean>("warmUp"),
    warmBudget: settings.get<number>("warmBudget"),
    languages: settings.get<string[]>("languages"),
    exclude: settings.get<string[]>("exclude"),
    maxFileBytes: settings.get<number>("maxFileBytes"),
    debounce: Object.keys(debounce).length ? debounce : undefined,
    nextEdit: settings.get<boolean>("nextEdit"),
    statsFile: optional("statsFile"),
  });
}

/** A reader over a plain object with dotted keys or nested objects (tests, defaults). */
export function plainReader(values: Record<string, unknown>): SettingsReader {
  return {
    get<T>(key: string): T | undefined {
      if (key in values) {
        return values[key] as T;
      }
      let node: unknown = values;
      for (const part of key.split(".")) {
        if (typeof node !== "object" || node === null || !(part in node)) {
          return undefined;
        }
        node = (node as Record<string, unknown>)[part];
      }
      return node as T;
    },
  };
}
