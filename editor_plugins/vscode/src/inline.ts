// Ghost text is the language client's own inline completion provider; this middleware
// only tells the server which suggestion is shown. The accept side is the
// `sparkedit.accept` command each item carries (extension.ts registers it).

import type * as vscode from "vscode";
import type { Middleware } from "vscode-languageclient/node";
import { DID_SHOW, suggestionId } from "./protocol";

type Items = vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined;

export type Notify = (method: string, params: unknown) => unknown;

/** The last suggestion id reported shown per document, so that typing through the same
 * suggestion (the server keeps its id) sends didShow once. */
export class ShownIds {
  private readonly byUri = new Map<string, string>();

  /** True when `id` is newly shown in `uri`, remembered from now on. */
  firstShow(uri: string, id: string): boolean {
    if (this.byUri.get(uri) === id) {
      return false;
    }
    this.byUri.set(uri, id);
    return true;
  }

  forget(uri: string): void {
    this.byUri.delete(uri);
  }
}

/** The id of the item VS Code shows first, if sparkedit produced it. */
export function firstItemId(result: Items): string | undefined {
  const items = Array.isArray(result) ? result : result?.items;
  const command = items?.[0]?.command;
  return command ? suggestionId(command) : undefined;
}

/** `provideInlineCompletionItems` middleware: didShow for the first item's id, then
 * `answered` (the extension refreshes the status bar's latency from it). */
export function inlineMiddleware(notify: Notify, shown: ShownIds = new ShownIds(),
  answered?: (hadItems: boolean) => void): Pick<Middleware, "provideInlineCompletionItems"> {
  return {
    async provideInlineCompletionItems(document, position, context, token, next) {
      const result = await next(document, position, context, token);
      const id = token.isCancellationRequested ? undefined : firstItemId(result);
      if (id !== undefined && shown.firstShow(document.uri.toString(), id)) {
        Promise.resolve(notify(DID_SHOW, { id })).catch(() => undefined);
      }
      answered?.(id !== undefined);
      return result;
    },
  };
}
