#!/usr/bin/env bash
# Runs the cluster of deploy/compose.yaml from local binaries: a real
# redis-server, two gateway nodes sharing it (settings from
# deploy/gateway.env and deploy/demo.env, exactly as the containers get
# them), nginx in front with TLS and HTTP/2 (deploy/nginx/logs-sse.conf,
# rendered with local addresses by deploy/nginx/render.sh, and a
# certificate generated for this run), serving the demo app, and the demo
# publisher. Prints ONE URL. Ctrl-C stops everything (by PID).
#
#   scripts/cluster-demo.sh                  https://127.0.0.1:8443/
#   PORT=9443 scripts/cluster-demo.sh
#   DEMO_PUBLISHER=0 scripts/cluster-demo.sh  no demo publisher
#   GATEWAY_BIN=target/debug/logs-sse-gateway APP_DIR=… scripts/cluster-demo.sh
#                                            skip the builds (the tests do)
#
# Once everything answers it writes $CLUSTER_DIR/cluster.env (URL, node
# addresses and PIDs, the CA certificate) and prints "cluster ready".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

PORT="${PORT:-8443}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT="${REDIS_PORT:-$(free_port)}"
NODE1_PORT="${NODE1_PORT:-$(free_port)}"
NODE2_PORT="${NODE2_PORT:-$(free_port)}"
CONTROL_PORT="${CONTROL_PORT:-$(free_port)}"
CLUSTER_DIR="${CLUSTER_DIR:-$(mktemp -d -t logs-sse-cluster.XXXXXX)}"
mkdir -p "$CLUSTER_DIR"
chmod 755 "$CLUSTER_DIR"

ensure_redis
ensure_nginx
if [ -z "${GATEWAY_BIN:-}" ]; then
  ensure_rust
  section "building the gateway (release)"
  cargo build --release --locked -p logs-sse-gateway
  GATEWAY_BIN="$ROOT/target/release/logs-sse-gateway"
fi
if [ -z "${APP_DIR:-}" ]; then
  ensure_node
  bash "$ROOT/examples/build.sh"
  APP_DIR="$ROOT/examples/app/dist"
fi

pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT TERM

wait_for() { # what, pid, command...
  local what="$1" pid="$2"; shift 2
  for _ in $(seq 150); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$what did not start; see $CLUSTER_DIR" >&2; exit 1; }
    sleep 0.1
  done
  echo "$what did not answer in 15 s; see $CLUSTER_DIR" >&2; exit 1
}

section "starting redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$CLUSTER_DIR" --save '' --appendonly no \
  --logfile "$CLUSTER_DIR/redis.log" &
pids+=($!)
redis_pid=${pids[-1]}
wait_for redis-server "$redis_pid" redis-cli -p "$REDIS_PORT" ping

section "starting two gateway nodes"
node_pids=()
for n in 1 2; do
  port_var="NODE${n}_PORT"
  (
    set -a
    # shellcheck source=../deploy/gateway.env
    source "$ROOT/deploy/gateway.env"
    # shellcheck source=../deploy/demo.env
    source "$ROOT/deploy/demo.env"
    set +a
    export LOGS_SSE_LISTEN="127.0.0.1:${!port_var}"
    export LOGS_SSE_NODE_ID="gateway-$n"
    export LOGS_SSE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
    exec "$GATEWAY_BIN" >"$CLUSTER_DIR/gateway-$n.out" 2>"$CLUSTER_DIR/gateway-$n.log"
  ) &
  pids+=($!)
  node_pids+=($!)
  wait_for "gateway-$n" "${pids[-1]}" curl -fs "http://127.0.0.1:${!port_var}/health"
  note "gateway-$n on http://127.0.0.1:${!port_var} (pid ${pids[-1]})"
done

section "starting nginx on https://127.0.0.1:$PORT (TLS, HTTP/2)"
# A CA for this run and the proxy's certificate signed by it (clients trust
# the CA: curl --cacert, SSL_CERT_FILE for logs-sse, NODE_EXTRA_CA_CERTS).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj '/CN=logs-sse cluster demo CA' -keyout "$CLUSTER_DIR/ca.key" -out "$CLUSTER_DIR/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$CLUSTER_DIR/tls.key" -out "$CLUSTER_DIR/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$CLUSTER_DIR/tls.ext"
openssl x509 -req -in "$CLUSTER_DIR/tls.csr" -CA "$CLUSTER_DIR/ca.crt" -CAkey "$CLUSTER_DIR/ca.key" \
  -CAcreateserial -days 2 -extfile "$CLUSTER_DIR/tls.ext" -out "$CLUSTER_DIR/tls.crt" 2>/dev/null
