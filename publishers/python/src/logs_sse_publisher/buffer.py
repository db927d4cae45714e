"""The bounded in-memory queue between callers and the background worker.

Drop policy: **drop-oldest**. When the queue is full, adding an entry
discards the oldest queued entry (and counts it). For a live log view the
newest lines (the error that just happened, "workflow finished") matter most,
and the gateway's history already covers what a viewer missed. The same rule
applies when a batch the gateway found too large (413) is put back at the
front to be split: if new entries filled the queue meanwhile, the put-back
(oldest) entries are the ones dropped. A batch that failed transiently is not
put back here: the publisher keeps it whole to send it again unchanged.

The queue is not thread-safe by itself: the publisher guards every call with
its condition variable, so that "append and decide whether to wake the
worker" is one atomic step.
"""

from __future__ import annotations

import collections
from typing import Deque, List


class Entry:
    """One encoded publish item (a JSON object) and when it was queued."""

    __slots__ = ("body", "queued_at")

    def __init__(self, body: bytes, queued_at: float) -> None:
        self.body = body
        self.queued_at = queued_at


class BoundedQueue:
    """FIFO of :class:`Entry` holding at most ``capacity`` items (drop-oldest)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: Deque[Entry] = collections.deque()

    def __len__(self) -> int:
        return len(self._items)

    def oldest(self) -> Entry:
        return self._items[0]

    def push(self, entry: Entry) -> int:
        """Appends ``entry``; returns how many old entries were dropped (0 or 1)."""
        dropped = 0
        if len(self._items) >= self.capacity:
            self._items.popleft()
            dropped = 1
        self._items.append(entry)
        return dropped

    def push_front(self, entries: List[Entry]) -> int:
        """Puts ``entries`` back at the front, keeping their order.

        Returns how many entries were dropped to respect the capacity; the
        dropped ones are the oldest, i.e. the first of ``entries``.
        """
        self._items.extendleft(reversed(entries))
        dropped = 0
        while len(self._items) > self.capacity:
            self._items.popleft()
            dropped += 1
        return dropped

    def take(self, max_items: int, max_bytes: int) -> List[Entry]:
        """Removes and returns the oldest entries forming one batch.

        The batch holds at most ``max_items`` entries and, unless a single
        entry is larger on its own, at most ``max_bytes`` bytes of bodies.
        """
        batch: List[Entry] = []
        size = 0
        while self._items and len(batch) < max_items:
            entry = self._items[0]
            # +1 for the comma that joins items in the JSON array.
            if batch and size + len(entry.body) + 1 > max_bytes:
                break
            batch.append(self._items.popleft())
            size += len(entry.body) + 1
        return batch

    def clear(self) -> int:
        """Empties the queue; returns how many entries were discarded."""
        count = len(self._items)
        self._items.clear()
        return count
