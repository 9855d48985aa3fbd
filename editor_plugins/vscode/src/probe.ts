// Is the server executable there? A `which`-like look-up, so that a missing `sparkedit`
// gives a message that says what to do instead of the language client's spawn ENOENT.

import * as fs from "fs";
import * as path from "path";

export type IsExecutable = (file: string) => boolean;

export function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    fs.accessSync(file, process.platform === "win32" ? fs.constants.F_OK : fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The file `command` runs (looked up on PATH unless it names a path), or undefined. */
export function findExecutable(command: string, env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  isExecutable: IsExecutable = isExecutableFile): string | undefined {
  const windows = platform === "win32";
  const extensions = windows
    ? ["", ...(env.PATHEXT ?? ".COM;.EXE;.BAT;.CMD").split(";").filter(Boolean)]
    : [""];
  const candidates = (base: string) => extensions.map((ext) => base + ext);
  if (command.includes("/") || (windows && command.includes("\\"))) {
    return candidates(command).find(isExecutable);
  }
  const delimiter = windows ? ";" : ":";
  const dirs = (env.PATH ?? env.Path ?? "").split(delimiter).filter(Boolean);
  const join = windows ? path.win32.join : path.posix.join;
  for (const dir of dirs) {
    const found = candidates(join(dir, command)).find(isExecutable);
    if (found) {
      return found;
    }
  }
  return undefined;
}

export function missingServerMessage(command: string): string {
  const where = command.includes("/") || command.includes("\\")
    ? `at ${command}` : `on PATH (${command})`;
  return `sparkedit: the language server executable was not found ${where}. Install sparkedit `
    + "(pip install -e . in the sparkedit repository, into a Python 3.11+ environment) or set \"sparkedit.serverPath\" "
    + "to the full path of its executable, then run \"sparkedit: Restart the language server\".";
}
