#!/usr/bin/env bash
# Tests of the deployment files (the `deploy` suite of scripts/test.sh):
#   1. the alert rules pass `promtool check rules` (Debian's prometheus
#      package, installed when missing),
#   2. the files agree: every LOGS_SSE_* name in deploy/ and
#      scripts/cluster-demo.sh is a setting the gateway reads
#      (gateway/src/config.rs), the Kubernetes ConfigMap carries
#      deploy/gateway.env's keys and values, compose.yaml and the systemd
#      unit read the same files, and the proxy's read timeout is above the
#      heartbeat,
#   3. the nginx configuration passes `nginx -t` as rendered for a local run,
#      and the gateway image's HEALTHCHECK probe works against a real node,
#   4. proxy-test/cluster.test.mjs: scripts/cluster-demo.sh (redis-server,
#      two nodes, nginx with TLS and HTTP/2) with Chromium through the proxy.
# Sums up as "deploy: N passed, N failed" for the checks of 1–3; node's
# test runner reports 4 as "# pass N".
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

passed=0 failed=0
check() { # description, command...
  local what="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then
    passed=$((passed + 1)); note "ok: $what"
  else
    failed=$((failed + 1)); note "FAILED: $what"; printf '%s\n' "$out" | sed 's/^/      /'
  fi
}

section "installing what is missing"
ensure_promtool
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml
ensure_nginx
ensure_redis
ensure_chromium
ensure_node
ensure_rust

section "alert rules"
check "promtool check rules" promtool check rules "$HERE/prometheus/logs-sse.rules.yaml"

section "the files agree"
known_settings() {
  grep -oE 'env = "LOGS_SSE_[A-Z0-9_]+"' "$ROOT/gateway/src/config.rs" | grep -oE 'LOGS_SSE_[A-Z0-9_]+'
  echo LOGS_SSE_LOG # the log filter, read by main.rs
}
settings_are_real() {
  local known unknown
  known="$(known_settings | sort -u)"
  unknown="$(grep -rhoE 'LOGS_SSE_[A-Z0-9_]+' "$HERE" "$ROOT/scripts/cluster-demo.sh" --exclude=test.sh --exclude='*.mjs' |
    sort -u | comm -23 - <(printf '%s\n' "$known"))"
  [ -z "$unknown" ] || { echo "not gateway settings: $unknown"; return 1; }
}
configmap_matches_env() {
  diff <(grep -E '^LOGS_SSE_' "$HERE/gateway.env" | sort) \
    <(grep -E '^  LOGS_SSE_' "$HERE/k8s/configmap.yaml" | grep -v LOGS_SSE_REDIS_URL |
      sed -E 's/^  ([A-Z0-9_]+): "(.*)"$/\1=\2/' | sort)
}
everyone_reads_the_env_files() {
  grep -q 'env_file: \[gateway.env, demo.env\]' "$HERE/compose.yaml" || { echo "compose.yaml: env_file"; return 1; }
  grep -q 'source "$ROOT/deploy/gateway.env"' "$ROOT/scripts/cluster-demo.sh" || { echo "cluster-demo.sh"; return 1; }
  grep -q 'source "$ROOT/deploy/demo.env"' "$ROOT/scripts/cluster-demo.sh" || { echo "cluster-demo.sh"; return 1; }
  grep -q '^EnvironmentFile=/etc/logs-sse/gateway.env' "$HERE/systemd/logs-sse-gateway.service" || { echo "systemd unit"; return 1; }
  grep -q 'configMapRef: { name: logs-sse-gateway }' "$HERE/k8s/deployment.yaml" || { echo "deployment"; return 1; }
}
timeouts_above_heartbeat() {
  local beat timeout
  beat="$(grep -E '^LOGS_SSE_HEARTBEAT_SECS=' "$HERE/gateway.env" | cut -d= -f2)"
  timeout="$(awk '/location = \/api\/logs\/stream/,/}/' "$HERE/nginx/logs-sse.conf" | grep -oE 'proxy_read_timeout [0-9]+s' | grep -oE '[0-9]+')"
  [ -n "$timeout" ] && [ "$timeout" -gt "$((beat * 2))" ] || { echo "proxy_read_timeout ${timeout:-?}s is not above twice the heartbeat ${beat}s"; return 1; }
  grep -q 'proxy_buffering off' "$HERE/nginx/logs-sse.conf" || { echo "SSE must not be buffered"; return 1; }
  grep -q 'proxy-read-timeout: "60"' "$HERE/k8s/service.yaml" || { echo "ingress read timeout differs from nginx"; return 1; }
}
manifests_are_valid() {
  python3 - "$HERE" <<'PY'
import glob, os, sys, yaml
here = sys.argv[1]
kinds = {}
for path in sorted(glob.glob(os.path.join(here, "k8s", "*.yaml"))):
    for doc in yaml.safe_load_all(open(path)):
        assert doc["apiVersion"] and doc["metadata"]["name"], path
        kinds[doc["kind"]] = doc
need = {"ConfigMap", "Secret", "Deployment", "Service", "Ingress", "PodDisruptionBudget"}
assert need <= set(kinds), f"missing kinds: {need - set(kinds)}"
pod = kinds["Deployment"]["spec"]["template"]["spec"]
container = pod["containers"][0]
assert container["readinessProbe"]["httpGet"]["path"] == "/health"
assert pod["securityContext"]["runAsNonRoot"] is True
assert {"configMapRef", "secretRef"} <= {k for e in container["envFrom"] for k in e}
compose = yaml.safe_load(open(os.path.join(here, "compose.yaml")))
assert {"redis", "gateway-1", "gateway-2", "nginx", "publisher"} <= set(compose["services"])
for node in ("gateway-1", "gateway-2"):
    service = compose["services"][node]
    assert service["env_file"] == ["gateway.env", "demo.env"], node
    assert service["environment"]["LOGS_SSE_REDIS_URL"].startswith("redis://redis:"), node
yaml.safe_load(open(os.path.join(here, "prometheus", "logs-sse.rules.yaml")))
PY
}
dashboard_is_json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"]' "$HERE/grafana/logs-sse-gateway.json"; }
check "every LOGS_SSE_* name in deploy/ and cluster-demo.sh is a gateway setting" settings_are_real
check "the Kubernetes ConfigMap carries deploy/gateway.env" configmap_matches_env
check "compose, cluster-demo.sh, systemd and Kubernetes read the same settings" everyone_reads_the_env_files
check "proxy timeouts are above the heartbeat; SSE unbuffered" timeouts_above_heartbeat
check "the Grafana dashboard is JSON with panels" dashboard_is_json
check "the Kubernetes manifests and compose.yaml parse and hold what they must" manifests_are_valid

