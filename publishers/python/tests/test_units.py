"""The pure parts: the drop-oldest queue, Retry-After parsing, JSON encoding."""

from __future__ import annotations

import datetime
import decimal
import email.utils
import time
import uuid

from logs_sse_publisher.buffer import BoundedQueue, Entry
from logs_sse_publisher.encoding import encode_json, encode_loose
from logs_sse_publisher.transport import parse_retry_after


def _entries(*names):
    return [Entry(name.encode(), 0.0) for name in names]


def test_queue_drops_oldest_on_push_and_on_put_back():
    queue = BoundedQueue(3)
    dropped = sum(queue.push(entry) for entry in _entries("a", "b", "c", "d"))
    assert dropped == 1
    batch = queue.take(max_items=2, max_bytes=1 << 20)
    assert [e.body for e in batch] == [b"b", b"c"]
    for entry in _entries("e", "f"):
        queue.push(entry)
    # Put-back of the failed batch: the queue holds d, e, f, so the two
    # oldest (the put-back b and c) are the ones dropped.
    assert queue.push_front(batch) == 2
    assert [e.body for e in queue.take(10, 1 << 20)] == [b"d", b"e", b"f"]


def test_queue_batches_by_bytes_but_never_returns_an_empty_batch():
    queue = BoundedQueue(10)
    for entry in _entries("x" * 10, "y" * 10, "z" * 30):
        queue.push(entry)
    assert [len(e.body) for e in queue.take(10, 23)] == [10, 10]
    assert [len(e.body) for e in queue.take(10, 23)] == [30]  # alone, even if larger
    assert queue.take(10, 23) == []


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= parse_retry_after(in_ten) <= 10
    assert parse_retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0


def test_encoding_is_compact_utf8_and_converts_common_types():
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    value = {"t": when, "id": uuid.UUID(int=1), "amount": decimal.Decimal("1.50"),
             "tags": ("a",), "text": "é"}
    assert encode_json(value) == (
        '{"t":"2024-05-01T12:00:00+00:00","id":"00000000-0000-0000-0000-000000000001",'
        '"amount":"1.50","tags":["a"],"text":"é"}'
    )
    assert encode_loose({"o": object})  == '{"o":"<class \'object\'>"}'


def test_stamp_log_adds_a_uuid4_id_and_a_utc_millisecond_timestamp_only_where_missing():
    from logs_sse_publisher.stamp import stamp_log, utc_timestamp

    at = datetime.datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=datetime.timezone.utc).timestamp()
    assert utc_timestamp(at) == "2026-12-01T10:00:00.123Z"
    # Milliseconds are truncated, never carried into the next second.
    assert utc_timestamp(int(at) + 0.9999) == "2026-12-01T10:00:00.999Z"
    assert utc_timestamp(at + 1) == "2026-12-01T10:00:01.123Z"
    assert utc_timestamp(0) == "1970-01-01T00:00:00.000Z"
    given = {"message": "m"}
    stamped = stamp_log(given, at)
    assert stamped is not given and given == {"message": "m"}, "the caller's dict is untouched"
    assert stamped["timestamp"] == "2026-12-01T10:00:00.123Z"
    assert uuid.UUID(stamped["id"]).version == 4
    assert list(stamped) == ["message", "id", "timestamp"]
    own = {"id": "x", "timestamp": "t"}
    assert stamp_log(own, at) is own, "nothing to add: the same dict"
    assert stamp_log({"id": None, "timestamp": None}, at)["timestamp"] == "2026-12-01T10:00:00.123Z"
    assert stamp_log({"id": False, "timestamp": 0}, at) == {"id": False, "timestamp": 0}
    for value in ["text", 42, True, None, [1], ("a",)]:
        assert stamp_log(value, at) is value
    assert len({stamp_log({}, at)["id"] for _ in range(1000)}) == 1000
