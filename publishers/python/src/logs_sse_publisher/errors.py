"""Exceptions raised synchronously for caller mistakes.

Only mistakes the caller can fix in code raise: a bad id, a missing token, a
log that can never be accepted. Everything that depends on the gateway
(network errors, 5xx, 429, 401/403) is handled in the background and shows up
in :class:`~logs_sse_publisher.PublisherStats` and the ``logs_sse_publisher``
logger, never as an exception in the caller's request handler.
"""

from __future__ import annotations


class PublisherError(Exception):
    """Base class of every exception this package raises."""


class ConfigError(PublisherError, ValueError):
    """The publisher was constructed with a missing or out-of-range option."""


class InvalidIdError(PublisherError, ValueError):
    """A service, workspace or resource id breaks the channel segment rule.

    Segments are 1 to 64 bytes of ``[A-Za-z0-9_.-]`` (the rule of
    ``protocol/src/channel.rs``), so they can be embedded in URLs, SSE frames
    and storage keys without escaping.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        #: The publish API field the error is about, e.g. ``"workspace_id"``.
        self.field = field


class LogTooLargeError(PublisherError, ValueError):
    """The serialised ``log_data`` is larger than the gateway accepts per log."""


class GatewayError(PublisherError):
    """A gateway answer that was not a success, as passed to ``on_error``.

    Never raised into the caller: it is handed to the ``on_error`` callback
    (and logged) when the gateway rejects entries for good, e.g. 401/403.
    """

    def __init__(self, status: int, code: str, message: str, dropped: int) -> None:
        super().__init__(f"gateway answered {status} {code}: {message}")
        self.status = status
        self.code = code
        self.gateway_message = message
        #: How many entries were given up because of this answer.
        self.dropped = dropped