section "nginx -t"
nginx_config_test() {
  local dir; dir="$(mktemp -d)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$dir/k" -out "$dir/c" 2>/dev/null
  bash "$HERE/nginx/render.sh" "$dir/site.conf" 18443 "$dir/c" "$dir/k" "$dir" 127.0.0.1:1 127.0.0.1:2
  printf 'pid %s/pid;\nevents {}\nhttp { include %s/site.conf; }\n' "$dir" "$dir" >"$dir/nginx.conf"
  nginx -t -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
  local rc=$?
  rm -rf "$dir"
  return $rc
}
check "the rendered deploy/nginx/logs-sse.conf passes nginx -t" nginx_config_test

section "building the gateway and the demo app"
cargo build --locked -p logs-sse-gateway || exit 1
cargo build --locked -p logs-sse-cli --features tls || exit 1
bash "$ROOT/examples/build.sh" || exit 1

section "the image's HEALTHCHECK against a real node"
# The probe of deploy/docker/gateway.Dockerfile, run as the container
# would, against a node that is up, and with none listening.
healthcheck_probe() {
  local port="$1"
  python3 - "$HERE/docker/gateway.Dockerfile" "$port" <<'PY'
import json, re, subprocess, sys
text = open(sys.argv[1]).read()
cmd = json.loads(re.search(r'^\s*CMD (\[.*\])$', text, re.M).group(1))
cmd = [c.replace('127.0.0.1/3002', '127.0.0.1/' + sys.argv[2]) for c in cmd]
sys.exit(subprocess.run(cmd).returncode)
PY
}
healthcheck_works() {
  local port pid rc=0
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "$ROOT/target/debug/logs-sse-gateway" --listen "127.0.0.1:$port" --allow-anonymous >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  healthcheck_probe "$port" || { echo "the probe failed against a healthy node"; rc=1; }
  kill "$pid"; wait "$pid" 2>/dev/null
  healthcheck_probe "$port" && { echo "the probe passed with no node"; rc=1; }
  return $rc
}
check "the Dockerfile's HEALTHCHECK passes on a running node and fails without one" healthcheck_works
echo "deploy: $passed passed, $failed failed"

section "the cluster behind nginx, in Chromium (proxy-test/cluster.test.mjs)"
# The run's own CA is not known before the cluster starts: the test's fetch
# calls go to the proxy with certificate checks off, the browser context
# ignores certificate errors; the HTTP/2 probe and logs-sse trust the CA.
NODE_TLS_REJECT_UNAUTHORIZED=0 NODE_NO_WARNINGS=1 node --test --test-reporter=tap --test-concurrency=1 "$HERE/proxy-test/cluster.test.mjs"
rc=$?
[ "$failed" -eq 0 ] && [ $rc -eq 0 ]
