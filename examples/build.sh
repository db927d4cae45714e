#!/usr/bin/env bash
# Builds the demo app into examples/app/dist (what the gateway serves with
# --static-dir):
#   1. npm-package/build.sh when npm-package/dist is missing or older than
#      its sources (that also builds the wasm client when it is stale),
#   2. npm ci here from the committed lock (skipped when node_modules matches),
#   3. tsc (strict) and vite build,
#   4. the design document's components (examples/design) into
#      examples/design/dist, with React's development build, for the
#      end-to-end test e2e/design.test.mjs.
# Used by scripts/demo.sh and examples/test.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
ensure_node

PKG="$ROOT/npm-package"
if [ ! -f "$PKG/dist/index.js" ] || [ ! -f "$PKG/dist/wasm/logs_sse_client_bg.wasm" ] ||
  [ -n "$(find "$PKG/src" "$PKG/package.json" "$ROOT/client-wasm/src" "$ROOT/protocol/src" \
    -newer "$PKG/dist/index.js" -not -path "$PKG/src/wasm/*" -print -quit 2>/dev/null)" ]; then
  section "building the npm package (npm-package/build.sh)"
  bash "$PKG/build.sh"
fi

section "building the demo app (examples/app → examples/app/dist)"
npm_ci "$HERE"
cd "$HERE"
node_modules/.bin/tsc -p tsconfig.json --noEmit
node_modules/.bin/vite build
note "built $(find app/dist -type f | wc -l) files into examples/app/dist"

section "building the design's components (examples/design → examples/design/dist, React development build)"
NODE_ENV=development node_modules/.bin/vite build -c design/vite.config.mjs
note "built $(find design/dist -type f | wc -l) files into examples/design/dist"
