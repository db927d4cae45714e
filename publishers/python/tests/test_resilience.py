"""A slow, stopped or restarted gateway never blocks the caller or loses queued logs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from gateway import TOKENS, Gateway

SRC = str(Path(__file__).resolve().parents[1] / "src")

# Generous per-call bound: publish_log is microseconds of work; anything near
# this means the caller waited for the network. Checked at the 99th
# percentile: on a loaded machine the scheduler alone can pause any single
# call for longer, whatever the SDK does.
MAX_CALL_SECONDS = 0.050


def _measure_calls(publisher, workspace, count):
    durations = []
    for seq in range(count):
        started = time.perf_counter()
        publisher.publish_log(workspace, "wf1", {"seq": seq, "message": "x" * 100})
        durations.append(time.perf_counter() - started)
    return durations


def _report(label, durations):
    """Prints the figures; returns the 99th percentile."""
    ordered = sorted(durations)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"\n{label}: {len(durations)} calls, median {statistics.median(durations) * 1e6:.1f} us, "
          f"p99 {p99 * 1e6:.1f} us, max {max(durations) * 1e3:.2f} ms")
    return p99


def test_caller_is_never_blocked_by_a_live_or_dead_gateway(own_gateway, workspace, make_publisher):
    live = make_publisher(own_gateway.url, max_queue_size=20_000)
    durations = _measure_calls(live, workspace, 20_000)
    assert _report("publish_log, gateway up", durations) < MAX_CALL_SECONDS
    assert live.flush(timeout=20)
    assert live.stats().sent == 20_000

    own_gateway.stop()
    dead = make_publisher(own_gateway.url, max_queue_size=5000,
                          retry_backoff_min=0.01, retry_backoff_max=0.05)
    durations = _measure_calls(dead, workspace, 20_000)
    assert _report("publish_log, gateway down", durations) < MAX_CALL_SECONDS
    stats = dead.stats()
    assert stats.sent == 0
    assert stats.dropped >= 20_000 - 5000 - 500  # queue + at most one batch in flight
    # close() is bounded by its timeout even though nothing can be delivered.
    started = time.monotonic()
    assert dead.close(timeout=0.5) is False
    elapsed = time.monotonic() - started
    print(f"close(timeout=0.5) with the gateway down returned after {elapsed:.3f} s")
    assert elapsed < 5
    stats = dead.stats()
    assert stats.dropped + stats.in_flight + stats.queue_size == 20_000


def test_gateway_restart_mid_run_loses_nothing_that_fits_the_queue(
    own_gateway, workspace, make_publisher, open_stream
):
    channel = f"logs:etl:{workspace}:wf1"
    before = open_stream(own_gateway.url, [channel])
    before.wait_statuses(1)
    publisher = make_publisher(own_gateway.url, retry_backoff_min=0.05, retry_backoff_max=0.3,
                               flush_interval=0.02)

    # Publish steadily from another thread while the gateway stops and restarts.
    total = 600
    done = threading.Event()

    def produce():
        for seq in range(total):
            publisher.publish_log(workspace, "wf1", {"seq": seq})
            time.sleep(0.002)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.3)
    own_gateway.stop()
    seen_before = before.logs_until_end()
    time.sleep(0.5)  # logs pile up in the queue; the worker keeps retrying
    # Everything the stopped gateway acknowledged (202) precedes, in publish
    # order, everything still queued in the SDK.
    accepted_by_first = publisher.stats().sent
    own_gateway.restart()
    # The restarted gateway has a fresh history: replay all of it so logs the
    # worker delivered before this stream connected are seen too.
    after = open_stream(own_gateway.url, [channel], since=f"{channel}@earliest")
    producer.join()
    assert done.is_set()
    assert publisher.flush(timeout=20)
    stats = publisher.stats()
    print(f"\nrestart: {len(seen_before)} logs streamed before the stop, {accepted_by_first} "
          f"acknowledged by the stopped gateway ({accepted_by_first - len(seen_before)} acknowledged "
          f"during its shutdown but never streamed), {stats.retries} retries, "
          f"{stats.requests} requests, dropped {stats.dropped}")

    assert [log["logData"]["seq"] for log in seen_before] == list(range(len(seen_before)))
    assert len(seen_before) <= accepted_by_first
    # Nothing the SDK still held is lost or repeated: the restarted gateway
    # gets exactly the rest, in order.
    seen_after = after.logs(total - accepted_by_first)
    assert [log["logData"]["seq"] for log in seen_after] == list(range(accepted_by_first, total))
    assert stats.retries >= 1
    assert (stats.sent, stats.dropped, stats.failed) == (total, 0, 0)


def test_full_queue_drops_oldest_and_counts_it(own_gateway, workspace, make_publisher, open_stream):
    channel = f"logs:etl:{workspace}:wf1"
    own_gateway.stop()
    publisher = make_publisher(own_gateway.url, max_queue_size=100, max_batch_size=50,
                               flush_interval=0, retry_backoff_min=0.05, retry_backoff_max=0.2)
    for seq in range(250):
        publisher.publish_log(workspace, "wf1", {"seq": seq})
    assert publisher.flush(timeout=0.3) is False  # nothing can be delivered yet

    own_gateway.restart()
    stream = open_stream(own_gateway.url, [channel], since=f"{channel}@earliest")
    assert publisher.flush(timeout=10)
    stats = publisher.stats()
    print(f"\nqueue of 100, 250 published while down: sent {stats.sent}, dropped {stats.dropped}")
    assert (stats.queued, stats.sent, stats.dropped, stats.failed) == (250, 100, 150, 0)
    # Drop-oldest: exactly the newest 100 survive, in order.
    assert [log["logData"]["seq"] for log in stream.logs(100)] == list(range(150, 250))


def test_close_delivers_what_is_queued(gateway, workspace, make_publisher, open_stream):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}"])
    stream.wait_statuses(1)
    # A long flush interval: only close() makes these go out now.
    publisher = make_publisher(gateway.url, flush_interval=30)
    for seq in range(20):
        publisher.publish_log(workspace, "wf1", {"seq": seq})
    assert publisher.stats().sent == 0
    assert publisher.close(timeout=5) is True
    assert [log["logData"]["seq"] for log in stream.logs(20)] == list(range(20))
    assert publisher.publish_log(workspace, "wf1", {"seq": 20}) is False
    assert publisher.stats().dropped == 1


def test_interpreter_exit_flushes_the_queue(gateway, workspace, open_stream):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}"])
    stream.wait_statuses(1)
    script = textwrap.dedent(f"""
        from logs_sse_publisher import LogsSSEPublisher
        p = LogsSSEPublisher(gateway_url={gateway.url!r}, service_token={TOKENS['etl']!r},
                             service_name="etl", flush_interval=30)
        for seq in range(50):
            p.publish_log({workspace!r}, "wf1", {{"seq": seq}})
        # no flush() or close(): the atexit hook must deliver
    """)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert [log["logData"]["seq"] for log in stream.logs(50)] == list(range(50))


def test_body_too_large_makes_batches_smaller_instead_of_failing(workspace, make_publisher, open_stream):
    gateway = Gateway(extra_args=["--max-body-bytes", "16384"]).start()
    try:
        stream = open_stream(gateway.url, [f"logs:etl:{workspace}"])
        stream.wait_statuses(1)
        publisher = make_publisher(gateway.url, flush_interval=1)
        for seq in range(200):
            publisher.publish_log(workspace, "wf1", {"seq": seq, "pad": "p" * 400})
        assert publisher.flush(timeout=10)
        stats = publisher.stats()
        print(f"\n200 logs of ~480 bytes through a 16 KiB body limit: {stats.requests} requests")
        assert (stats.sent, stats.failed, stats.dropped) == (200, 0, 0)
        assert stats.requests > 200 * 480 // 16384  # it really had to split
        assert [log["logData"]["seq"] for log in stream.logs(200)] == list(range(200))
    finally:
        gateway.stop()
