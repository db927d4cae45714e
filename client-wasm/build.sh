#!/usr/bin/env bash
# Release build of the wasm client into client-wasm/pkg/ (gitignored):
#   cargo build (size profile) -> wasm-bindgen --target web -> wasm-opt -Oz
# then prints the raw and gzipped sizes of the .wasm and the JS glue.
#
# The size profile is set with CARGO_PROFILE_RELEASE_* variables for this
# build only, so the workspace's release profile stays as it is.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
WASM_BINDGEN_VERSION=0.2.130
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$HERE/pkg"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
if [[ ! -x "$HERE/tools/node_modules/.bin/wasm-opt" ]]; then
  (cd "$HERE/tools" && npm ci --no-audit --no-fund)
fi

cd "$ROOT"
CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
CARGO_PROFILE_RELEASE_LTO=true \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_PANIC=abort \
CARGO_PROFILE_RELEASE_DEBUG=false \
  cargo build --release --target wasm32-unknown-unknown -p logs-sse-client-wasm

rm -rf "$OUT"
wasm-bindgen --target web --out-dir "$OUT" --out-name logs_sse_client \
  "$TARGET_DIR/wasm32-unknown-unknown/release/logs_sse_client_wasm.wasm"

# The features rustc enables by default for wasm32-unknown-unknown.
# --converge repeats -Oz until the size stops shrinking. --low-memory-unused
# lets loads and stores fold constant offsets: Rust lays the stack out first
# in linear memory, growing down towards 0, so the lowest 1 KiB is touched
# only by a stack already overflowed by a megabyte. The producers and
# target-features sections only describe the toolchain: browsers ignore them.
"$HERE/tools/node_modules/.bin/wasm-opt" -Oz --converge --low-memory-unused \
  --strip-producers --strip-target-features \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$OUT/logs_sse_client_bg.wasm" -o "$OUT/logs_sse_client_bg.wasm"

size() { wc -c <"$1" | tr -d ' '; }
gz() { gzip -9 -c "$1" | wc -c | tr -d ' '; }
wasm="$OUT/logs_sse_client_bg.wasm"
js="$OUT/logs_sse_client.js"
printf '%-28s %9s %9s\n' file raw gzip
printf '%-28s %9s %9s\n' "$(basename "$wasm")" "$(size "$wasm")" "$(gz "$wasm")"
printf '%-28s %9s %9s\n' "$(basename "$js")" "$(size "$js")" "$(gz "$js")"
printf '%-28s %9s %9s\n' total "$(( $(size "$wasm") + $(size "$js") ))" "$(( $(gz "$wasm") + $(gz "$js") ))"
