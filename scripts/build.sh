#!/usr/bin/env bash
# Compiles the code the worker and the `nightshift` command run into dist/ (CommonJS for Node 24): tsc with
# tsconfig.build.json, then the SQL files the activities read beside their code (dist/warehouse/**.sql).
# dist/.built marks a finished build. `npm run build` always builds; --if-changed (make build, make up,
# make install) builds only when a source, the lock file or a tsconfig is newer than the last build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SOURCES=(activities lib migrations scripts warehouse workflows)
INPUTS=(package.json package-lock.json tsconfig.json tsconfig.build.json)

# prints the first input newer than the last build (a deleted file changes its folder's time), nothing when none
changed_input() {
  [[ -f dist/.built ]] || { echo dist/.built; return; }
  find "${SOURCES[@]}" "${INPUTS[@]}" -path scripts/stack -prune -o -newer dist/.built \
    \( -type d -o -name '*.ts' -o -name '*.sql' -o -name '*.json' \) -print -quit
}

if [[ "${1:-}" == --if-changed && -z "$(changed_input)" ]]; then
  exit 0
fi
[[ -x node_modules/.bin/tsc ]] || { echo "node_modules/ is not installed: run make install" >&2; exit 1; }
echo "[build] compiling to dist/"
rm -rf dist
node_modules/.bin/tsc -p tsconfig.build.json
find warehouse -name '*.sql' -exec install -D -m 644 {} dist/{} \;
date -u +%FT%TZ >dist/.built
