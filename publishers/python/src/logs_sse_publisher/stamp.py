"""Gives a log an ``id`` and a ``timestamp`` when it has none of its own.

Log pages key their rows by ``id`` and show ``timestamp``, so every log
should carry both; a service that sets its own keeps them. Only ``dict``
log data is stamped: a list, a string or any other value is sent as given.
The same rules hold in the Node SDK.

- ``id``: a random UUID v4 (:func:`uuid.uuid4`), unique without any
  coordination between processes.
- ``timestamp``: ISO 8601 in UTC with milliseconds,
  ``2026-12-01T10:00:00.123Z``, taken when the log is published (not sent).
- A key that is missing or ``None`` counts as absent; any other value wins,
  whatever its type. The caller's dict is never modified.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, Optional, Tuple

__all__ = ["stamp_log", "utc_timestamp"]


# The formatted second of the last call: logs come in bursts within one
# second, and formatting a date is most of a stamp's cost. One tuple, so a
# race between threads only formats twice.
_last_second: Tuple[int, str] = (-1, "")


def utc_timestamp(seconds: Optional[float] = None) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-12-01T10:00:00.123Z``."""
    global _last_second
    if seconds is None:
        seconds = time.time()
    whole = math.floor(seconds)
    millis = min(999, int((seconds - whole) * 1000))
    cached, text = _last_second
    if cached != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, text)
    return f"{text}.{millis:03d}Z"


def stamp_log(log_data: Any, seconds: Optional[float] = None) -> Any:
    """``log_data`` itself, or a shallow copy with ``id`` and/or ``timestamp`` added."""
    if not isinstance(log_data, dict):
        return log_data
    needs_id = log_data.get("id") is None
    needs_timestamp = log_data.get("timestamp") is None
    if not needs_id and not needs_timestamp:
        return log_data
    stamped = dict(log_data)
    if needs_id:
        stamped["id"] = str(uuid.uuid4())
    if needs_timestamp:
        stamped["timestamp"] = utc_timestamp(seconds)
    return stamped
