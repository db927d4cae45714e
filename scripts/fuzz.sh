#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input with cargo-fuzz for a short time
# each: channel names and stream queries, publish bodies, and subscriber
# tokens from headers, cookies and queries (targets in fuzz/). Any crash
# fails the run and leaves the input in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 20
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
SECONDS_PER_TARGET="${1:-20}"

ensure_rust
if ! cargo fuzz --version >/dev/null 2>&1; then
  section "installing cargo-fuzz (a minute or two, once)"
  cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi
# cargo-fuzz passes nightly-only flags (sanitizers); the stable compiler
# accepts them when bootstrapping is allowed, so no second toolchain is needed.
export RUSTC_BOOTSTRAP=1
cd "$ROOT"
for target in channel_parser publish_body subscriber_token; do
  section "fuzzing $target for ${SECONDS_PER_TARGET}s"
  log="$(mktemp)"
  # Safe Rust needs no AddressSanitizer; without it the build is much faster.
  if ! cargo fuzz run --sanitizer none "$target" -- -max_total_time="$SECONDS_PER_TARGET" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^Done' "$log"
  rm -f "$log"
done
