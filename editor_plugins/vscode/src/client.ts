// The language client for `sparkedit lsp`: how it is started, what it syncs, and which of
// the server's commands stay with the extension.

import * as vscode from "vscode";
import {
  ExecuteCommandOptions,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  Middleware,
  RegistrationData,
  RevealOutputChannelOn,
  ServerOptions,
} from "vscode-languageclient/node";
import { EXTENSION_COMMANDS } from "./protocol";
import { ServerCommand, ServerSettings } from "./settings";

export { EXTENSION_COMMANDS };

export interface CommandRegistrar {
  register(data: RegistrationData<ExecuteCommandOptions>): void;
}

/** The language client turns every command in the server's `executeCommandProvider` into
 * a VS Code command that forwards to `workspace/executeCommand`, and VS Code refuses a
 * second command with the same id ("command already exists", which fails the client's
 * start). Leave `owned` out of those registrations, static and dynamic alike. */
export function leaveCommandsToExtension(feature: CommandRegistrar, owned: readonly string[]): void {
  const register = feature.register.bind(feature);
  feature.register = (data) => register({
    ...data,
    registerOptions: {
      ...data.registerOptions,
      commands: (data.registerOptions.commands ?? []).filter((c) => !owned.includes(c)),
    },
  });
}

// Every file and unsaved buffer: the server applies `sparkedit.languages` itself (it also
// knows names such as "tsx" that are not VS Code language ids).
export const DOCUMENT_SELECTOR = [{ scheme: "file" }, { scheme: "untitled" }];

export function createClient(server: ServerCommand, settings: ServerSettings,
  output: vscode.LogOutputChannel, middleware: Middleware): LanguageClient {
  // No `transport`: TransportKind.stdio would append `--stdio`, which `sparkedit lsp` does
  // not take; without it the client still talks over the process's stdin and stdout.
  const serverOptions: ServerOptions = { command: server.command, args: server.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: DOCUMENT_SELECTOR,
    initializationOptions: settings,
    outputChannel: output,
    middleware,
    // A crash is shown in the status bar; the output channel has the server's stderr.
    revealOutputChannelOn: RevealOutputChannelOn.Never,
  };
  const client = new LanguageClient("sparkedit", "sparkedit", serverOptions, clientOptions);
  leaveCommandsToExtension(client.getFeature(ExecuteCommandRequest.method), EXTENSION_COMMANDS);
  return client;
}
