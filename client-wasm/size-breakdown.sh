#!/usr/bin/env bash
# Where the wasm client's bytes go: builds the module with build.sh's size
# profile, runs wasm-bindgen keeping the function names (before wasm-opt,
# which drops them), and prints the largest functions and the code summed
# by area (crate::module, the formatting machinery as one row).
#
# Needs twiggy (`cargo install twiggy`). Output goes to target/size-breakdown/.
# The figures are pre-wasm-opt bytes, raw: use them to rank causes, and
# npm-package/size.mjs to measure what an app ships.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET_DIR/size-breakdown"
TOP="${TOP:-30}"

command -v twiggy >/dev/null || { echo "twiggy is missing: cargo install twiggy" >&2; exit 1; }

cd "$ROOT"
cargo_build_wasm_release

rm -rf "$OUT"
wasm-bindgen --keep-debug --target web --out-dir "$OUT" --out-name named \
  "$TARGET_DIR/wasm32-unknown-unknown/release/logs_sse_client_wasm.wasm"

echo "== largest items (pre-wasm-opt, raw bytes)"
twiggy top -n "$TOP" "$OUT/named_bg.wasm" | grep -v "custom section\|subsection"

twiggy top -n 100000 -f csv "$OUT/named_bg.wasm" >"$OUT/top.csv"
echo
echo "== code by area (raw bytes, items)"
python3 - "$OUT/top.csv" "$TOP" <<'EOF'
import collections, csv, re, sys

size = collections.Counter()
count = collections.Counter()
for row in csv.DictReader(open(sys.argv[1])):
    name = row["Name"]
    if "custom section" in name or "subsection" in name:
        continue
    name = re.sub(r"\[[0-9a-f]+\]", "", name)  # crate disambiguators
    if re.search(r"core::fmt|fmt::(Display|Debug|Write)|alloc::fmt", name):
        area = "formatting (core::fmt, Display/Debug impls)"
    elif name.startswith("data segment"):
        area = name
    else:
        # `<T as Trait>::f` counts for T's crate; `a::b::c::f` for a::b::c.
        path = re.match(r"<?([A-Za-z_0-9]+(?:::[a-z_0-9]+){0,2})", name)
        area = path.group(1) if path else name[:40]
    size[area] += int(row["ShallowSize"])
    count[area] += 1
total = sum(size.values())
for area, n in size.most_common(int(sys.argv[2])):
    print(f"{n:8} {count[area]:5}  {area}")
print(f"{total:8} {sum(count.values()):5}  total (code and data, without names and debug info)")
EOF
