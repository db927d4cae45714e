#!/usr/bin/env bash
# End-to-end tests of the Datashop demo in headless Chromium (playwright-core
# driving Debian's /usr/bin/chromium) against the real gateway:
#   1. installs what is missing (Chromium; npm ci from the committed lock),
#   2. builds the demo app with examples/build.sh (which first builds the
#      npm package when its dist/ is missing or stale) and the
#      gateway (debug build, shared with the other suites; GATEWAY_BIN=… to
#      test another binary, e.g. target/release/logs-sse-gateway),
#   3. runs e2e/*.test.mjs with node's test runner (TAP; the summary has
#      "# pass N" and "# fail N"). Each test file starts its own gateway on a
#      free port with --static-dir pointing at the built app, and stops it.
# Screenshots and gateway logs go to test-artifacts/e2e/ at the repo root.
# Everything started here is stopped on exit (the test run has its own
# process group, killed by its id).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$HERE"
started=$SECONDS

section "installing what is missing"
ensure_node
ensure_chromium
ensure_rust

bash "$HERE/build.sh"

section "building the gateway"
if [ -z "${GATEWAY_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --locked -p logs-sse-gateway)
  export GATEWAY_BIN="$ROOT/target/debug/logs-sse-gateway"
fi
note "gateway: $GATEWAY_BIN"

ARTIFACTS="$ROOT/test-artifacts/e2e"
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/*.png "$ARTIFACTS"/*.log

tests_pid=""
cleanup() {
  if [ -n "$tests_pid" ] && kill -0 "$tests_pid" 2>/dev/null; then
    kill -TERM -- "-$tests_pid" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$tests_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

section "end-to-end tests (node --test, playwright-core + Chromium)"
status=0
setsid node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 e2e/*.test.mjs &
tests_pid=$!
wait "$tests_pid" || status=$?
tests_pid=""

section "artifacts"
note "screenshots and gateway logs: ${ARTIFACTS#"$ROOT"/}/"
note "examples/test.sh took $((SECONDS - started))s"
exit "$status"
