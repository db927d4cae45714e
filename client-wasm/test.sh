#!/usr/bin/env bash
# Runs the client-wasm tests: native unit + property tests of the pure core,
# then the browser tests in headless Chromium against the real gateway
# (started and restarted by tests/harness/control.py). Installs what is
# missing, skips what is there, and stops everything it started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# --- tools -------------------------------------------------------------
ensure_wasm_target
ensure_wasm_bindgen
ensure_chromium

# --- native tests of the core -------------------------------------------
# (scripts/test.sh already ran them with the whole workspace and sets
# CLIENT_WASM_SKIP_NATIVE=1, so they are not run and counted twice.)
cd "$ROOT"
if [[ "${CLIENT_WASM_SKIP_NATIVE:-0}" != 1 ]]; then
  cargo test -p logs-sse-client-wasm
fi

# --- the real gateway behind the control harness -------------------------
cargo build -p logs-sse-gateway
WORK="$(mktemp -d)"
HARNESS_PID=""
cleanup() {
  if [[ -n "$HARNESS_PID" ]] && kill -0 "$HARNESS_PID" 2>/dev/null; then
    kill "$HARNESS_PID" 2>/dev/null || true
    wait "$HARNESS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

python3 "$HERE/tests/harness/control.py" \
  --gateway "$TARGET_DIR/debug/logs-sse-gateway" \
  --ready-file "$WORK/ready" >"$WORK/harness.log" 2>&1 &
HARNESS_PID=$!
for _ in $(seq 1 150); do
  [[ -s "$WORK/ready" ]] && break
  if ! kill -0 "$HARNESS_PID" 2>/dev/null; then
    cat "$WORK/harness.log" >&2
    echo "test harness exited early" >&2
    exit 1
  fi
  sleep 0.2
done
if [[ ! -s "$WORK/ready" ]]; then
  cat "$WORK/harness.log" >&2
  echo "test harness did not start" >&2
  exit 1
fi
READY="$(cat "$WORK/ready")"
echo "harness: $READY"
LOGS_SSE_TEST_CONTROL="$(sed -E 's/.*control=([^ ]+).*/\1/' <<<"$READY")"
LOGS_SSE_TEST_GATEWAY="$(sed -E 's/.*gateway=([^ ]+).*/\1/' <<<"$READY")"
LOGS_SSE_TEST_AUTH_GATEWAY="$(sed -E 's/.*auth=([^ ]+).*/\1/' <<<"$READY")"
export LOGS_SSE_TEST_CONTROL LOGS_SSE_TEST_GATEWAY LOGS_SSE_TEST_AUTH_GATEWAY

# --- browser tests --------------------------------------------------------
export CHROMEDRIVER=/usr/bin/chromedriver
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-180}"
# wasm-bindgen-test-runner reads webdriver.json from the working directory.
cd "$HERE"
cargo test -p logs-sse-client-wasm --target wasm32-unknown-unknown --test browser -- --nocapture
# The same client in a SharedWorker (no window).
cargo test -p logs-sse-client-wasm --target wasm32-unknown-unknown --test worker -- --nocapture

# Optional: the ingest benchmark in an optimised build (the figure above is
# from the unoptimised test build).
if [[ "${CLIENT_WASM_BENCH_RELEASE:-0}" == 1 ]]; then
  cargo test --release -p logs-sse-client-wasm --target wasm32-unknown-unknown --test browser ingest_benchmark -- --nocapture
fi
