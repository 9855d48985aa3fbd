#!/usr/bin/env bash
# A real VS Code for the extension's browser test (tests/clients/test_vscode_real.py):
# code-server 4.100.3 (VS Code 1.100.3, the last line for Node 20) installed without its
# postinstall, whose GitHub downloads fail offline, plus Debian's chromium and
# playwright-core to drive it (playwright's own browser download fails offline too).
#
#   bash scripts/setup_code_server.sh      # prints the install folder when it is ready
#
# Idempotent: the folder ($SPARKEDIT_CODE_SERVER_DIR, default
# ~/.cache/sparkedit/code-server-4.100.3) is reused once complete. Needs npm and the
# package registries; the Debian packages are installed with apt-get when missing
# (as root).
set -euo pipefail

VERSION=4.100.3
PLAYWRIGHT=1.65.2
DIR="${SPARKEDIT_CODE_SERVER_DIR:-$HOME/.cache/sparkedit/code-server-$VERSION}"

if [ -f "$DIR/.complete" ]; then
  echo "$DIR"
  exit 0
fi

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v rg >/dev/null || missing+=(ripgrep)
[ -f /usr/include/krb5.h ] || [ -f /usr/include/krb5/krb5.h ] || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup_code_server: install ${missing[*]} first (apt-get as root)" >&2
    exit 1
  fi
  echo "setup_code_server: apt-get install ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
fi

export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"private": true}' > package.json
echo "setup_code_server: npm install code-server@$VERSION playwright-core@$PLAYWRIGHT" >&2
npm install --ignore-scripts --no-save "code-server@$VERSION" "playwright-core@$PLAYWRIGHT" >&2

VSCODE="$DIR/node_modules/code-server/lib/vscode"
(
  cd "$VSCODE"
  npm install --omit=dev --ignore-scripts >&2
  mkdir -p node_modules/@vscode/ripgrep/bin
  ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
  # Native modules against the system Node's headers (in /usr/include/node).
  npm_config_yes=true npm_config_nodedir=/usr npm rebuild >&2
  ln -sfn node_modules node_modules.asar
  cd extensions
  npm install --omit=dev >&2
)
npm_config_nodedir=/usr npm rebuild argon2 >&2
touch .complete
echo "$DIR"
