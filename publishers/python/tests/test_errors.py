"""Mistakes raise at the call; a rejecting gateway is reported once, not retried."""

from __future__ import annotations

import logging
import math

import pytest

from gateway import TOKENS
from logs_sse_publisher import (
    ConfigError,
    InvalidIdError,
    LogsSSEPublisher,
    LogTooLargeError,
    log_context,
)

UNUSED_URL = "http://127.0.0.1:9"  # never contacted: every call below fails first


def _rejecting_publisher(make_publisher, gateway, caplog, **options):
    errors = []
    publisher = make_publisher(gateway.url, on_error=errors.append, **options)
    caplog.set_level(logging.ERROR, logger="logs_sse_publisher")
    return publisher, errors


def _publish_in_three_requests(publisher, workspace):
    for round_ in range(3):
        for seq in range(10):
            publisher.publish_log(workspace, "wf1", {"seq": seq, "round": round_})
        assert publisher.flush(timeout=10)


def test_unknown_token_is_reported_once_and_not_retried(gateway, workspace, make_publisher, caplog):
    publisher, errors = _rejecting_publisher(make_publisher, gateway, caplog,
                                             service_token="not-a-known-token")
    _publish_in_three_requests(publisher, workspace)

    stats = publisher.stats()
    assert (stats.sent, stats.failed, stats.retries, stats.requests) == (0, 30, 0, 3)
    assert [(e.status, e.dropped) for e in errors] == [(401, 10)] * 3
    logged = [r for r in caplog.records if r.name == "logs_sse_publisher"]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR
    assert "401" in logged[0].getMessage() and "service_token" in logged[0].getMessage()
    print(f"\n401 reported as: {logged[0].getMessage()}")


def test_token_of_another_service_is_forbidden(gateway, workspace, make_publisher, caplog):
    # The etl token may not publish for service "faas".
    publisher, errors = _rejecting_publisher(
        make_publisher, gateway, caplog, service="faas", service_token=TOKENS["etl"]
    )
    _publish_in_three_requests(publisher, workspace)

    stats = publisher.stats()
    assert (stats.sent, stats.failed, stats.retries, stats.requests) == (0, 30, 0, 3)
    assert {e.status for e in errors} == {403}
    assert errors[0].code == "forbidden_service"
    assert len([r for r in caplog.records if r.name == "logs_sse_publisher"]) == 1


def test_items_rejected_inside_an_accepted_batch_count_as_failed(
    gateway, workspace, make_publisher, open_stream
):
    # The SDK's own size check is raised above the gateway's 64 KiB per-log
    # limit so that the gateway is the one rejecting the middle item.
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}"])
    stream.wait_statuses(1)
    errors = []
    publisher = make_publisher(gateway.url, max_log_bytes=200_000, on_error=errors.append,
                               flush_interval=1)
    publisher.publish_log(workspace, "wf1", {"seq": 0})
    publisher.publish_log(workspace, "wf1", {"seq": 1, "blob": "x" * 100_000})
    publisher.publish_log(workspace, "wf1", {"seq": 2})
    assert publisher.flush(timeout=10)

    stats = publisher.stats()
    assert (stats.sent, stats.failed, stats.requests) == (2, 1, 1)
    assert len(errors) == 1 and errors[0].dropped == 1
    print(f"\nper-item rejection reported as: {errors[0]}")
    assert [log["logData"]["seq"] for log in stream.logs(2)] == [0, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(workspace_id="ws 1", workflow_id="wf"),
         "workspace_id contains ' ' at byte 2; only A-Z, a-z, 0-9, '_', '.' and '-' are allowed"),
        (dict(workspace_id="ws", workflow_id="a:b"), "workflow_id contains ':' at byte 1"),
        (dict(workspace_id="ws", function_id="fn/1"), "function_id contains '/' at byte 2"),
        (dict(workspace_id="ws", resource_id="é"), "resource_id contains 'é' at byte 0"),
        (dict(workspace_id="ws", workflow_id="ab\n"), "workflow_id contains '\\n' at byte 2"),
        (dict(workspace_id="", workflow_id="wf"), "workspace_id is empty"),
        (dict(workspace_id="w" * 65, workflow_id="wf"),
         "workspace_id is 65 bytes long; the limit is 64"),
        (dict(workspace_id=None, workflow_id="wf"), "workspace_id must be a str (or int), got NoneType"),
        (dict(workspace_id="ws", workflow_id=True), "workflow_id must be a str (or int), got bool"),
        (dict(workspace_id="ws"), "pass exactly one of workflow_id, function_id or resource_id (got none)"),
        (dict(workspace_id="ws", workflow_id="a", function_id="b"),
         "pass exactly one of workflow_id, function_id or resource_id (got workflow_id and function_id)"),
    ],
)
def test_invalid_ids_raise_at_the_call(kwargs, message):
    publisher = LogsSSEPublisher(UNUSED_URL, "token", "etl")
    with pytest.raises(InvalidIdError) as raised:
        publisher.publish_log(log_data={"m": 1}, **kwargs)
    assert message in str(raised.value)
    assert publisher.stats().queued == 0
    publisher.close(0)


