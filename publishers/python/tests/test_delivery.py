"""Logs published through the SDK arrive on the real gateway's SSE stream."""

from __future__ import annotations

import logging
import os
import queue

import pytest

from logs_sse_publisher import LogsSSEHandler, log_context


def test_logs_arrive_in_order_once_per_stream(gateway, workspace, make_publisher, open_stream):
    channel = f"logs:etl:{workspace}:wf9"
    # Subscribing the resource channel and its service-level channel must
    # still deliver each log once.
    stream = open_stream(gateway.url, [channel, f"logs:etl:{workspace}"])
    stream.wait_statuses(2)
    publisher = make_publisher(gateway.url)

    for seq in range(300):
        publisher.publish_log(workspace_id=workspace, workflow_id="wf9",
                              log_data={"seq": seq, "message": f"line {seq}"})
    assert publisher.flush(timeout=10)

    logs = stream.logs(300)
    assert [log["logData"]["seq"] for log in logs] == list(range(300))
    assert {log["channel"] for log in logs} == {channel}
    own = {k: v for k, v in logs[7]["logData"].items() if k not in ("id", "timestamp")}
    assert own == {"seq": 7, "message": "line 7"}
    stats = publisher.stats()
    assert (stats.queued, stats.sent, stats.dropped, stats.failed) == (300, 300, 0, 0)


def test_workflow_function_and_resource_ids_route_to_their_channels(
    gateway, workspace, make_publisher, open_stream
):
    stream = open_stream(gateway.url, [f"logs:faas:{workspace}"])
    stream.wait_statuses(1)
    # Function logs of this publisher stay in its own service.
    publisher = make_publisher(gateway.url, service="faas", function_service_name="faas")

    publisher.publish_workflow_log(workspace, "wf-1", {"n": 1})
    publisher.publish_function_log(workspace, "fn.2", {"n": 2})
    publisher.publish_resource_log(workspace, "res_3", {"n": 3})
    publisher.publish_log(workspace, log_data={"n": 4}, function_id=42)
    assert publisher.flush(timeout=10)

    logs = stream.logs(4)
    assert [(log["channel"], log["logData"]["n"]) for log in logs] == [
        (f"logs:faas:{workspace}:wf-1", 1),
        (f"logs:faas:{workspace}:fn.2", 2),
        (f"logs:faas:{workspace}:res_3", 3),
        (f"logs:faas:{workspace}:42", 4),
    ]


def test_batching_reduces_request_count(gateway, workspace, make_publisher, open_stream):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}"])
    stream.wait_statuses(1)
    before = gateway.admin_stats()
    publisher = make_publisher(gateway.url, max_batch_size=500, flush_interval=0.5)

    total = 2000
    for seq in range(total):
        publisher.publish_log(workspace, f"wf{seq % 4}", {"seq": seq})
    assert publisher.flush(timeout=10)
    after = gateway.admin_stats()

    stats = publisher.stats()
    requests = after["publishRequests"] - before["publishRequests"]
    print(f"\n{total} logs sent in {stats.requests} SDK requests "
          f"(gateway counted {requests} publish requests, "
          f"{after['logsPublished'] - before['logsPublished']} logs)")
    assert stats.sent == total
    # 2000 logs in batches of at most 500: 4 full batches, plus a few partial
    # ones if the worker woke while the caller was still publishing.
    assert 4 <= stats.requests <= 20
    assert requests == stats.requests
    assert after["logsPublished"] - before["logsPublished"] == total
    assert [log["logData"]["seq"] for log in stream.logs(total)] == list(range(total))


def test_logging_handler_streams_records_with_context_and_extra(
    gateway, workspace, make_publisher, open_stream
):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}"])
    stream.wait_statuses(1)
    # A function_id from the context stays in this publisher's service here.
    publisher = make_publisher(gateway.url, function_service_name="etl")
    handler = LogsSSEHandler(publisher)
    logger = logging.getLogger(f"etl.test.{workspace}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.info("before any context")  # no ids: not streamed
        with log_context(workspace_id=workspace, workflow_id="wf1"):
            logger.info("extracting %d rows", 20, extra={"rows": 20})
            with log_context(function_id="fn7"):
                logger.warning("inside a function")
            try:
                raise ValueError("bad row")
            except ValueError:
                logger.exception("transform failed")
        logger.info("explicit ids", extra={"workspace_id": workspace, "resource_id": "r1"})
        assert publisher.flush(timeout=10)
    finally:
        logger.removeHandler(handler)

    logs = stream.logs(4)
    assert [log["channel"] for log in logs] == [
        f"logs:etl:{workspace}:wf1",
        f"logs:etl:{workspace}:fn7",
        f"logs:etl:{workspace}:wf1",
        f"logs:etl:{workspace}:r1",
    ]
    first = logs[0]["logData"]
    assert first["message"] == "extracting 20 rows"
    assert first["level"] == "INFO"
    assert first["rows"] == 20
    assert first["logger"] == logger.name
    assert "workspace_id" not in first
    assert logs[1]["logData"]["level"] == "WARNING"
    assert "ValueError: bad row" in logs[2]["logData"]["exception"]
    assert handler.skipped == 1


def test_logging_handler_truncates_an_oversized_record_instead_of_losing_it(
    gateway, workspace, make_publisher, open_stream
):
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}"])
    stream.wait_statuses(1)
    publisher = make_publisher(gateway.url, max_log_bytes=4096)
    handler = LogsSSEHandler(publisher)
    logger = logging.getLogger(f"etl.big.{workspace}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        with log_context(workspace_id=workspace, workflow_id="wf1"):
            logger.error("x" * 100_000)
        assert publisher.flush(timeout=10)
    finally:
        logger.removeHandler(handler)
    data = stream.logs(1)[0]["logData"]
    assert data["truncated"] is True
    assert data["message"].startswith("xxxx") and len(data["message"]) < 4096
    assert data["level"] == "ERROR"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_publishes_on_its_own_and_repeats_nothing(
    gateway, workspace, make_publisher, open_stream
):
    # gunicorn --preload forks workers from a process that may hold a queue.
    stream = open_stream(gateway.url, [f"logs:etl:{workspace}"])
    stream.wait_statuses(1)
    publisher = make_publisher(gateway.url, flush_interval=30)
    for seq in range(5):
        publisher.publish_log(workspace, "parent", {"seq": seq})
    pid = os.fork()
    if pid == 0:  # the child: its queue starts empty, with its own worker
        code = 2
        try:
            publisher.publish_log(workspace, "child", {"seq": 100})
            code = 0 if publisher.close(timeout=5) and publisher.stats().sent == 1 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert publisher.close(timeout=5)
    logs = stream.logs(6)
    assert sorted(log["logData"]["seq"] for log in logs) == [0, 1, 2, 3, 4, 100]
    with pytest.raises(queue.Empty):
        stream.next_event(timeout=0.5)  # nothing repeated
