"""``LogsSSEPublisher``: publish logs to the gateway without ever blocking.

How an entry travels::

    publish_log()  --validate, encode-->  BoundedQueue  --worker thread-->  POST /api/logs/publish
    (caller thread, microseconds)         (drop-oldest)   (batches by count,   (JSON array, retried
                                                           bytes and time)      with full jitter)

The caller's thread only validates, encodes and appends under a lock that the
worker holds for microseconds. All network I/O, waiting and retrying happens
on one daemon thread per publisher, so a slow or dead gateway costs the
service memory (bounded by ``max_queue_size``) and never latency or errors.
One worker per publisher also keeps publish order: batches are sent one at a
time, and a batch that fails transiently is sent again, byte for byte and
under the same ``Idempotency-Key``, before anything queued behind it, so the
gateway stores it once even when an earlier attempt was stored but its
answer was lost.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import random
import threading
import time
import urllib.parse
import weakref
from typing import Any, Callable, Optional, Set, Tuple

from . import transport as tx
from .batch import Batch
from .buffer import BoundedQueue, Entry
from .encoding import encode_json
from .errors import ConfigError, GatewayError, InvalidIdError, LogTooLargeError
from .stamp import stamp_log
from .validation import validate_segment

__all__ = ["LogsSSEPublisher", "PublisherStats"]

__version__ = "0.1.0"

_LOGGER = logging.getLogger("logs_sse_publisher")

#: The three id fields of the publish API; exactly one is sent per log.
RESOURCE_FIELDS = ("workflow_id", "function_id", "resource_id")


@dataclasses.dataclass(frozen=True)
class PublisherStats:
    """A consistent snapshot of a publisher's counters.

    Every entry that entered the queue ends up in exactly one of ``sent``,
    ``failed`` or ``dropped``, or is still waiting (``queue_size`` /
    ``in_flight``). ``dropped`` additionally counts calls made after
    :meth:`LogsSSEPublisher.close`, which never entered the queue.
    """

    #: Entries accepted into the queue by ``publish_*`` (cumulative).
    queued: int
    #: Entries the gateway accepted (202, counted per item).
    sent: int
    #: Entries of ``sent`` that the gateway already had from an earlier
    #: attempt of the same batch (its answer was lost; it was not stored
    #: again). 0 with a gateway that does not report ``duplicates``.
    duplicates: int
    #: Entries discarded without being sent: queue overflow (drop-oldest),
    #: publishing after ``close()``, or still queued when ``close()`` timed out.
    dropped: int
    #: Entries the gateway refused for good: 401/403, other 4xx, or items
    #: rejected inside a 202 answer.
    failed: int
    #: HTTP requests made to the gateway, including retries.
    requests: int
    #: Requests that failed transiently (network error, 408, 429, 5xx) and
    #: whose batch is sent again, unchanged, after a back-off.
    retries: int
    #: Entries waiting in the queue right now.
    queue_size: int
    #: Entries of the batch being sent right now, or waiting to be sent again.
    in_flight: int
    #: The last error seen, for humans; ``None`` if there was none.
    last_error: Optional[str]


def _bounded(name: str, value: Any, low: float, high: float, integer: bool) -> Any:
    """Checks that an option is a number within [low, high]."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(
            f"{name} must be {'an int' if integer else 'a number'}, got {value!r}"
        )
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value!r}")
    return value


