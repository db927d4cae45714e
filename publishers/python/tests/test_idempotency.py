"""Idempotent retries: every batch has its own ``Idempotency-Key``, a retry
re-sends the same bytes under the same key, and a publish whose answer was
lost is stored once.

The first test talks to a small recording HTTP server (it checks what goes on
the wire, and how an answer without ``duplicates`` is read); the others put a
TCP proxy that loses answers between the SDK and the real gateway, and read
what the gateway stored from a subscriber stream.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

import pytest

from gateway import Gateway, SSEStream
from proxy import CUT_AFTER_FORWARD, CUT_BEFORE_FORWARD, FORWARD, CuttingProxy
from redis_server import RedisServer

KEY = re.compile(r"^[0-9a-f]{32}$")
FAST_RETRY = dict(flush_interval=0.01, retry_backoff_min=0.01, retry_backoff_max=0.05)


def _batches_of(size: int) -> Dict[str, Any]:
    """Options under which the first ``size`` logs leave as one batch, whatever the scheduler does."""
    return dict(FAST_RETRY, max_batch_size=size, flush_interval=10)


class _Recorder(BaseHTTPRequestHandler):
    """Answers the first publish 503 (after the test queued more logs), then 202."""

    server: "_RecordingServer"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.requests.append((dict(self.headers), body))
            first = len(self.server.requests) == 1
        if first:
            self.server.first_arrived.set()
            # Hold the answer until newer logs are queued behind this batch.
            self.server.more_queued.wait(5)
            self._answer(503, {"error": {"code": "unavailable", "message": "try again"}},
                         self.server.retry_after)
        else:
            answer: Dict[str, Any] = {"accepted": len(json.loads(body)), "errors": []}
            # By default no `duplicates` field: the answer of a gateway that predates it.
            if self.server.duplicates is not None:
                answer["duplicates"] = self.server.duplicates
            self._answer(202, answer)

    def _answer(self, status: int, document: Dict[str, Any], retry_after: Optional[str] = None) -> None:
        raw = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.lock = threading.Lock()
        self.requests: List[Tuple[Dict[str, str], bytes]] = []
        self.first_arrived = threading.Event()
        self.more_queued = threading.Event()
        #: The first answer's Retry-After, to hold the retry back.
        self.retry_after: Optional[str] = None
        #: The `duplicates` field of the 202 answers, if any.
        self.duplicates: Any = None
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def recorder():
    server = _RecordingServer()
    yield server
    server.shutdown()
    server.server_close()


def _seqs(body: bytes) -> List[int]:
    return [item["logData"]["seq"] for item in json.loads(body)]


def test_each_batch_has_a_random_key_and_a_retry_resends_the_same_bytes_and_key(
    recorder, workspace, make_publisher
):
    publisher = make_publisher(recorder.url, **_batches_of(3))
    for seq in range(3):
        publisher.publish_log(workspace, "wf1", {"seq": seq})
    assert recorder.first_arrived.wait(5)
    # Queued while the first batch is in flight: they must not join its retry.
    for seq in range(3, 5):
        publisher.publish_log(workspace, "wf1", {"seq": seq})
    recorder.more_queued.set()
    assert publisher.flush(timeout=5)

    (first_headers, first), (retry_headers, retry), (next_headers, after) = recorder.requests
    assert retry == first, "the retry is byte-identical"
    assert _seqs(first) == [0, 1, 2]
    assert retry_headers["Idempotency-Key"] == first_headers["Idempotency-Key"]
    assert _seqs(after) == [3, 4]
    assert next_headers["Idempotency-Key"] != first_headers["Idempotency-Key"]
    stats = publisher.stats()
    assert (stats.sent, stats.duplicates, stats.retries, stats.requests) == (5, 0, 1, 3)

    # More batches: every key is new and is a random (version 4) UUID in hex.
    for seq in range(5, 25):
        publisher.publish_log(workspace, "wf1", {"seq": seq})
        assert publisher.flush(timeout=5)
    keys = [headers["Idempotency-Key"] for headers, _ in recorder.requests]
    assert len(keys) == 23
    assert len(set(keys)) == 22, "one key per batch, reused only by the retry"
    for key in keys:
        assert KEY.match(key), key
        assert uuid.UUID(hex=key).version == 4
    assert len({key[:8] for key in keys}) == 22, "no shared prefix: not a counter"


@pytest.mark.parametrize("reported, counted", [(3, 3), (0, 0), ("3", 0), (4, 0), (True, 0)])
def test_duplicates_are_read_from_the_answer(recorder, workspace, make_publisher, reported, counted):
    recorder.duplicates = reported
    recorder.more_queued.set()  # the first attempt is answered 503 at once
    publisher = make_publisher(recorder.url, **_batches_of(3))
    for seq in range(3):
        publisher.publish_log(workspace, "wf1", {"seq": seq})
    assert publisher.flush(timeout=5)
    stats = publisher.stats()
    # Only an int within [0, accepted] counts; anything else reads as none.
    assert (stats.sent, stats.duplicates, stats.retries) == (3, counted, 1)


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_a_batch_awaiting_its_retry_counts_towards_the_queue_and_is_dropped_whole(
    recorder, workspace, make_publisher
):
    recorder.retry_after = "1"  # the retry waits at least 1 s: time to overflow the queue
    publisher = make_publisher(recorder.url, max_queue_size=10, max_batch_size=4, flush_interval=10)
    for seq in range(4):  # a full batch: sent at once
        publisher.publish_log(workspace, "wf1", {"seq": seq})
    assert recorder.first_arrived.wait(5)
    for seq in range(4, 10):
        publisher.publish_log(workspace, "wf1", {"seq": seq})
    recorder.more_queued.set()
    _wait_for(lambda: publisher.stats().retries == 1)
    stats = publisher.stats()
    # 4 awaiting their retry + 6 queued = max_queue_size: nothing dropped yet.
    assert (stats.in_flight, stats.queue_size, stats.dropped) == (4, 6, 0)

    publisher.publish_log(workspace, "wf1", {"seq": 10})
    stats = publisher.stats()
    # Drop-oldest: the retried batch goes, whole, since its bytes must not change.
    assert (stats.in_flight, stats.queue_size, stats.dropped) == (0, 7, 4)
    assert publisher.flush(timeout=5)
    bodies = [body for _, body in recorder.requests]
    assert [_seqs(body) for body in bodies] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    stats = publisher.stats()
    assert (stats.queued, stats.sent, stats.dropped, stats.failed) == (11, 7, 4, 0)


def _drain(stream: SSEStream, quiet: float = 0.3) -> List[Tuple[str, Any]]:
    """Every event but pings and statuses until the stream is quiet for ``quiet`` s."""
    events = []
    while True:
        try:
            event, data = stream.next_event(quiet)
        except queue.Empty:
            return events
        if event not in ("hello", "status", "ping"):
            events.append((event, data))


@pytest.fixture(params=["memory", "redis"])
def any_backend(request, gateway):
    """The shared memory-backend gateway, or one on a redis-server of its own."""
    if request.param == "memory":
        yield gateway
        return
    redis = RedisServer().start()
    own = Gateway(extra_args=["--redis-url", redis.url]).start()
    try:
        yield own
    finally:
        own.stop()
        redis.close()


def test_a_publish_whose_answer_was_lost_is_stored_once(any_backend, workspace, make_publisher, open_stream):
    gateway = any_backend
    proxy = CuttingProxy(gateway.port, lambda index: CUT_AFTER_FORWARD if index == 0 else FORWARD)
    try:
        stream = open_stream(gateway.url, [f"logs:etl:{workspace}:wf1"])
        stream.wait_statuses(1)
        publisher = make_publisher(proxy.url, **_batches_of(5))
        for seq in range(5):
            publisher.publish_log(workspace, "wf1", {"seq": seq})
        assert publisher.flush(timeout=10)

        events = _drain(stream)
        assert [(event, data["logData"]["seq"]) for event, data in events] == [
            ("log", seq) for seq in range(5)
        ], "every log exactly once"
        first, retry = proxy.seen
        assert (first.action, retry.action) == (CUT_AFTER_FORWARD, FORWARD)
        assert retry.body == first.body
        assert retry.headers["idempotency-key"] == first.headers["idempotency-key"]
        stats = publisher.stats()
        assert (stats.sent, stats.duplicates, stats.retries, stats.failed) == (5, 5, 1, 0)
        assert proxy.errors == []
    finally:
        proxy.close()


def test_randomly_lost_requests_and_answers_store_every_log_once_in_order(
    gateway, workspace, make_publisher, open_stream
):
    seed = int(os.environ.get("IDEMPOTENCY_SEED", random.randrange(1 << 32)))
    print(f"\nIDEMPOTENCY_SEED={seed}")
    rng = random.Random(seed)

    def plan(_index: int) -> str:
        roll = rng.random()
        return CUT_AFTER_FORWARD if roll < 0.3 else CUT_BEFORE_FORWARD if roll < 0.45 else FORWARD

    proxy = CuttingProxy(gateway.port, plan)
    try:
        channel = f"logs:etl:{workspace}:wf1"
        stream = open_stream(gateway.url, [channel])
        stream.wait_statuses(1)
        publisher = make_publisher(proxy.url, max_batch_size=7, **FAST_RETRY)
        total = 200
        for seq in range(total):
            publisher.publish_log(workspace, "wf1", {"seq": seq})
            if rng.random() < 0.05:
                time.sleep(rng.uniform(0, 0.03))  # let batches of varied sizes go out
        assert publisher.flush(timeout=30)
        stats = publisher.stats()

        events = _drain(stream)
        assert [event for event, _ in events] == ["log"] * total, f"seed {seed}"
        assert [data["logData"]["seq"] for _, data in events] == list(range(total)), f"seed {seed}"

        # The model: a batch (one key) is stored by its first attempt that
        # reached the gateway; the one answer the SDK gets reports all of the
        # batch as duplicates if an earlier attempt had reached it.
        by_key: Dict[str, List[Any]] = {}
        for seen in proxy.seen:
            by_key.setdefault(seen.headers["idempotency-key"], []).append(seen)
        expected_duplicates = 0
        for key, attempts in by_key.items():
            assert len({attempt.body for attempt in attempts}) == 1, f"key {key} reused for another body"
            assert attempts[-1].action == FORWARD
            if any(attempt.action == CUT_AFTER_FORWARD for attempt in attempts[:-1]):
                expected_duplicates += len(json.loads(attempts[0].body))
        print(f"{len(proxy.seen)} requests for {len(by_key)} batches, "
              f"{stats.retries} retries, {stats.duplicates} duplicates")
        assert (stats.sent, stats.failed, stats.dropped) == (total, 0, 0)
        assert stats.duplicates == expected_duplicates, f"seed {seed}"
        assert stats.retries == len(proxy.seen) - len(by_key)
        assert proxy.errors == []
    finally:
        proxy.close()
