#!/usr/bin/env bash
# Runs the Datashop logs demo: builds what is needed (the npm package and
# the wasm client when stale, the demo app, the gateway in release mode),
# starts the gateway with in-memory defaults, development tokens and the demo
# app on one origin (--static-dir), and the demo publisher, which plays the
# scenarios of examples/publisher on a loop and on request. Prints ONE URL.
# Ctrl-C stops everything.
#
#   scripts/demo.sh            app and API on http://127.0.0.1:3002/,
#                              publisher control on 127.0.0.1:3003
#   PORT=4000 scripts/demo.sh  (control on PORT+1)
#   DEMO_LOOP=0 scripts/demo.sh   publish only when asked (buttons, curl)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

PORT="${PORT:-3002}"
CONTROL_PORT="${CONTROL_PORT:-$((PORT + 1))}"
ETL_TOKEN="etl-dev-token"
FAAS_TOKEN="faas-dev-token"
FUNCTION_TOKEN="function-dev-token"
ADMIN_TOKEN="admin-dev-token"
BASE="http://127.0.0.1:$PORT"

ensure_rust
ensure_node
bash "$ROOT/examples/build.sh"

section "building the gateway (release)"
cargo build --release --locked -p logs-sse-gateway

gateway_pid=""
publisher_pid=""
stop() {
  trap - EXIT INT TERM
  for pid in $publisher_pid $gateway_pid; do kill "$pid" 2>/dev/null || true; done
  for pid in $publisher_pid $gateway_pid; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT TERM

section "starting the gateway"
"$ROOT/target/release/logs-sse-gateway" \
  --listen "127.0.0.1:$PORT" \
  --static-dir "$ROOT/examples/app/dist" \
  --allow-anonymous \
  --service-token "etl=$ETL_TOKEN" \
  --service-token "faas+function=$FAAS_TOKEN" \
  --service-token "function=$FUNCTION_TOKEN" \
  --admin-token "$ADMIN_TOKEN" &
gateway_pid=$!
for _ in $(seq 100); do
  curl -fs "$BASE/health" >/dev/null 2>&1 && break
  kill -0 "$gateway_pid" 2>/dev/null || { echo "the gateway did not start (is port $PORT free?)" >&2; exit 1; }
  sleep 0.1
done

section "starting the demo publisher"
loop_flag=()
[ "${DEMO_LOOP:-1}" = 0 ] && loop_flag=(--no-loop)
node "$ROOT/examples/publisher/demo-publisher.mjs" \
  --gateway "$BASE" --control "127.0.0.1:$CONTROL_PORT" \
  --etl-token "$ETL_TOKEN" --faas-token "$FAAS_TOKEN" --function-token "$FUNCTION_TOKEN" "${loop_flag[@]}" &
publisher_pid=$!
sleep 0.5
kill -0 "$publisher_pid" 2>/dev/null || { echo "the demo publisher did not start (is port $CONTROL_PORT free?)" >&2; exit 1; }

cat <<INFO

Datashop logs demo:  $BASE/

  pages:  $BASE/all             every service of workspace ws-demo, one timeline
          $BASE/indata/logs     ETL pipeline logs
          $BASE/faas/logs       FAAS workflow logs
          $BASE/functions/logs  function execution logs (filter by execution)
          $BASE/dashboard       the three pages side by side

  The demo publisher runs an ETL → FAAS → functions pipeline every 20 s and,
  every 5th run, a 1,000 logs/s burst; the page's buttons start them now, or:
    curl -X POST -H 'Content-Type: application/json' -d '{}' http://127.0.0.1:$CONTROL_PORT/scenarios/pipeline
    curl -X POST -H 'Content-Type: application/json' -d '{"rate":1000,"seconds":10}' http://127.0.0.1:$CONTROL_PORT/scenarios/burst

  development tokens (never use these outside a laptop):
    etl $ETL_TOKEN   faas and function $FAAS_TOKEN   function $FUNCTION_TOKEN   admin $ADMIN_TOKEN

  publish a log yourself:
    curl -X POST $BASE/api/logs/publish -H 'Authorization: Bearer $ETL_TOKEN' \\
      -H 'Content-Type: application/json' \\
      -d '{"service":"etl","workspace_id":"ws-demo","workflow_id":"wf-daily-sales","logData":{"level":"info","message":"hello from curl"}}'
  load:    node examples/loadgen/loadgen.mjs --gateway $BASE --rate 1000 --seconds 10
  stream:  curl -N '$BASE/api/logs/stream?channels=logs:etl:ws-demo'
  stats:   curl -H 'Authorization: Bearer $ADMIN_TOKEN' $BASE/admin/logs/stats

Press Ctrl-C to stop.
INFO
wait -n "$gateway_pid" "$publisher_pid" || true
echo "a demo process exited; stopping" >&2
