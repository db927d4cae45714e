"""JSON encoding of log entries, done once, in the caller's thread.

Encoding at publish time (rather than in the background worker) has three
purposes: the entry becomes an immutable snapshot (the caller may reuse or
mutate its dict afterwards), a value that cannot be encoded raises at the
call that passed it, and the worker can size batches in bytes without
re-encoding anything.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from pathlib import PurePath
from typing import Any

def _default(value: Any) -> Any:
    """Encodes the non-JSON types that routinely appear in service logs.

    Anything else raises ``TypeError``: silently turning an arbitrary object
    into its ``repr`` would hide the mistake until someone reads the UI.
    """
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(
        f"log_data contains a {type(value).__name__}, which is not JSON serializable"
    )


# allow_nan=False: NaN and Infinity are not JSON and the gateway rejects them.
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default
)


def _loose_default(item: Any) -> Any:
    try:
        return _default(item)
    except TypeError:
        return str(item)


_loose_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_loose_default
)


def encode_json(value: Any) -> str:
    """Compact JSON text of ``value``.

    Raises ``TypeError`` for an unsupported type and ``ValueError`` for NaN or
    infinite floats.
    """
    return _encoder.encode(value)


def encode_loose(value: Any) -> str:
    """Like :func:`encode_json` but falls back to ``str()`` for unknown types.

    Used by the logging handler, where ``extra=`` fields come from arbitrary
    call sites and one odd value must not lose the whole record.
    """
    return _loose_encoder.encode(value)
