#!/usr/bin/env bash
# Measures the gateway and prints one table: memory per idle stream at 10,000
# and at the most streams the open-file limit allows (up to 50,000), the
# fan-out scenario, a firehose and batch ingest, then the browser frame
# figures (examples/bench-browser.mjs). Each figure is the median of
# BENCH_RUNS runs (default 3) with the lowest and highest. The gateway is
# pinned to core 0 and the load generator to core 1 (`taskset`); for the
# latency scenario (fan-out, which leaves both cores mostly idle) both run at
# real-time priority (`chrt -f 1`) when allowed, so other processes on the
# machine (builds) cannot hold them off their cores; BENCH_RT=0 turns that
# off. The saturating scenarios stay at normal priority (they would starve
# everything else) and report CPU-normalised figures.
#
#   scripts/bench.sh                 full run (about 5 minutes)
#   BENCH_QUICK=1 scripts/bench.sh   smoke run: one run each, small sizes (about 1 minute)
#   GATEWAY_ARGS='--flag value' scripts/bench.sh    extra gateway flags
#   BENCH_BACKENDS=memory scripts/bench.sh           one column only (default: memory and redis)
#
# The redis column runs every scenario again against a redis-server the
# script starts (pinned with the gateway, no persistence, a key prefix per
# run) and stops; it is left out when redis-server is not installed.
# The client size rows are printed when npm-package/dist is built, the browser
# rows (examples/bench-browser.mjs) and the tabs rows (examples/bench-tabs.mjs:
# streams, heap per tab and of the SharedWorker, the leader handover) when the
# demo app is built (examples/build.sh).
#
# Not part of scripts/test.sh (too long); the rust suite compiles the bench.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

QUICK="${BENCH_QUICK:-0}"
if [ "$QUICK" = 1 ]; then RUNS="${BENCH_RUNS:-1}"; else RUNS="${BENCH_RUNS:-3}"; fi

echo "building the release gateway and bench..." >&2
cargo build --release -q -p logs-sse-gateway --bin logs-sse-gateway --example bench
BENCH="$ROOT/target/release/examples/bench"

# Every stream is a descriptor in the gateway and one in the bench.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT="$(ulimit -n)"
BIG=50000
[ "$FD_LIMIT" != unlimited ] && [ "$FD_LIMIT" -lt $((BIG + 500)) ] && BIG=$((FD_LIMIT - 500))

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  export GATEWAY_CPU=0
  LOAD=(taskset -c 1)
  RT_LOAD=("${LOAD[@]}")
  PINNING="gateway on core 0, load generator on core 1"
  if [ "${BENCH_RT:-1}" = 1 ] && chrt -f 1 true 2>/dev/null; then
    RT_LOAD=(chrt -f 1 taskset -c 1)
    PINNING="$PINNING; fan-out at SCHED_FIFO priority 1"
  fi
else
  LOAD=(); RT_LOAD=()
  PINNING="not pinned (fewer than 2 cores or no taskset)"
fi

if [ "$QUICK" = 1 ]; then
  IDLE_SMALL=(idle 2000 200); IDLE_BIG=(idle 4000 400)
  FANOUT=(fanout 2000 100 2000 3); FIREHOSE=(firehose 20 2); INGEST_SECS=2
else
  IDLE_SMALL=(idle 10000 1000); IDLE_BIG=(idle "$BIG" 5000)
  FANOUT=(fanout 2000 100 2000 10); FIREHOSE=(firehose 20 5); INGEST_SECS=5
fi

BACKENDS="${BENCH_BACKENDS:-memory redis}"
if [[ " $BACKENDS " == *" redis "* ]] && ! command -v redis-server >/dev/null; then
  echo "redis-server not installed: the redis column is left out" >&2
  BACKENDS="${BACKENDS//redis/}"
fi

RESULTS="$(mktemp)"
REDIS_DIR=""
REDIS_PID=""
cleanup() {
  rm -f "$RESULTS"
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
  [ -n "$REDIS_DIR" ] && rm -rf "$REDIS_DIR"
  return 0
}
trap cleanup EXIT

# A redis-server on a free loopback port, on the gateway's core.
start_redis() {
  REDIS_DIR="$(mktemp -d)"
  REDIS_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  local pin=()
  [ -n "${GATEWAY_CPU:-}" ] && pin=(taskset -c "$GATEWAY_CPU")
  "${pin[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
    --save '' --appendonly no --logfile redis.log &
  REDIS_PID=$!
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  echo "redis-server did not start; see $REDIS_DIR/redis.log" >&2
  exit 1
}