def test_longest_valid_ids_are_accepted():
    publisher = LogsSSEPublisher(UNUSED_URL, "token", "e" * 64, flush_interval=60)
    assert publisher.publish_log("w" * 64, "A-z_0.9" + "r" * 57, {"m": 1}) is True
    assert publisher.stats().queued == 1
    publisher.close(0)


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((UNUSED_URL, "", "etl"), {}, "service_token is required"),
        ((UNUSED_URL, None, "etl"), {}, "service_token is required"),
        (("", "t", "etl"), {}, "gateway_url is required"),
        (("logs-sse-gateway:3002", "t", "etl"), {}, "gateway_url must be an absolute http://"),
        ((UNUSED_URL, "t", "et l"), {}, "service_name contains ' ' at byte 2"),
        ((UNUSED_URL, "t", "etl"), dict(max_queue_size=0), "max_queue_size must be between 1 and"),
        ((UNUSED_URL, "t", "etl"), dict(max_batch_size=1001), "max_batch_size must be between 1 and 1000"),
        ((UNUSED_URL, "t", "etl"), dict(flush_interval="1"), "flush_interval must be a number"),
        ((UNUSED_URL, "t", "etl"), dict(retry_backoff_min=1, retry_backoff_max=0.5),
         "retry_backoff_max must be between 1 and 600"),
        ((UNUSED_URL, "t", "etl"), dict(on_error="print"), "on_error must be callable"),
    ],
)
def test_configuration_mistakes_raise_at_construction(args, kwargs, message):
    with pytest.raises(ConfigError) as raised:
        LogsSSEPublisher(*args, **kwargs)
    assert message in str(raised.value)


def test_unusable_log_data_raises_at_the_call():
    # add_id_and_timestamp=False: the exact size below is the caller's log_data.
    publisher = LogsSSEPublisher(UNUSED_URL, "token", "etl", max_log_bytes=1024,
                                 add_id_and_timestamp=False)
    with pytest.raises(LogTooLargeError, match="log_data is 2008 bytes once encoded as JSON; the limit is 1024"):
        publisher.publish_log("ws", "wf", {"m": "x" * 2000})
    with pytest.raises(TypeError, match="log_data contains a object"):
        publisher.publish_log("ws", "wf", {"m": object()})
    with pytest.raises(ValueError, match="Out of range float"):
        publisher.publish_log("ws", "wf", {"m": math.nan})
    with pytest.raises(ValueError, match="log_data is required"):
        publisher.publish_log("ws", "wf", None)
    assert publisher.stats().queued == 0
    publisher.close(0)


def test_log_context_validates_ids_at_the_with_line():
    with pytest.raises(InvalidIdError, match="workflow_id contains ' '"):
        with log_context(workspace_id="ws", workflow_id="w f"):
            pass
    with pytest.raises(TypeError, match="unknown: tenant"):
        with log_context(tenant="x"):
            pass
    with pytest.raises(TypeError, match="got workflow_id and function_id"):
        with log_context(workflow_id="a", function_id="b"):
            pass
