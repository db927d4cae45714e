"""Channel segment validation: the rule of ``protocol/src/channel.rs``.

The gateway rejects a bad segment too, but only after the log has been queued,
batched and sent, far from the line of code that made the mistake. Checking
here makes the mistake raise at the call, with the same wording the gateway
uses.
"""

from __future__ import annotations

import re

from .errors import InvalidIdError

#: Maximum length of one channel segment, in bytes.
MAX_SEGMENT_LEN = 64

_ALLOWED = re.compile(r"[A-Za-z0-9_.\-]*\Z")
_FIRST_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


def validate_segment(field: str, value: object) -> str:
    """Returns ``value`` if it is a valid channel segment, else raises.

    ``field`` names the argument in the message (``workspace_id``,
    ``workflow_id``, ...). Integers are accepted and converted, because many
    services keep numeric workspace and workflow ids; ``bool`` is not an id.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidIdError(
            field, f"{field} must be a str (or int), got {type(value).__name__}"
        )
    text = str(value)
    if not text:
        raise InvalidIdError(field, f"{field} is empty")
    if not _ALLOWED.match(text):
        bad = _FIRST_BAD.search(text)
        assert bad is not None
        position = len(text[: bad.start()].encode("utf-8"))
        raise InvalidIdError(
            field,
            f"{field} contains {bad.group()!r} at byte {position}; "
            "only A-Z, a-z, 0-9, '_', '.' and '-' are allowed",
        )
    if len(text) > MAX_SEGMENT_LEN:
        raise InvalidIdError(
            field,
            f"{field} is {len(text)} bytes long; the limit is {MAX_SEGMENT_LEN}",
        )
    return text
