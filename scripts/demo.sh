#!/usr/bin/env bash
# Runs the Datashop logs demo: builds what is needed and starts the gateway
# with in-memory defaults and development tokens, then prints the URL, the
# tokens and commands to try. Ctrl-C stops everything.
#
#   scripts/demo.sh            listen on 127.0.0.1:3002
#   PORT=4000 scripts/demo.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

PORT="${PORT:-3002}"
ETL_TOKEN="etl-dev-token"
FAAS_TOKEN="faas-dev-token"
FUNCTION_TOKEN="function-dev-token"
ADMIN_TOKEN="admin-dev-token"

ensure_rust
section "building the gateway (release)"
cargo build --release --locked -p logs-sse-gateway

section "starting the gateway"
"$ROOT/target/release/logs-sse-gateway" \
  --listen "127.0.0.1:$PORT" \
  --allow-anonymous \
  --service-token "etl=$ETL_TOKEN" \
  --service-token "faas=$FAAS_TOKEN" \
  --service-token "function=$FUNCTION_TOKEN" \
  --admin-token "$ADMIN_TOKEN" \
  --cors-origin '*' &
GATEWAY_PID=$!
trap 'kill $GATEWAY_PID 2>/dev/null; wait $GATEWAY_PID 2>/dev/null' EXIT INT TERM

for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done

BASE="http://127.0.0.1:$PORT"
cat <<INFO

Datashop logs gateway is running at $BASE

  development tokens (never use these outside a laptop):
    etl       $ETL_TOKEN
    faas      $FAAS_TOKEN
    function  $FUNCTION_TOKEN
    admin     $ADMIN_TOKEN

  watch a workflow and its whole workspace (in another terminal):
    curl -N '$BASE/api/logs/stream?channels=logs:etl:ws123:wf456,logs:etl:ws123'

  publish a log:
    curl -X POST $BASE/api/logs/publish -H 'Authorization: Bearer $ETL_TOKEN' \\
      -H 'Content-Type: application/json' \\
      -d '{"service":"etl","workspace_id":"ws123","workflow_id":"wf456","logData":{"level":"info","message":"extract started"}}'

  stats:   curl -H 'Authorization: Bearer $ADMIN_TOKEN' $BASE/admin/logs/stats
  metrics: curl -H 'Authorization: Bearer $ADMIN_TOKEN' $BASE/metrics

Press Ctrl-C to stop.
INFO
wait $GATEWAY_PID
