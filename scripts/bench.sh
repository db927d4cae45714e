#!/usr/bin/env bash
# Measures the gateway and prints one table: memory per idle stream at 10,000
# and at the most streams the open-file limit allows (up to 50,000), the
# fan-out scenario, a firehose and batch ingest. Each figure is the median of
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
#   GATEWAY_ARGS='--flag value' scripts/bench.sh    extra gateway flags (e.g. another backend)
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

RESULTS="$(mktemp)"
trap 'rm -f "$RESULTS"' EXIT
run() {
  local label="$1"; shift
  local load=("${LOAD[@]}")
  [ "$label" = fanout ] && load=("${RT_LOAD[@]}")
  for i in $(seq "$RUNS"); do
    echo "  $label: run $i of $RUNS ($*), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    "${load[@]}" "$BENCH" "$@" | grep '^RESULT' | sed "s/^RESULT [a-z]*/$label/" >>"$RESULTS"
  done
}

run idle_small "${IDLE_SMALL[@]}"
run idle_big "${IDLE_BIG[@]}"
run fanout "${FANOUT[@]}"
run firehose "${FIREHOSE[@]}"
run ingest0 ingest 0 "$INGEST_SECS"
run ingest100 ingest 100 "$INGEST_SECS"

python3 - "$RESULTS" "$RUNS" "$PINNING" <<'PY'
import statistics, sys
path, runs, pinning = sys.argv[1], sys.argv[2], sys.argv[3]
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
    return rows[label][0][key] if rows.get(label) else "?"

print(f"\nlogs-sse gateway, median of {runs} run(s) (lowest – highest); {pinning}\n")
table = [
    (f"idle stream memory, {first('idle_small','streams')} streams on {first('idle_small','channels')} channels", fig("idle_small", "kib_per_stream", "{:.2f}") + " KiB/stream"),
    (f"idle stream memory, {first('idle_big','streams')} streams on {first('idle_big','channels')} channels", fig("idle_big", "kib_per_stream", "{:.2f}") + " KiB/stream"),
    (f"fan-out {first('fanout','streams')} streams / {first('fanout','channels')} channels: deliveries/s", fig("fanout", "deliveries_per_s", "{:,.0f}")),
    ("fan-out: delivery latency p50", fig("fanout", "p50_ms", "{:.2f}") + " ms"),
    ("fan-out: delivery latency p99", fig("fanout", "p99_ms", "{:.2f}") + " ms"),
    ("fan-out: gateway CPU per delivery", fig("fanout", "cpu_us_per_delivery", "{:.2f}") + " µs"),
    ("fan-out: load generator CPU (% of its core)", fig("fanout", "bench_cpu_pct", "{:.0f}") + " %"),
    (f"firehose {first('firehose','streams')} streams on one channel: logs/s published", fig("firehose", "logs_per_s", "{:,.0f}")),
    ("firehose: deliveries/s", fig("firehose", "deliveries_per_s", "{:,.0f}")),
    ("firehose: latency p50 / p99 (batches of 100, saturated)", fig("firehose", "p50_ms", "{:.1f}") + " / " + fig("firehose", "p99_ms", "{:.1f}") + " ms"),
    ("ingest, batches of 500 logs of ~200 B, 0 subscribers: logs/s", fig("ingest0", "logs_per_s", "{:,.0f}")),
    ("ingest, 0 subscribers: logs per gateway CPU second", fig("ingest0", "logs_per_cpu_s", "{:,.0f}")),
    ("ingest, 100 subscribers (one of 100 channels each): logs/s", fig("ingest100", "logs_per_s", "{:,.0f}")),
    ("ingest, 100 subscribers: logs per gateway CPU second", fig("ingest100", "logs_per_cpu_s", "{:,.0f}")),
]
cut = sum(int(r.get("cut", 0)) for rs in rows.values() for r in rs)
width = max(len(k) for k, _ in table)
for k, v in table:
    print(f"{k:<{width}}  {v}")
print(f"\nstreams cut as slow consumers during the runs: {cut}")
print("client size (gzipped wasm + JS of each entry point): not measured here; run client-wasm/build.sh and npm-package/build.sh")
print("browser frame figures: not measured here; see npm-package/test.sh (render-rate test)")
PY
