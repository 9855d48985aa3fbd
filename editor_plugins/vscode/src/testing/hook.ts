// Import first in a test file: `require("vscode")` (from the extension's modules and from
// vscode-languageclient) then gets the stand-in in vscode-stub.ts. No VS Code build can
// run here, so the extension's logic is tested against that stand-in.

import Module = require("module");

const loader = Module as unknown as {
  _resolveFilename(request: string, parent: unknown, ...rest: unknown[]): string;
};
const resolve = loader._resolveFilename;
const stub = require.resolve("./vscode-stub");

loader._resolveFilename = function (request: string, parent: unknown, ...rest: unknown[]) {
  return request === "vscode" ? stub : resolve.call(this, request, parent, ...rest);
};