run() {
  local backend="$1" label="$2"; shift 2
  local load=("${LOAD[@]}")
  [ "$label" = fanout ] && load=("${RT_LOAD[@]}")
  for i in $(seq "$RUNS"); do
    local args="${GATEWAY_ARGS:-}"
    if [ "$backend" = redis ]; then
      # A prefix per run: no run reads another's history.
      args="$args --redis-url redis://127.0.0.1:$REDIS_PORT/ --redis-key-prefix bench-$label-$i"
    fi
    echo "  $backend $label: run $i of $RUNS ($*), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    GATEWAY_ARGS="$args" "${load[@]}" "$BENCH" "$@" | grep '^RESULT' \
      | sed "s/^RESULT [a-z]*/$backend:$label/" >>"$RESULTS"
  done
}

for backend in $BACKENDS; do
  [ "$backend" = redis ] && start_redis
  run "$backend" idle_small "${IDLE_SMALL[@]}"
  run "$backend" idle_big "${IDLE_BIG[@]}"
  run "$backend" fanout "${FANOUT[@]}"
  run "$backend" firehose "${FIREHOSE[@]}"
  run "$backend" ingest0 ingest 0 "$INGEST_SECS"
  run "$backend" ingest100 ingest 100 "$INGEST_SECS"
done

SIZES=""
if [ -f npm-package/dist/core.js ] && [ -d npm-package/node_modules ]; then
  echo "  client size: npm-package/size.mjs" >&2
  SIZES="$(cd npm-package && node size.mjs 2>/dev/null | grep -E '^(core|react)' || true)"
fi

# The browser rows: examples/bench-browser.mjs (the demo app's side-by-side
# view in headless Chromium, three hooks, 1,000 logs/s for 10 s) against the
# release gateway, memory backend; it pins the gateway and the load generator
# to core 0 and Chromium to core 1 itself.
BROWSER=""
BROWSER_WHY=""
if [ ! -f examples/app/dist/index.html ]; then
  BROWSER_WHY="the demo app is not built (run examples/build.sh)"
elif [ ! -d examples/node_modules/playwright-core ]; then
  BROWSER_WHY="playwright-core is not installed (run examples/build.sh)"
elif [ ! -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]; then
  BROWSER_WHY="Chromium is not installed at ${CHROMIUM_BIN:-/usr/bin/chromium}"
elif ! command -v node >/dev/null; then
  BROWSER_WHY="node is not installed"
else
  echo "  browser: examples/bench-browser.mjs, $RUNS run(s), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  BROWSER_OUT="$(mktemp)"
  if ! (cd examples && GATEWAY_BIN="$ROOT/target/release/logs-sse-gateway" BENCH_RUNS="$RUNS" \
    node bench-browser.mjs) >"$BROWSER_OUT" 2>&1; then
    # Exit 1: a run lost or repeated a log (its rows are still printed); 2: could not start.
    BROWSER_WHY="examples/bench-browser.mjs failed: $(grep -v '^RESULT' "$BROWSER_OUT" | tail -n 2 | tr '\n' ' ')"
  fi
  BROWSER="$(grep -E '^(RESULT|bench-browser: gateway )' "$BROWSER_OUT" || true)"
  rm -f "$BROWSER_OUT"
fi

python3 - "$RESULTS" "$RUNS" "$PINNING" "$BACKENDS" "$SIZES" "$BROWSER" "$BROWSER_WHY" <<'PY'
import statistics, sys
path, runs, pinning, backends, sizes, browser, browser_why = sys.argv[1:8]
backends = backends.split()
rows = {}
for line in open(path):
    label, *pairs = line.split()
    rows.setdefault(label, []).append(dict(p.split("=", 1) for p in pairs))

def fig(label, key, fmt="{:,.1f}"):
    values = [float(r[key]) for r in rows.get(label, [])]
    if not values:
        return "not measured"
    med = fmt.format(statistics.median(values))
    if len(values) == 1:
        return med
    return f"{med} ({fmt.format(min(values))} – {fmt.format(max(values))})"

def first(label, key):
    for b in backends:
        if rows.get(f"{b}:{label}"):
            return rows[f"{b}:{label}"][0][key]
    return "?"

