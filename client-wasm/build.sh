#!/usr/bin/env bash
# Release build of the wasm client into client-wasm/pkg/ (gitignored):
#   cargo build (size profile) -> wasm-bindgen --target web -> wasm-opt -Oz
#   -> short import/export names (minify-names.mjs)
# then prints the raw and gzipped sizes of the .wasm and the JS glue.
#
# The size profile is `cargo_build_wasm_release` in scripts/lib.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$HERE/pkg"

ensure_wasm_target
ensure_wasm_bindgen
if [[ ! -x "$HERE/tools/node_modules/.bin/wasm-opt" ]]; then
  (cd "$HERE/tools" && npm ci --no-audit --no-fund)
fi

cd "$ROOT"
cargo_build_wasm_release

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

# Short names across the JS/wasm boundary (`__wbg_addEventListener_847f…`
# becomes `A`): wasm-opt renames the module's side and prints the mapping,
# minify-names.mjs renames the glue's side and checks the two agree.
"$HERE/tools/node_modules/.bin/wasm-opt" --minify-imports-and-exports-and-modules \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$OUT/logs_sse_client_bg.wasm" -o "$OUT/logs_sse_client_bg.wasm" >"$OUT/names.json"
node "$HERE/minify-names.mjs" "$OUT/names.json" "$OUT/logs_sse_client.js" "$OUT/logs_sse_client.d.ts"
rm -f "$OUT/names.json" "$OUT/logs_sse_client_bg.wasm.d.ts"

size() { wc -c <"$1" | tr -d ' '; }
gz() { gzip -9 -c "$1" | wc -c | tr -d ' '; }
wasm="$OUT/logs_sse_client_bg.wasm"
js="$OUT/logs_sse_client.js"
printf '%-28s %9s %9s\n' file raw gzip
printf '%-28s %9s %9s\n' "$(basename "$wasm")" "$(size "$wasm")" "$(gz "$wasm")"
printf '%-28s %9s %9s\n' "$(basename "$js")" "$(size "$js")" "$(gz "$js")"
printf '%-28s %9s %9s\n' total "$(( $(size "$wasm") + $(size "$js") ))" "$(( $(gz "$wasm") + $(gz "$js") ))"
