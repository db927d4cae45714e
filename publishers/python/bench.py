#!/usr/bin/env python3
"""Publish throughput of the Python SDK against a local gateway (not a test).

By default it starts the gateway binary (``GATEWAY_BIN``, or
``target/debug/logs-sse-gateway`` of this repo) on a free port; pass
``--gateway-url`` and ``--token`` to measure a gateway that is already running.
Only loopback traffic, bounded in count.

Prints, for N logs:
  * call rate       — publish_log() calls per second (the caller's cost),
  * delivered rate  — logs accepted by the gateway per second, first call to
                      flush() returning (the SDK's end-to-end throughput),
  * requests        — HTTP requests used (batching),
  * per-call time   — median / p99 / max of publish_log().
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))

from logs_sse_publisher import LogsSSEPublisher  # noqa: E402

TOKEN = "bench-etl-token"
ADMIN = "bench-admin-token"


def start_gateway(binary: str) -> "tuple[subprocess.Popen, str]":
    process = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--service-token", f"etl={TOKEN}",
         "--admin-token", ADMIN, "--allow-anonymous", "--publish-rate", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return process, match.group(1)
    raise SystemExit("gateway exited before listening")


def logs_published(url: str) -> int:
    request = urllib.request.Request(f"{url}/admin/logs/stats",
                                     headers={"Authorization": f"Bearer {ADMIN}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(json.loads(response.read())["logsPublished"])
    except Exception:  # noqa: BLE001 - a foreign gateway may not share our admin token
        return -1


def run(url: str, token: str, count: int, batch: int, payload: int, ids: bool = True) -> None:
    publisher = LogsSSEPublisher(url, token, "etl", max_queue_size=count, max_batch_size=batch,
                                 add_id_and_timestamp=ids)
    message = "x" * payload
    before = logs_published(url)
    durations = []
    started = time.perf_counter()
    for seq in range(count):
        t0 = time.perf_counter()
        publisher.publish_log("bench-ws", f"wf{seq % 8}", {"seq": seq, "level": "info", "message": message})
        durations.append(time.perf_counter() - t0)
    publishing = time.perf_counter() - started
    if not publisher.flush(timeout=120):
        print("warning: flush timed out", file=sys.stderr)
    total = time.perf_counter() - started
    stats = publisher.stats()
    publisher.close()
    after = logs_published(url)
    durations.sort()
    print(f"python publisher, {count} logs of ~{payload + 40} bytes, batches of {batch}:")
    print(f"  call rate:      {count / publishing:,.0f} publish_log() calls/s")
    print(f"  delivered rate: {stats.sent / total:,.0f} logs/s accepted by the gateway "
          f"({stats.sent} sent in {total:.2f} s)")
    print(f"  requests:       {stats.requests} ({stats.sent / max(1, stats.requests):.0f} logs/request), "
          f"retries {stats.retries}, dropped {stats.dropped}, failed {stats.failed}")
    print(f"  per call:       median {statistics.median(durations) * 1e6:.1f} us, "
          f"p99 {durations[int(len(durations) * 0.99)] * 1e6:.1f} us, max {durations[-1] * 1e3:.2f} ms")
    if before >= 0 and after >= 0:
        print(f"  gateway logsPublished grew by {after - before}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway-url", help="measure this running gateway instead of starting one")
    parser.add_argument("--token", default=TOKEN, help="etl service token of --gateway-url")
    parser.add_argument("--count", type=int, default=200_000, help="logs to publish (default 200000)")
    parser.add_argument("--batch", type=int, default=500, help="max_batch_size (default 500)")
    parser.add_argument("--payload", type=int, default=100, help="message length in bytes (default 100)")
    parser.add_argument("--no-ids", action="store_true",
                        help="send log_data as given, without an id and a timestamp")
    args = parser.parse_args()
    if not 1 <= args.count <= 5_000_000:
        raise SystemExit("--count must be between 1 and 5000000")

    process = None
    url = args.gateway_url
    if url is None:
        binary = os.environ.get("GATEWAY_BIN", str(HERE.parents[1] / "target/debug/logs-sse-gateway"))
        process, url = start_gateway(binary)
    try:
        run(url, args.token, args.count, args.batch, args.payload, not args.no_ids)
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
