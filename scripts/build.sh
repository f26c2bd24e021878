#!/usr/bin/env bash
# Compiles the code the worker and the `nightshift` command run into dist/ (CommonJS for Node 24): tsc with
# tsconfig.build.json, then the SQL files the activities read beside their code (dist/warehouse/**.sql).
# dist/.built marks a finished build. `npm run build` always builds; --if-changed (make build, make up,
# make install) builds only when a source, the lock file or a tsconfig is newer than the last build.
# BUILD_OUT=<folder inside the project> builds there instead (a test's build beside the running worker's).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${BUILD_OUT:-dist}"

SOURCES=(activities lib migrations scripts warehouse workflows)
INPUTS=(package.json package-lock.json tsconfig.json tsconfig.build.json)

# prints the first input newer than the last build (a deleted file changes its folder's time), nothing when none
changed_input() {
  [[ -f "$OUT/.built" ]] || { echo "$OUT/.built"; return; }
  find "${SOURCES[@]}" "${INPUTS[@]}" -path scripts/stack -prune -o -newer "$OUT/.built" \
    \( -type d -o -name '*.ts' -o -name '*.sql' -o -name '*.json' \) -print -quit
}

if [[ "${1:-}" == --if-changed && -z "$(changed_input)" ]]; then
  exit 0
fi
[[ -x node_modules/.bin/tsc ]] || { echo "node_modules/ is not installed: run make install" >&2; exit 1; }
echo "[build] compiling to $OUT/"
# built beside it, then swapped in: a worker running from $OUT never finds it half-written or missing
# (make up restarts it on the new build; until then it runs the code it loaded)
rm -rf "$OUT.new" "$OUT.old"
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$OUT.new"
find warehouse -name '*.sql' -exec install -D -m 644 {} "$OUT.new/{}" \;
# package.json bin: npx runs it as a program (npm sets the bit only when it first links the package)
chmod +x "$OUT.new/scripts/nightshift.js"
date -u +%FT%TZ >"$OUT.new/.built"
[[ ! -d "$OUT" ]] || mv "$OUT" "$OUT.old"
mv "$OUT.new" "$OUT"
rm -rf "$OUT.old"
