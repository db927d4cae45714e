"""Fixtures: a real gateway process, publishers and SSE streams cleaned up after use."""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator, List

import pytest

from gateway import TOKENS, Gateway, SSEStream
from logs_sse_publisher import LogsSSEPublisher


@pytest.fixture(scope="session")
def gateway() -> Iterator[Gateway]:
    """One gateway shared by the tests that do not stop it."""
    gw = Gateway().start()
    yield gw
    gw.stop()


@pytest.fixture
def own_gateway() -> Iterator[Gateway]:
    """A gateway this test may stop and restart."""
    gw = Gateway().start()
    yield gw
    gw.stop()


@pytest.fixture
def workspace() -> str:
    """A workspace id no other test uses, so streams never see foreign logs."""
    return f"ws-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_publisher() -> Iterator[Callable[..., LogsSSEPublisher]]:
    created: List[LogsSSEPublisher] = []

    def make(url: str, service: str = "etl", **options: Any) -> LogsSSEPublisher:
        options.setdefault("service_token", TOKENS[service])
        publisher = LogsSSEPublisher(gateway_url=url, service_name=service, **options)
        created.append(publisher)
        return publisher

    yield make
    for publisher in created:
        publisher.close(timeout=1)


@pytest.fixture
def open_stream() -> Iterator[Callable[..., SSEStream]]:
    streams: List[SSEStream] = []

    def open_(url: str, channels: List[str], since: str = "") -> SSEStream:
        stream = SSEStream(url, channels, since or None)
        streams.append(stream)
        return stream

    yield open_
    for stream in streams:
        stream.close()
