"""Which workspace and resource the current code is working for.

:class:`~logs_sse_publisher.LogsSSEHandler` needs a workspace id and one
resource id for every record it publishes. Passing them through ``extra=`` on
every logging call is tedious; instead a request handler or job sets them
once::

    with log_context(workspace_id=ws, workflow_id=wf):
        run_pipeline()          # every logger.info() inside is streamed

The context lives in a :mod:`contextvars` variable, so it follows the code
across threads started with ``contextvars.copy_context()``, asyncio tasks and
Flask's per-request threads without leaking between concurrent requests.
"""

from __future__ import annotations

import contextlib
import contextvars
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from .validation import validate_segment

#: The id fields a context may hold.
CONTEXT_FIELDS = ("workspace_id", "workflow_id", "function_id", "resource_id")
_RESOURCE_FIELDS = CONTEXT_FIELDS[1:]

_EMPTY: Mapping[str, str] = MappingProxyType({})
_CONTEXT: "contextvars.ContextVar[Mapping[str, str]]" = contextvars.ContextVar(
    "logs_sse_publisher_context", default=_EMPTY
)


def _merged(ids: Mapping[str, Any]) -> Mapping[str, str]:
    unknown = sorted(set(ids) - set(CONTEXT_FIELDS))
    if unknown:
        raise TypeError(
            f"log context takes {', '.join(CONTEXT_FIELDS)}; unknown: {', '.join(unknown)}"
        )
    resources = [field for field in _RESOURCE_FIELDS if ids.get(field) is not None]
    if len(resources) > 1:
        raise TypeError(
            f"log context takes one of workflow_id, function_id or resource_id, "
            f"got {' and '.join(resources)}"
        )
    merged = dict(_CONTEXT.get())
    if resources:
        # An inner context naming a resource replaces the outer one's resource.
        for field in _RESOURCE_FIELDS:
            merged.pop(field, None)
    for field, value in ids.items():
        if value is not None:
            merged[field] = validate_segment(field, value)
    return MappingProxyType(merged)


@contextlib.contextmanager
def log_context(**ids: Any) -> Iterator[Mapping[str, str]]:
    """Sets ids for the logs of the enclosed block (also usable as a decorator).

    Takes ``workspace_id`` and one of ``workflow_id``, ``function_id`` or
    ``resource_id``; ids are validated here, so a bad id raises at the
    ``with`` line. Nested contexts add to (and override) the outer one.
    """
    token = _CONTEXT.set(_merged(ids))
    try:
        yield _CONTEXT.get()
    finally:
        _CONTEXT.reset(token)


def bind_log_context(**ids: Any) -> "contextvars.Token[Mapping[str, str]]":
    """Sets ids until :func:`reset_log_context` is called with the token.

    For frameworks with separate "before" and "after" hooks, e.g. Flask's
    ``before_request`` / ``teardown_request`` (store the token on ``g``).
    """
    return _CONTEXT.set(_merged(ids))


def reset_log_context(token: "contextvars.Token[Mapping[str, str]]") -> None:
    """Restores the context that was current before :func:`bind_log_context`."""
    _CONTEXT.reset(token)


def current_log_context() -> Mapping[str, str]:
    """The ids set for the current context (read-only; empty if none)."""
    return _CONTEXT.get()
