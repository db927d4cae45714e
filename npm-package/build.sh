#!/usr/bin/env bash
# Builds the npm package into npm-package/dist/ (gitignored):
#   1. the wasm client (client-wasm/build.sh) when client-wasm/pkg is missing
#      or older than the Rust sources it is built from;
#   2. copies its wasm-bindgen `--target web` glue and .wasm to src/wasm/
#      (gitignored) so tsc can type-check the import;
#   3. tsc (strict) -> dist/*.js + .d.ts, and the glue + .wasm -> dist/wasm/
#      (src/contract.ts checks the package's types against the glue's .d.ts);
#   4. prints the package's JS and wasm sizes, raw and gzipped.
#
# SKIP_WASM_BUILD=1 uses client-wasm/pkg as it is (it must exist).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PKG="$ROOT/client-wasm/pkg"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

wasm_is_stale() {
  [ -f "$PKG/logs_sse_client_bg.wasm" ] && [ -f "$PKG/logs_sse_client.js" ] || return 0
  [ -n "$(find "$ROOT/client-wasm/src" "$ROOT/client-wasm/Cargo.toml" "$ROOT/protocol/src" \
    "$ROOT/protocol/Cargo.toml" "$ROOT/client-wasm/build.sh" "$ROOT/client-wasm/minify-names.mjs" \
    "$ROOT/scripts/lib.sh" -newer "$PKG/logs_sse_client_bg.wasm" -print -quit)" ]
}

if [ "${SKIP_WASM_BUILD:-0}" != 1 ] && wasm_is_stale; then
  section "building the wasm client (client-wasm/build.sh)"
  bash "$ROOT/client-wasm/build.sh"
fi
[ -f "$PKG/logs_sse_client_bg.wasm" ] || { echo "missing $PKG/logs_sse_client_bg.wasm" >&2; exit 1; }

cd "$HERE"
ensure_node
[ -x node_modules/.bin/tsc ] || npm_ci "$HERE"

section "compiling TypeScript"
rm -rf src/wasm dist
mkdir -p src/wasm
cp "$PKG/logs_sse_client.js" "$PKG/logs_sse_client.d.ts" "$PKG/logs_sse_client_bg.wasm" src/wasm/
node_modules/.bin/tsc -p tsconfig.json
# contract.ts holds type checks only (nothing imports it): not shipped.
rm -f dist/contract.js dist/contract.d.ts
mkdir -p dist/wasm
cp src/wasm/logs_sse_client.js src/wasm/logs_sse_client.d.ts src/wasm/logs_sse_client_bg.wasm dist/wasm/

section "package sizes"
gz() { gzip -9 -c "$@" | wc -c | tr -d ' '; }
raw() { cat "$@" | wc -c | tr -d ' '; }
mapfile -t own < <(find dist -name '*.js' -not -path 'dist/wasm/*' | sort)
printf '    %-34s %9s %9s\n' "" raw gzip
printf '    %-34s %9s %9s\n' "JS of this package (${#own[@]} modules)" "$(raw "${own[@]}")" "$(gz "${own[@]}")"
printf '    %-34s %9s %9s\n' "JS glue (dist/wasm/*.js)" "$(raw dist/wasm/logs_sse_client.js)" "$(gz dist/wasm/logs_sse_client.js)"
printf '    %-34s %9s %9s\n' "wasm (dist/wasm/*.wasm)" "$(raw dist/wasm/logs_sse_client_bg.wasm)" "$(gz dist/wasm/logs_sse_client_bg.wasm)"
