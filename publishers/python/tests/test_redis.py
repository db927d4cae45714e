"""The SDK against a gateway on the Redis backend while Redis goes away.

Redis is stopped for 10 s under steady publishing: the gateway answers 503,
the SDK keeps its queue and retries, and a stream that stays open receives
every log exactly once, in order, once Redis is back.
"""

from __future__ import annotations

import queue
import threading
import time
import urllib.error
import urllib.request

import pytest

from gateway import Gateway, SSEStream
from redis_server import RedisServer

OUTAGE_SECONDS = 10.0


@pytest.fixture
def redis():
    server = RedisServer().start()
    yield server
    server.close()


def _health_status(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_redis_outage_is_retried_and_the_stream_gets_everything_once(redis, workspace, make_publisher):
    gateway = Gateway(extra_args=["--redis-url", redis.url, "--redis-check-ms", "100",
                                  "--redis-timeout-ms", "500"]).start()
    try:
        stream = SSEStream(gateway.url, [f"logs:etl:{workspace}:wf1"])
        stream.wait_statuses(1)
        publisher = make_publisher(gateway.url, flush_interval=0.02,
                                   retry_backoff_min=0.05, retry_backoff_max=0.5)

        # 50 logs/s for 13 s: 1 s before the outage, 10 s of it, 2 s after.
        total = 650
        done = threading.Event()

        def produce() -> None:
            for seq in range(total):
                publisher.publish_workflow_log(workspace, "wf1", {"seq": seq})
                time.sleep(0.02)
            done.set()

        threading.Thread(target=produce, daemon=True).start()
        time.sleep(1.0)
        redis.stop()
        sent_when_stopped = publisher.stats().sent
        time.sleep(1.0)
        assert _health_status(gateway.url) == 503, "not ready while Redis is down"
        time.sleep(OUTAGE_SECONDS - 1.0)
        sent_during_outage = publisher.stats().sent - sent_when_stopped
        redis.start()
        assert done.wait(20)
        assert publisher.flush(timeout=20)
        stats = publisher.stats()

        # Every event the stream gave, not only logs: a `gap` would fail here.
        seen, others = [], []
        deadline = time.monotonic() + 20
        while len(seen) < total:
            try:
                event, data = stream.next_event(max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"got {len(seen)} of {total} logs; other events: {others}") from None
            if event == "log":
                seen.append(data)
            elif event not in ("hello", "status", "ping"):
                others.append((event, data))
        print(f"\nredis down {OUTAGE_SECONDS:.0f} s: {sent_when_stopped} sent before, "
              f"{sent_during_outage} during, {stats.retries} retries, {stats.requests} requests, "
              f"dropped {stats.dropped}")
        assert others == [], "no gap, no close: the stream stayed open and resynced"
        assert stats.retries >= 1, "the gateway refused while Redis was down"
        # A request in flight when Redis died may still have been answered.
        assert sent_during_outage <= 50, f"{sent_during_outage} logs acknowledged while Redis was down"
        assert (stats.sent, stats.dropped, stats.failed) == (total, 0, 0)
        assert [log["logData"]["seq"] for log in seen] == list(range(total))
        # Nothing more: no repeated log after the last one.
        time.sleep(0.3)
        extra = []
        while True:
            try:
                event, data = stream.next_event(0.01)
            except queue.Empty:
                break
            if event not in ("status", "ping"):
                extra.append((event, data))
        assert extra == [], "no repeated log"
        stream.close()
    finally:
        gateway.stop()
