// The real `sparkedit lsp` as a child process, for the protocol tests. The pytest wrapper
// (tests/clients/test_vscode_extension.py) sets SPARKEDIT_PYTHON (the venv's python) and
// SPARKEDIT_TEST_MODEL (the untrained model folder); without them these tests skip.

import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  createProtocolConnection,
  ProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-languageserver-protocol/node";

export const ROOT = path.resolve(__dirname, "..", "..", "..", "..");
export const SAMPLE = fs.readFileSync(path.join(ROOT, "examples", "sample.py"), "utf8");
export const PYTHON = process.env.SPARKEDIT_PYTHON;
export const MODEL = process.env.SPARKEDIT_TEST_MODEL;
export const SKIP = PYTHON && MODEL ? false
  : "SPARKEDIT_PYTHON and SPARKEDIT_TEST_MODEL are not set (tests/clients/test_vscode_extension.py sets them)";

/** A Cerebras-protocol server on 127.0.0.1 for the remote target (set by the pytest wrapper). */
export const REMOTE_URL = process.env.SPARKEDIT_TEST_REMOTE_URL;

/** The arguments after the python executable that start the server. */
export function serverArgs(): string[] {
  return ["-m", "lsp_server.cli", "lsp", "--model", MODEL!];
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class ServerProcess {
  readonly child: ChildProcess;
  readonly connection: ProtocolConnection;
  readonly notifications: { method: string; params: unknown }[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor() {
    this.child = spawn(PYTHON!, serverArgs(), { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" } });
    this.child.stderr!.on("data", (chunk: Buffer) => { this.stderr += chunk.toString(); });
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
    this.connection = createProtocolConnection(new StreamMessageReader(this.child.stdout!),
      new StreamMessageWriter(this.child.stdin!));
    this.connection.onUnhandledNotification((message) => {
      this.notifications.push({ method: message.method, params: message.params });
    });
    // Server-to-client requests (work-done progress, file watcher registration): accept.
    for (const method of ["window/workDoneProgress/create", "client/registerCapability",
      "client/unregisterCapability"]) {
      this.connection.onRequest(method, () => null);
    }
    this.connection.listen();
  }

  request<R = any>(method: string, params: unknown, ms = 60_000): Promise<R> {
    return withTimeout(this.connection.sendRequest(method, params) as Promise<R>, ms,
      `${method} (server stderr so far:\n${this.stderr.slice(-2000)})`);
  }

  notify(method: string, params: unknown): Promise<void> {
    return this.connection.sendNotification(method, params);
  }

  /** shutdown, exit, and the exit code; killed if it does not leave in time. */
  async close(ms = 15_000): Promise<number | null> {
    try {
      await this.request("shutdown", undefined, ms);
      await this.notify("exit", undefined);
    } catch {
      // fall through to the kill
    }
    const code = await withTimeout(this.exited, ms, "server exit").catch(() => {
      this.child.kill("SIGKILL");
      return null;
    });
    this.connection.dispose();
    return code;
  }
}
