#!/usr/bin/env bash
# Tests of @datashop/logs-sse-client:
#   1. installs what is missing (npm ci from the committed locks, Chromium),
#   2. builds the package (build.sh: wasm if stale, tsc, sizes),
#   3. vitest unit tests of the TypeScript logic (node),
#   4. vitest browser tests: headless Chromium (playwright-core) against the
#      real gateway binary, including the Vite and webpack packaging tests.
# The gateway is started here on a free port and always stopped (trap).
# The last line sums up: "npm-package: N passed, M failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$HERE"

section "installing what is missing"
ensure_node
npm_ci "$HERE"
npm_ci "$HERE/test/fixtures/react18"   # React 18 for the second build of the test app
ensure_chromium

section "building the package"
bash "$HERE/build.sh"

OUT="$HERE/test/.out"
mkdir -p "$OUT"
rm -f "$OUT"/unit.json "$OUT"/browser.json

gateway_pid=""
cleanup() {
  if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

section "starting the gateway"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/target/debug/logs-sse-gateway}"
if [ "${GATEWAY_BIN}" = "$ROOT/target/debug/logs-sse-gateway" ]; then
  (cd "$ROOT" && cargo build -q -p logs-sse-gateway)
fi
: >"$OUT/gateway.out"
"$GATEWAY_BIN" --listen 127.0.0.1:0 --allow-anonymous --admin-token admin-test-token --cors-origin '*' \
  --service-token etl=etl-test-token --service-token faas=faas-test-token \
  --service-token function=function-test-token >"$OUT/gateway.out" 2>"$OUT/gateway.log" &
gateway_pid=$!
for _ in $(seq 1 200); do
  grep -q 'listening on' "$OUT/gateway.out" && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$OUT/gateway.log" >&2; echo "the gateway exited" >&2; exit 1; }
  sleep 0.1
done
LOGS_SSE_TEST_GATEWAY="$(grep -o 'http://[0-9.:]*' "$OUT/gateway.out" | head -1)"
[ -n "$LOGS_SSE_TEST_GATEWAY" ] || { echo "the gateway did not say where it listens" >&2; exit 1; }
export LOGS_SSE_TEST_GATEWAY
note "gateway at $LOGS_SSE_TEST_GATEWAY (log: $OUT/gateway.log)"

status=0
section "unit tests (vitest)"
node_modules/.bin/vitest run -c vitest.unit.config.ts \
  --reporter=default --reporter=json --outputFile.json="$OUT/unit.json" || status=1

section "browser and packaging tests (vitest + playwright-core + Chromium)"
node_modules/.bin/vitest run -c vitest.browser.config.ts \
  --reporter=default --reporter=json --outputFile.json="$OUT/browser.json" || status=1

section "summary"
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0;
  for (const [name, file] of [["unit", process.argv[1]], ["browser", process.argv[2]]]) {
    if (!fs.existsSync(file)) { console.log(`    ${name}: no results`); failed += 1; continue; }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    console.log(`    ${name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
    passed += r.numPassedTests; failed += r.numFailedTests;
  }
  console.log(`npm-package: ${passed} passed, ${failed} failed`);
' "$OUT/unit.json" "$OUT/browser.json"
exit "$status"
