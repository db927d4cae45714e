"""Ids, timestamps and the function service, end to end: what the SDK adds
to ``logData`` arrives on the real gateway's stream, and function logs of a
FAAS publisher reach the ``function`` service's channels."""

from __future__ import annotations

import datetime
import logging
import re
import time

import pytest

from gateway import FAAS_FUNCTION_TOKEN, TOKENS
from logs_sse_publisher import ConfigError, LogsSSEHandler, LogsSSEPublisher, log_context

UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _epoch_ms(text: str) -> int:
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return round(moment.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def test_every_log_gets_a_unique_uuid4_id_and_a_utc_millisecond_timestamp(
    gateway, workspace, make_publisher, open_stream
):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}:wf1"])
    stream.wait_statuses(1)
    publisher = make_publisher(gateway.url)
    before = int(time.time() * 1000)
    for seq in range(200):
        publisher.publish_log(workspace_id=workspace, workflow_id="wf1",
                              log_data={"seq": seq, "level": "info", "message": f"m{seq}"})
    after = int(time.time() * 1000)
    assert publisher.flush(timeout=10)

    logs = [log["logData"] for log in stream.logs(200)]
    assert [data["seq"] for data in logs] == list(range(200))
    for data in logs:
        assert UUID_V4.match(data["id"]), data
        assert ISO_UTC_MS.match(data["timestamp"]), data
        assert before - 1 <= _epoch_ms(data["timestamp"]) <= after, (data, before, after)
        assert list(data) == ["seq", "level", "message", "id", "timestamp"]
    assert len({data["id"] for data in logs}) == 200


def test_the_callers_id_and_timestamp_win_none_is_absent_non_dicts_are_sent_as_given(
    gateway, workspace, make_publisher, open_stream
):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}:wf1"])
    stream.wait_statuses(1)
    publisher = make_publisher(gateway.url)
    own = {"id": "run-7-line-1", "timestamp": "2026-01-02T03:04:05.678Z", "message": "mine"}
    publisher.publish_log(workspace, "wf1", own)
    publisher.publish_log(workspace, "wf1", {"id": 0, "message": "id zero is an id"})
    publisher.publish_log(workspace, "wf1", {"id": None, "timestamp": 1767322800000, "message": "none id"})
    publisher.publish_log(workspace, "wf1", "plain text")
    publisher.publish_log(workspace, "wf1", [1, 2])
    assert publisher.flush(timeout=10)

    mine, zero, none_id, text, items = [log["logData"] for log in stream.logs(5)]
    assert mine == own
    assert zero["id"] == 0 and ISO_UTC_MS.match(zero["timestamp"])
    assert UUID_V4.match(none_id["id"]) and none_id["timestamp"] == 1767322800000
    assert text == "plain text"
    assert items == [1, 2]
    assert own == {"id": "run-7-line-1", "timestamp": "2026-01-02T03:04:05.678Z", "message": "mine"}


def test_add_id_and_timestamp_false_sends_log_data_untouched(
    gateway, workspace, make_publisher, open_stream
):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}:wf1"])
    stream.wait_statuses(1)
    publisher = make_publisher(gateway.url, add_id_and_timestamp=False)
    publisher.publish_log(workspace, "wf1", {"message": "bare"})
    assert publisher.flush(timeout=10)
    assert stream.logs(1)[0]["logData"] == {"message": "bare"}
    with pytest.raises(ConfigError, match="add_id_and_timestamp must be a bool"):
        LogsSSEPublisher(gateway.url, "token-123", "etl", add_id_and_timestamp="no")


def test_logging_records_carry_an_id_and_their_creation_time(
    gateway, workspace, make_publisher, open_stream
):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}:wf1"])
    stream.wait_statuses(1)
    publisher = make_publisher(gateway.url)
    handler = LogsSSEHandler(publisher)
    logger = logging.getLogger(f"etl.identity.{workspace}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        with log_context(workspace_id=workspace, workflow_id="wf1"):
            logger.info("first")
            logger.info("second")
        assert publisher.flush(timeout=10)
    finally:
        logger.removeHandler(handler)
    first, second = [log["logData"] for log in stream.logs(2)]
    for data in (first, second):
        assert UUID_V4.match(data["id"]) and ISO_UTC_MS.match(data["timestamp"]), data
    assert first["id"] != second["id"]


def test_the_design_snippets_faas_publisher_reaches_the_function_service(
    gateway, workspace, make_publisher, open_stream
):
    stream = open_stream(gateway.url, [f"logs:function:{workspace}:fn456", f"logs:faas:{workspace}:flow1"])
    stream.wait_statuses(2)
    publisher = make_publisher(gateway.url, service="faas", service_token=FAAS_FUNCTION_TOKEN)
    assert publisher.function_service_name == "function"
    publisher.publish_function_log(workspace, "fn456", {"level": "info", "message": "function ran"})
    publisher.publish_log(workspace, log_data={"message": "by keyword"}, function_id="fn456")
    publisher.publish_workflow_log(workspace, "flow1", {"level": "info", "message": "workflow step"})
    assert publisher.flush(timeout=10)
    logs = stream.logs(3)
    assert [(log["channel"], log["logData"]["message"]) for log in logs] == [
        (f"logs:function:{workspace}:fn456", "function ran"),
        (f"logs:function:{workspace}:fn456", "by keyword"),
        (f"logs:faas:{workspace}:flow1", "workflow step"),
    ]
    stats = publisher.stats()
    assert (stats.sent, stats.failed) == (3, 0)


def test_a_token_not_granted_the_function_service_is_refused_and_says_why(
    gateway, workspace, make_publisher, caplog
):
    errors = []
    publisher = make_publisher(gateway.url, service="faas", service_token=TOKENS["faas"],
                               on_error=errors.append)
    with caplog.at_level(logging.ERROR, logger="logs_sse_publisher"):
        publisher.publish_function_log(workspace, "fn1", {"message": "refused"})
        assert publisher.flush(timeout=10)
    assert [(e.status, e.code) for e in errors] == [(403, "forbidden_service")]
    assert "'function' for function logs" in caplog.text
    assert publisher.stats().failed == 1