bash "$ROOT/deploy/nginx/render.sh" "$CLUSTER_DIR/logs-sse.conf" "$PORT" \
  "$CLUSTER_DIR/tls.crt" "$CLUSTER_DIR/tls.key" "$APP_DIR" \
  "127.0.0.1:$NODE1_PORT" "127.0.0.1:$NODE2_PORT"
mkdir -p "$CLUSTER_DIR/nginx"
cat >"$CLUSTER_DIR/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $CLUSTER_DIR/nginx.pid;
error_log $CLUSTER_DIR/nginx-error.log warn;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path $CLUSTER_DIR/nginx/body;
  proxy_temp_path $CLUSTER_DIR/nginx/proxy;
  fastcgi_temp_path $CLUSTER_DIR/nginx/fastcgi;
  uwsgi_temp_path $CLUSTER_DIR/nginx/uwsgi;
  scgi_temp_path $CLUSTER_DIR/nginx/scgi;
  include $CLUSTER_DIR/logs-sse.conf;
}
NGINX
nginx -e "$CLUSTER_DIR/nginx-error.log" -p "$CLUSTER_DIR/nginx" -c "$CLUSTER_DIR/nginx.conf" &
pids+=($!)
nginx_pid=$!
URL="https://127.0.0.1:$PORT"
wait_for nginx "${pids[-1]}" curl -fs --cacert "$CLUSTER_DIR/ca.crt" "$URL/health"

watched=("$redis_pid" "$nginx_pid")
publisher_note="  demo publisher: off (DEMO_PUBLISHER=0)"
if [ "${DEMO_PUBLISHER:-1}" != 0 ]; then
  section "starting the demo publisher (to gateway-1)"
  # Publishers reach the nodes inside the cluster, as in compose.yaml.
  node "$ROOT/examples/publisher/demo-publisher.mjs" \
    --gateway "http://127.0.0.1:$NODE1_PORT" --control "127.0.0.1:$CONTROL_PORT" \
    --etl-token etl-dev-token --faas-token faas-dev-token --function-token function-dev-token \
    >"$CLUSTER_DIR/publisher.log" 2>&1 &
  pids+=($!)
  watched+=($!)
  publisher_note="  demo publisher: control on http://127.0.0.1:$CONTROL_PORT (see scripts/demo.sh)"
fi

cat >"$CLUSTER_DIR/cluster.env" <<ENV
URL=$URL
CA_CERT=$CLUSTER_DIR/ca.crt
REDIS_PORT=$REDIS_PORT
NODE1_URL=http://127.0.0.1:$NODE1_PORT
NODE2_URL=http://127.0.0.1:$NODE2_PORT
NODE1_PID=${node_pids[0]}
NODE2_PID=${node_pids[1]}
ENV

cat <<INFO

Datashop logs cluster:  $URL/   (certificate of a CA made for this run: $CLUSTER_DIR/ca.crt)

  nginx (TLS, HTTP/2) → gateway-1 http://127.0.0.1:$NODE1_PORT, gateway-2 http://127.0.0.1:$NODE2_PORT
  → redis-server 127.0.0.1:$REDIS_PORT
$publisher_note
  stats of a node:  curl -H 'Authorization: Bearer admin-dev-token' http://127.0.0.1:$NODE1_PORT/admin/logs/stats
  follow:           SSL_CERT_FILE=$CLUSTER_DIR/ca.crt logs-sse --gateway $URL tail logs:etl:ws-demo   (cargo build -p logs-sse-cli --features tls)
  logs and config:  $CLUSTER_DIR

cluster ready
INFO
# A gateway node may die (or be killed to try it): the proxy sends its
# clients to the other one. Without Redis, nginx or the publisher there is
# no cluster, so the script stops.
wait -n "${watched[@]}" || true
echo "redis-server, nginx or the publisher exited; stopping" >&2
