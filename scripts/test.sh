#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, the Rust workspace
# (protocol, gateway, wasm client core), a short fuzz run, the gateway against
# its OpenAPI document, the wasm client and the npm package in headless
# Chromium, the publisher SDKs against the real gateway, and the demo's
# end-to-end tests in Chromium, and the deployment (alert rules, the files
# agreeing with each other, the cluster behind nginx in Chromium).
#
# Installs what it needs and skips what is already there. Each suite's output
# goes to target/test-logs/<suite>.log as well as to the terminal; the last
# line sums up the tests that ran.
#
#   scripts/test.sh            everything
#   scripts/test.sh rust       only the named suites (rust fuzz openapi wasm npm publishers e2e deploy)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

LOG_DIR="$ROOT/target/test-logs"
mkdir -p "$LOG_DIR"
SUITES=("$@")
[ ${#SUITES[@]} -eq 0 ] && SUITES=(rust fuzz openapi wasm npm publishers e2e deploy)

failed_suites=()
total_passed=0
total_failed=0

# Adds the pass/fail counts printed by cargo test, wasm-bindgen-test,
# pytest and node --test in a suite's log to the totals.
count_results() {
  local log="$1" p f
  p=$(grep -aoE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
  f=$(grep -aoE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
  total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
  local pytest_summary='^(=+ )?[0-9]+ (passed|failed|error).* in [0-9.]+s'
  p=$(grep -aE "$pytest_summary" "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
  f=$(grep -aE "$pytest_summary" "$log" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s+=$1} END {print s+0}')
  total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
  # Suites that sum up their own runners print "<suite>: N passed, N failed".
  p=$(grep -aE '^[a-z-]+: [0-9]+ passed, [0-9]+ failed$' "$log" | awk '{s+=$2} END {print s+0}')
  f=$(grep -aE '^[a-z-]+: [0-9]+ passed, [0-9]+ failed$' "$log" | awk '{s+=$4} END {print s+0}')
  total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
  p=$(grep -aE '^# pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
  f=$(grep -aE '^# fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
  total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
}

run_suite() {
  local name="$1"; shift
  local log="$LOG_DIR/$name.log" started=$SECONDS
  section "$name"
  if "$@" 2>&1 | tee "$log"; then
    note "$name: ok in $((SECONDS - started))s"
  else
    failed_suites+=("$name")
    note "$name: FAILED in $((SECONDS - started))s (log: $log)"
  fi
  count_results "$log"
}

suite_rust() {
  ensure_rust
  ensure_redis
  cargo fmt --all -- --check || { echo "cargo fmt reports unformatted code; run: cargo fmt --all"; return 1; }
  cargo clippy --workspace --all-targets --locked -- -D warnings || return 1
  # The browser boundary of the wasm client only compiles for wasm32.
  ensure_wasm_target
  cargo clippy --locked -p logs-sse-client-wasm --all-targets --target wasm32-unknown-unknown -- -D warnings || return 1
  # The terminal client's TLS build (a feature, kept out of workspace builds).
  cargo clippy --locked -p logs-sse-cli --all-targets --features tls -- -D warnings || return 1
  cargo test --workspace --locked || return 1
  # The stream, auth and control suites again, each test gateway on a redis-server of
  # its own (the memory-specific history model of backfill.rs stays out).
  LOGS_SSE_TEST_BACKEND=redis cargo test --locked -p logs-sse-gateway --test stream --test auth --test control --test idempotency
}

suite_fuzz() {
  bash "$ROOT/scripts/fuzz.sh" "${FUZZ_SECONDS:-20}"
}

suite_openapi() {
  bash "$ROOT/scripts/openapi.sh"
}

suite_wasm() {
  # The core's native tests run in the rust suite when it is selected.
  local skip=0
  [[ " ${SUITES[*]} " == *" rust "* ]] && skip=1
  CLIENT_WASM_SKIP_NATIVE=$skip bash "$ROOT/client-wasm/test.sh"
}

suite_npm() {
  bash "$ROOT/npm-package/test.sh"
}

suite_e2e() {
  bash "$ROOT/examples/test.sh"
}

suite_deploy() {
  bash "$ROOT/deploy/test.sh"
}

suite_publishers() {
  ensure_rust
  ensure_redis
  cargo build --locked -p logs-sse-gateway
  GATEWAY_BIN="$ROOT/target/debug/logs-sse-gateway" bash "$ROOT/publishers/test.sh"
}

started_all=$SECONDS
for suite in "${SUITES[@]}"; do
  case "$suite" in
    rust) run_suite rust suite_rust ;;
    fuzz) run_suite fuzz suite_fuzz ;;
    openapi) run_suite openapi suite_openapi ;;
    wasm) [ -f client-wasm/test.sh ] && run_suite wasm suite_wasm ;;
    npm) [ -f npm-package/test.sh ] && run_suite npm suite_npm ;;
    publishers) [ -f publishers/test.sh ] && run_suite publishers suite_publishers ;;
    e2e) [ -f examples/test.sh ] && run_suite e2e suite_e2e ;;
    deploy) run_suite deploy suite_deploy ;;
    *) echo "unknown suite: $suite (known: rust fuzz openapi wasm npm publishers e2e deploy)"; exit 2 ;;
  esac
done

section "summary"
note "ran ${SUITES[*]} in $((SECONDS - started_all))s"
if [ ${#failed_suites[@]} -gt 0 ]; then
  note "failed suites: ${failed_suites[*]}"
fi
echo "$total_passed passed, $total_failed failed"
[ ${#failed_suites[@]} -eq 0 ] && [ "$total_failed" -eq 0 ]