# (row label, scenario, key, format, unit); "a / b" rows join two keys.
spec = [
    (f"idle stream memory, {first('idle_small','streams')} streams on {first('idle_small','channels')} channels", "idle_small", "kib_per_stream", "{:.2f}", " KiB/stream"),
    (f"idle stream memory, {first('idle_big','streams')} streams on {first('idle_big','channels')} channels", "idle_big", "kib_per_stream", "{:.2f}", " KiB/stream"),
    (f"fan-out {first('fanout','streams')} streams / {first('fanout','channels')} channels: deliveries/s", "fanout", "deliveries_per_s", "{:,.0f}", ""),
    ("fan-out: delivery latency p50", "fanout", "p50_ms", "{:.2f}", " ms"),
    ("fan-out: delivery latency p99", "fanout", "p99_ms", "{:.2f}", " ms"),
    ("fan-out: gateway CPU per delivery", "fanout", "cpu_us_per_delivery", "{:.2f}", " µs"),
    ("fan-out: load generator CPU (% of its core)", "fanout", "bench_cpu_pct", "{:.0f}", " %"),
    (f"firehose {first('firehose','streams')} streams on one channel: logs/s published", "firehose", "logs_per_s", "{:,.0f}", ""),
    ("firehose: deliveries/s", "firehose", "deliveries_per_s", "{:,.0f}", ""),
    ("firehose: latency p50 (batches of 100, saturated)", "firehose", "p50_ms", "{:.1f}", " ms"),
    ("firehose: latency p99", "firehose", "p99_ms", "{:.1f}", " ms"),
    ("ingest, batches of 500 logs of ~200 B, 0 subscribers: logs/s", "ingest0", "logs_per_s", "{:,.0f}", ""),
    ("ingest, 0 subscribers: logs per gateway CPU second", "ingest0", "logs_per_cpu_s", "{:,.0f}", ""),
    ("ingest, 100 subscribers (one of 100 channels each): logs/s", "ingest100", "logs_per_s", "{:,.0f}", ""),
    ("ingest, 100 subscribers: logs per gateway CPU second", "ingest100", "logs_per_cpu_s", "{:,.0f}", ""),
]
table = [[name] + [fig(f"{b}:{label}", key, fmt) + unit for b in backends] for name, label, key, fmt, unit in spec]
header = ["figure"] + backends
widths = [max(len(r[i]) for r in table + [header]) for i in range(len(header))]
print(f"\nlogs-sse gateway, median of {runs} run(s) (lowest – highest); {pinning}\n")
for r in [header] + table:
    print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
cut = sum(int(r.get("cut", 0)) for rs in rows.values() for r in rs)
print(f"\nstreams cut as slow consumers during the runs: {cut}")
if sizes.strip():
    print("\nclient size as a Vite production build ships it (bytes; npm-package/size.mjs):")
    print("app     JS min   JS gzip      wasm wasm gzip total gzip")
    print(sizes)
else:
    print("client size: not measured here (build npm-package first: npm-package/build.sh, then node npm-package/size.mjs)")
browser_runs = [dict(p.split("=", 1) for p in line.split()[2:]) for line in browser.splitlines() if line.startswith("RESULT browser ")]
if browser_runs:
    def bfig(key, fmt="{:.1f}", unit=" ms"):
        values = [float(r[key]) for r in browser_runs]
        med = fmt.format(statistics.median(values)) + unit
        return med if len(values) == 1 else f"{med} ({fmt.format(min(values))} – {fmt.format(max(values))})"
    where = next((l.split("; ", 1)[1] for l in browser.splitlines() if l.startswith("bench-browser: gateway ")), "")
    print(f"\nbrowser: 1,000 logs/s for 10 s into three useLogsSSE hooks on one page (examples/bench-browser.mjs),"
          f" median of {len(browser_runs)} run(s); headless Chromium, rAF at 60 Hz; {where}\n")
    brows = [
        ("browser: long tasks over 50 ms", bfig("longtasks_over_50", "{:.0f}", "")),
        ("browser: longest long task", bfig("longest_ms")),
        ("browser: frame interval p50", bfig("frame_p50_ms")),
        ("browser: frame interval p99", bfig("frame_p99_ms")),
        ("browser: frame interval max", bfig("frame_max_ms")),
        ("browser: logs received / published", ", ".join(f"{r['received']}/{r['published']}" for r in browser_runs)),
    ]
    w = max(len(n) for n, _ in brows)
    for n, v in brows:
        print(f"{n.ljust(w)}  {v}")
    if browser_why:
        print(f"browser: {browser_why}")
else:
    print(f"browser frame figures: not measured: {browser_why or 'examples/bench-browser.mjs printed no result'}")
PY

# The tabs rows: examples/bench-tabs.mjs (three tabs of one browser context on
# the demo's three log pages at 500 logs/s, per sharing mode), when the
# browser rows could run.
if [ -z "$BROWSER_WHY" ]; then
  echo "  tabs: examples/bench-tabs.mjs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  echo
  echo "tabs: three tabs of one browser at 500 logs/s, per sharing mode (examples/bench-tabs.mjs)"
  (cd examples && GATEWAY_BIN="$ROOT/target/release/logs-sse-gateway" node bench-tabs.mjs 2>&1) |
    grep -E '^(RESULT|PROBLEM)' | sed 's/^RESULT tabs /  /' || echo "  tabs: examples/bench-tabs.mjs printed no result"
fi