def _count_field(body: Any, name: str, high: int) -> Optional[int]:
    """``body[name]`` if it is an int within [0, high], else ``None``."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        return None
    return value


def _publish_url(gateway_url: Any) -> str:
    if not isinstance(gateway_url, str) or not gateway_url.strip():
        raise ConfigError(
            "gateway_url is required, e.g. 'http://logs-sse-gateway:3002'"
        )
    parsed = urllib.parse.urlsplit(gateway_url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"gateway_url must be an absolute http:// or https:// URL, got {gateway_url!r}"
        )
    return gateway_url.strip().rstrip("/") + "/api/logs/publish"


# Publishers that are open, for the atexit hook and fork handling. Weak, so
# that dropping the last reference to a closed publisher frees it.
_LIVE: "weakref.WeakSet[LogsSSEPublisher]" = weakref.WeakSet()


class LogsSSEPublisher:
    """Publishes logs of one service to a Logs SSE gateway.

    Create one per process (per service name) and share it: it is
    thread-safe. ``publish_*`` calls return at once; delivery happens on a
    background thread. See the package README for every option.
    """

    def __init__(
        self,
        gateway_url: str,
        service_token: str,
        service_name: str,
        *,
        max_queue_size: int = 10_000,
        max_batch_size: int = 500,
        max_batch_bytes: int = 512 * 1024,
        flush_interval: float = 0.1,
        request_timeout: float = 10.0,
        retry_backoff_min: float = 0.1,
        retry_backoff_max: float = 10.0,
        max_retry_after: float = 300.0,
        max_log_bytes: int = 64 * 1024,
        shutdown_timeout: float = 5.0,
        on_error: Optional[Callable[[GatewayError], None]] = None,
        function_service_name: str = "function",
        add_id_and_timestamp: bool = True,
    ) -> None:
        publish_url = _publish_url(gateway_url)
        if not isinstance(service_token, str) or not service_token.strip():
            raise ConfigError(
                "service_token is required: pass the token the gateway was started "
                "with for this service (--service-token NAME=TOKEN)"
            )
        try:
            self.service_name = validate_segment("service_name", service_name)
            #: The service of logs identified by a ``function_id``.
            self.function_service_name = validate_segment(
                "function_service_name", function_service_name
            )
        except InvalidIdError as error:
            raise ConfigError(str(error)) from None
        if not isinstance(add_id_and_timestamp, bool):
            raise ConfigError(
                f"add_id_and_timestamp must be a bool, got {add_id_and_timestamp!r}"
            )
        self._stamp = add_id_and_timestamp
        self._max_batch_size: int = _bounded("max_batch_size", max_batch_size, 1, 1000, True)
        self._max_batch_bytes: int = _bounded("max_batch_bytes", max_batch_bytes, 1024, 16 << 20, True)
        self._flush_interval: float = _bounded("flush_interval", flush_interval, 0, 60, False)
        self._retry_backoff_min: float = _bounded("retry_backoff_min", retry_backoff_min, 0.001, 60, False)
        self._retry_backoff_max: float = _bounded(
            "retry_backoff_max", retry_backoff_max, retry_backoff_min, 600, False
        )
        self._max_retry_after: float = _bounded("max_retry_after", max_retry_after, 0, 3600, False)
        self._max_log_bytes: int = _bounded("max_log_bytes", max_log_bytes, 1, 16 << 20, True)
        self._shutdown_timeout: float = _bounded("shutdown_timeout", shutdown_timeout, 0, 600, False)
        if on_error is not None and not callable(on_error):
            raise ConfigError("on_error must be callable or None")
        self._on_error = on_error
        self._transport = tx.Transport(
            publish_url,
            service_token.strip(),
            _bounded("request_timeout", request_timeout, 0.1, 600, False),
            f"logs-sse-publisher-python/{__version__}",
        )
        self._queue = BoundedQueue(_bounded("max_queue_size", max_queue_size, 1, 10_000_000, True))
        # The item prefix is the same for every log of a service; ids are
        # validated to need no JSON escaping. Function logs have their own
        # service (see publish_function_log).
        self._prefix = '{"service":"%s","workspace_id":"' % self.service_name
        self._function_prefix = '{"service":"%s","workspace_id":"' % self.function_service_name
        self._init_runtime_state()
        _LIVE.add(self)

    def _init_runtime_state(self) -> None:
        """Locks, worker and counters: everything a forked child must rebuild."""
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # wakes the worker
        self._idle = threading.Condition(self._lock)  # wakes flush() waiters
        self._worker: Optional[threading.Thread] = None
        self._closed = False  # no new entries; the worker drains and exits
        self._stopping = False  # the worker must exit now
        self._flush_requests = 0
        self._in_flight = 0
        # A batch that failed transiently, kept whole (entries, key, body) to
        # be sent again before anything is taken from the queue.
        self._retry: Optional[Batch] = None
        self._batch_bytes = self._max_batch_bytes  # lowered after a 413
        self._failures_in_a_row = 0
        self._reported: Set[Tuple[int, str]] = set()
        self._warned_full = False
        self._warned_closed = False
        self._queued = self._sent = self._dropped = self._failed = 0
        self._duplicates = 0
        self._requests = self._retries = 0
        self._last_error: Optional[str] = None

    # ------------------------------------------------------------------ API

    def publish_log(
        self,
        workspace_id: Any,
        workflow_id: Any = None,
        log_data: Any = None,
        *,
        function_id: Any = None,
        resource_id: Any = None,
    ) -> bool:
        """Queues one log for ``logs:{service}:{workspace_id}:{id}``.

        Pass exactly one of ``workflow_id``, ``function_id`` or
        ``resource_id`` (they name the same channel segment). A log with a
        ``function_id`` is a function log: it goes to
        ``logs:{function_service_name}:{workspace_id}:{function_id}`` (see
        :meth:`publish_function_log`). ``log_data`` is any JSON-serialisable
        value (datetimes, UUIDs, Decimals, enums and sets are converted); a
        dict without ``id`` / ``timestamp`` gets them (see the README).

        Returns ``True`` when queued and ``False`` when the publisher is
        closed (the entry is counted as dropped). Raises
        :class:`InvalidIdError`, :class:`LogTooLargeError`, ``TypeError`` or
        ``ValueError`` for mistakes in the arguments; never for gateway or
        network trouble.
        """
        ws = validate_segment("workspace_id", workspace_id)
        given = [
            (field, value)
            for field, value in zip(RESOURCE_FIELDS, (workflow_id, function_id, resource_id))
            if value is not None
        ]
        if len(given) != 1:
            named = " and ".join(field for field, _ in given) or "none"
            raise InvalidIdError(
                "resource_id",
                f"pass exactly one of workflow_id, function_id or resource_id (got {named})",
            )
        field, value = given[0]
        rid = validate_segment(field, value)
        if log_data is None:
            raise ValueError("log_data is required (any JSON-serialisable value but None)")
        return self._publish_json(ws, field, rid, encode_json(self._stamped(log_data)))

    def publish_workflow_log(self, workspace_id: Any, workflow_id: Any, log_data: Any) -> bool:
        """Shorthand for ``publish_log(workspace_id, workflow_id, log_data)``."""
        return self.publish_log(workspace_id, workflow_id, log_data)

    def publish_function_log(self, workspace_id: Any, function_id: Any, log_data: Any) -> bool:
        """Queues a log of a function execution.

        It goes to ``logs:{function_service_name}:{workspace_id}:{function_id}``:
        function logs belong to the function service (default ``function``)
        whatever this publisher's ``service_name``, so a FAAS backend
        publishing as ``faas`` reaches pages subscribed with
        ``service: 'function'``. Its token must be granted both services
        (``--service-token faas+function=TOKEN``). Shorthand for
        ``publish_log(workspace_id, log_data=..., function_id=...)``.
        """
        return self.publish_log(workspace_id, log_data=log_data, function_id=function_id)

    def publish_resource_log(self, workspace_id: Any, resource_id: Any, log_data: Any) -> bool:
        """Shorthand for ``publish_log(workspace_id, log_data=..., resource_id=...)``."""
        return self.publish_log(workspace_id, log_data=log_data, resource_id=resource_id)

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until every queued entry has been delivered or given up.

        Sends immediately, without waiting for ``flush_interval``. Returns
        ``True`` if the queue drained within ``timeout`` seconds, ``False``
        otherwise (entries stay queued and keep being retried).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if self._drained_locked():
                return True
            self._flush_requests += 1
            self._work.notify()
            try:
                while not self._drained_locked():
                    if self._worker is None or self._stopping:
                        return False
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._idle.wait(remaining)
                return True
            finally:
                self._flush_requests -= 1

    def close(self, timeout: Optional[float] = None) -> bool:
        """Delivers what is queued (up to ``timeout`` seconds), then stops.

        ``timeout`` defaults to ``shutdown_timeout``. Entries still queued
        when it expires are counted as dropped. Later ``publish_*`` calls are
        dropped and counted. Safe to call more than once; also called at
        interpreter exit. Returns ``True`` if everything was delivered.
        """
        if timeout is None:
            timeout = self._shutdown_timeout
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            self._closed = True
            self._work.notify()
        drained = self.flush(timeout)
        with self._lock:
            self._stopping = True
            leftover = self._queue.clear()
            if self._retry is not None:
                # Waiting for its back-off, so not in a request: drop it too.
                leftover += len(self._retry)
                self._retry = None
                self._in_flight = 0
            self._dropped += leftover
            self._work.notify_all()
            self._idle.notify_all()
            worker = self._worker
        _LIVE.discard(self)
        if leftover:
            _LOGGER.warning(
                "logs-sse publisher %r closed with %d log(s) undelivered after %.1fs; "
                "they were dropped (last error: %s)",
                self.service_name,
                leftover,
                timeout,
                self._last_error,
            )
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, deadline - time.monotonic()))
        return drained and not leftover

    def stats(self) -> PublisherStats:
        """A snapshot of the counters; cheap enough for a health endpoint."""
        with self._lock:
            return PublisherStats(
                queued=self._queued,
                sent=self._sent,
                duplicates=self._duplicates,
                dropped=self._dropped,
                failed=self._failed,
                requests=self._requests,
                retries=self._retries,
                queue_size=len(self._queue),
                in_flight=self._in_flight,
                last_error=self._last_error,
            )

    def __enter__(self) -> "LogsSSEPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LogsSSEPublisher(service_name={self.service_name!r}, closed={self._closed})"

    # ------------------------------------------------------ caller side

    @property
    def max_log_bytes(self) -> int:
        """The largest accepted ``log_data``, in bytes of compact JSON."""
        return self._max_log_bytes

    def _stamped(self, log_data: Any) -> Any:
        """``log_data`` with an ``id`` and ``timestamp`` where missing, if enabled."""
        return stamp_log(log_data) if self._stamp else log_data

    def _publish_json(self, workspace_id: str, field: str, resource_id: str, data: str) -> bool:
        """Queues a log whose ids are validated and whose data is JSON text."""
        encoded = data.encode("utf-8")
        if len(encoded) > self._max_log_bytes:
            raise LogTooLargeError(
                f"log_data is {len(encoded)} bytes once encoded as JSON; "
                f"the limit is {self._max_log_bytes} bytes per log"
            )
        prefix = self._function_prefix if field == "function_id" else self._prefix
        head = f'{prefix}{workspace_id}","{field}":"{resource_id}","logData":'
        return self._enqueue(Entry(head.encode("ascii") + encoded + b"}", time.monotonic()))

    def _enqueue(self, entry: Entry) -> bool:
        warn_full = warn_closed = False
        with self._lock:
            if self._closed:
                self._dropped += 1
                warn_closed, self._warned_closed = not self._warned_closed, True
                accepted = False
            else:
                if self._worker is None:
                    self._start_worker_locked()
                # The batch awaiting its retry is counted by the helper.
                dropped_retry = self._drop_retry_if_full_locked(1)
                dropped = self._queue.push(entry)
                self._queued += 1
                if dropped or dropped_retry:
                    self._dropped += dropped
                    warn_full, self._warned_full = not self._warned_full, True
                size = len(self._queue)
                # Wake the worker only when its wait condition changes: the
                # queue stopped being empty, or a full batch is ready.
                if size == 1 or size == self._max_batch_size:
                    self._work.notify()
                accepted = True
        if warn_full:
            _LOGGER.warning(
                "logs-sse publisher %r: queue full (%d entries), dropping the oldest "
                "entries (counted in stats().dropped); last error: %s",
                self.service_name,
                self._queue.capacity,
                self._last_error,
            )
        if warn_closed:
            _LOGGER.warning(
                "logs-sse publisher %r is closed; logs published after close() are dropped",
                self.service_name,
            )
        return accepted

    def _reset_after_fork(self) -> None:
        # Called in a forked child (gunicorn/uWSGI workers forked from a
        # preloaded app): the parent's worker thread does not exist there, its
        # locks may be held, and the parent still owns (and will send) the
        # entries queued before the fork.
        self._queue.clear()
        self._init_runtime_state()

    def _drop_retry_if_full_locked(self, incoming: int) -> int:
        """Makes room for ``incoming`` entries by dropping the batch awaiting its retry.

        That batch holds the oldest entries and counts towards
        ``max_queue_size``, so drop-oldest drops it first; it goes whole,
        since a retry must not change its bytes. Returns how many it held.
        """
        retry = self._retry
        if retry is None or len(self._queue) + len(retry) + incoming <= self._queue.capacity:
            return 0
        self._retry = None
        self._in_flight = 0
        self._dropped += len(retry)
        return len(retry)

    def _drained_locked(self) -> bool:
        return not self._queue and not self._in_flight and self._retry is None

    def _start_worker_locked(self) -> None:
        self._worker = threading.Thread(
            target=self._run, name=f"logs-sse-publisher-{self.service_name}", daemon=True
        )
        self._worker.start()

    # ------------------------------------------------------ worker side

    def _run(self) -> None:
        while True:
            with self._lock:
                batch = self._next_batch_locked()
                if batch is None:
                    self._idle.notify_all()
                    return
                self._in_flight = len(batch)
            try:
                self._deliver(batch)
            except Exception:  # noqa: BLE001 - the worker must survive anything
                _LOGGER.exception("logs-sse publisher %r: unexpected error", self.service_name)
                with self._lock:
                    if self._retry is batch:
                        self._retry = None
                    self._failed += len(batch)
            finally:
                with self._lock:
                    self._in_flight = len(self._retry) if self._retry is not None else 0
                    if self._drained_locked():
                        self._idle.notify_all()

    def _next_batch_locked(self) -> Optional[Batch]:
        """Waits for a batch worth sending; ``None`` when the worker must exit.

        A batch waiting for its retry goes first, as it was (its back-off is
        over). Otherwise a batch is taken when it is full
        (``max_batch_size``), when its oldest entry has waited
        ``flush_interval``, or at once on flush/close.
        """
        while True:
            if self._stopping:
                return None
            if self._retry is not None:
                batch, self._retry = self._retry, None
                return batch
            size = len(self._queue)
            if size == 0:
                if self._closed:
                    return None
                self._idle.notify_all()
                self._work.wait()
                continue
            if size >= self._max_batch_size or self._flush_requests or self._closed:
                break
            remaining = self._queue.oldest().queued_at + self._flush_interval - time.monotonic()
            if remaining <= 0:
                break
            self._work.wait(remaining)
        return Batch(self._queue.take(self._max_batch_size, self._batch_bytes))

    def _deliver(self, batch: Batch) -> None:
        outcome = self._transport.post_batch(batch.body, batch.key)
        with self._lock:
            self._requests += 1
        if outcome.kind == tx.OK:
            self._recovered()
            self._count_accepted(batch, outcome)
        elif outcome.kind == tx.RETRY:
            self._retry_later(batch, outcome)
        elif outcome.kind == tx.TOO_LARGE and len(batch) > 1:
            # The gateway's body limit is lower than max_batch_bytes: send
            # smaller batches from now on, starting with this one. Nothing of
            # it was stored, so its halves are new batches with new keys.
            with self._lock:
                self._batch_bytes = max(1, len(batch.body) // 2)
                self._dropped += self._queue.push_front(batch.entries)
                self._in_flight = 0
        else:
            self._recovered()
            self._give_up(batch, outcome)

    def _count_accepted(self, batch: Batch, outcome: tx.Outcome) -> None:
        body = outcome.body or {}
        accepted = _count_field(body, "accepted", len(batch))
        if accepted is None:
            accepted = len(batch)  # a 2xx without the usual body: trust it
        # Gateways without idempotency support send no `duplicates`: none.
        duplicates = _count_field(body, "duplicates", accepted) or 0
        rejected = len(batch) - accepted
        with self._lock:
            self._sent += accepted
            self._duplicates += duplicates
            self._failed += rejected
        if rejected:
            errors = body.get("errors")
            first = errors[0] if isinstance(errors, list) and errors else {}
            if not isinstance(first, dict):
                first = {}
            detail = tx.Outcome(
                tx.REJECTED,
                int(first.get("status", outcome.status) or outcome.status),
                str(first.get("code", "rejected")),
                f"item {first.get('index', '?')} of a batch: {first.get('message', '')}",
            )
            self._report(detail, rejected)

    def _retry_later(self, batch: Batch, outcome: tx.Outcome) -> None:
        with self._lock:
            if self._stopping:
                self._dropped += len(batch)
                self._in_flight = 0
                return
            self._retries += 1
            # Kept aside whole, not put back in the queue: re-taken from
            # there it could grow with newer entries and get another key,
            # and the gateway would store what it already had again.
            self._retry = batch
            self._drop_retry_if_full_locked(0)
            self._failures_in_a_row += 1
            attempt = self._failures_in_a_row
            self._last_error = (
                f"{outcome.status} {outcome.code}: {outcome.message}"
                if outcome.status
                else f"network error: {outcome.message}"
            )
            queued = len(self._queue) + (len(self._retry) if self._retry is not None else 0)
        if attempt == 1:
            _LOGGER.warning(
                "logs-sse publisher %r: gateway unavailable (%s); keeping %d log(s) "
                "queued and retrying",
                self.service_name,
                self._last_error,
                queued,
            )
        cap = min(self._retry_backoff_max, self._retry_backoff_min * 2 ** min(attempt - 1, 30))
        delay = random.uniform(0, cap)  # full jitter
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, self._max_retry_after))
        with self._lock:
            self._work.wait_for(lambda: self._stopping, timeout=delay)

    def _recovered(self) -> None:
        with self._lock:
            failures, self._failures_in_a_row = self._failures_in_a_row, 0
        if failures:
            _LOGGER.info(
                "logs-sse publisher %r: gateway reachable again after %d failed attempt(s)",
                self.service_name,
                failures,
            )

    def _give_up(self, batch: Batch, outcome: tx.Outcome) -> None:
        with self._lock:
            self._failed += len(batch)
        self._report(outcome, len(batch))

    def _report(self, outcome: tx.Outcome, count: int) -> None:
        """Logs a permanent failure once per (status, code); calls on_error always."""
        error = GatewayError(outcome.status, outcome.code, outcome.message, count)
        with self._lock:
            key = (outcome.status, outcome.code)
            first = key not in self._reported
            self._reported.add(key)
            self._last_error = str(error)
        if first:
            hint = {
                401: "the gateway does not accept this service_token",
                403: "this service_token is not granted the service of these logs (%r%s)"
                % (
                    self.service_name,
                    ""
                    if self.function_service_name == self.service_name
                    else f", or {self.function_service_name!r} for function logs",
                ),
            }.get(outcome.status, "these logs can never be accepted")
            _LOGGER.error(
                "logs-sse publisher %r: %s (%s); %d log(s) dropped and counted as failed. "
                "Further failures like this one are counted in stats().failed without "
                "being logged again.",
                self.service_name,
                error,
                hint,
                count,
            )
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:  # noqa: BLE001 - a faulty callback must not stop delivery
                _LOGGER.exception("logs-sse publisher %r: on_error raised", self.service_name)


def _close_all_at_exit() -> None:
    """Delivers what is queued when the interpreter exits (atexit)."""
    for publisher in list(_LIVE):
        try:
            publisher.close()
        except Exception:  # noqa: BLE001 - exit must go on
            _LOGGER.exception("logs-sse publisher: close at exit failed")


def _after_fork_in_child() -> None:
    for publisher in list(_LIVE):
        publisher._reset_after_fork()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
