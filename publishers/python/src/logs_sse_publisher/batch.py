"""One publish request as it goes on the wire: its entries, key and body.

A batch is serialised once, when it is taken from the queue, and gets a fresh
random ``Idempotency-Key``. A transient failure sends the very same object
again, so a retry is byte-identical and carries the same key: the gateway
recognises a batch it already stored (its answer was lost) and stores
nothing twice. A batch split after a 413 is taken anew and gets new keys.
"""

from __future__ import annotations

import uuid
from typing import List

from .buffer import Entry


def new_idempotency_key() -> str:
    """A key of 122 random bits (a UUID4 as 32 hex digits), from os.urandom."""
    return uuid.uuid4().hex


class Batch:
    """Entries sent as one JSON array under one idempotency key."""

    __slots__ = ("entries", "key", "body")

    def __init__(self, entries: List[Entry]) -> None:
        self.entries = entries
        self.key = new_idempotency_key()
        self.body = b"[" + b",".join(entry.body for entry in entries) + b"]"

    def __len__(self) -> int:
        return len(self.entries)
