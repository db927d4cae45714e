'use strict';

/**
 * The bounded in-memory queue between callers and the sender.
 *
 * Drop policy: **drop-oldest**. When the queue is full, adding an entry
 * discards the oldest queued entry (and the publisher counts it). For a live
 * log view the newest lines matter most (the error that just happened,
 * "workflow finished"), and the gateway's history already covers what a
 * viewer missed. The same rule applies when a batch answered 413 is put back
 * at the front to be split: if new entries filled the queue meanwhile, the
 * put-back (oldest) entries are the ones dropped. (A batch that failed
 * transiently is not put back: the sender retries it as it was.)
 *
 * A ring of slots would avoid the occasional compaction below, but an array
 * with a moving head is simpler and amortised O(1) per entry.
 */

/** @typedef {{ body: string, bytes: number, queuedAt: number }} Entry */

class BoundedQueue {
  /** @param {number} capacity */
  constructor(capacity) {
    this.capacity = capacity;
    /** @type {Entry[]} */
    this.items = [];
    this.head = 0;
  }

  get length() {
    return this.items.length - this.head;
  }

  /** @returns {Entry | undefined} */
  oldest() {
    return this.items[this.head];
  }

  /**
   * Appends an entry; returns how many old entries were dropped (0 or 1).
   * @param {Entry} entry
   */
  push(entry) {
    let dropped = 0;
    if (this.length >= this.capacity) {
      this.items[this.head] = undefined;
      this.head += 1;
      dropped = 1;
    }
    this.items.push(entry);
    this.compact();
    return dropped;
  }

  /**
   * Puts entries back at the front, keeping their order; returns how many
   * were dropped to respect the capacity (the oldest, i.e. the first ones).
   * @param {Entry[]} entries
   */
  pushFront(entries) {
    const rest = this.items.slice(this.head);
    this.items = entries.concat(rest);
    this.head = 0;
    const excess = Math.max(0, this.items.length - this.capacity);
    if (excess > 0) this.items.splice(0, excess);
    return excess;
  }

  /**
   * Removes and returns the oldest entries forming one batch: at most
   * `maxItems`, and at most `maxBytes` unless one entry is larger alone.
   * @param {number} maxItems
   * @param {number} maxBytes
   * @returns {Entry[]}
   */
  take(maxItems, maxBytes) {
    const batch = [];
    let size = 2; // the brackets of the JSON array
    while (this.length > 0 && batch.length < maxItems) {
      const entry = this.items[this.head];
      if (batch.length > 0 && size + entry.bytes + 1 > maxBytes) break;
      batch.push(entry);
      size += entry.bytes + 1;
      this.items[this.head] = undefined;
      this.head += 1;
    }
    this.compact();
    return batch;
  }

  /** Empties the queue; returns how many entries were discarded. */
  clear() {
    const count = this.length;
    this.items = [];
    this.head = 0;
    return count;
  }

  /** Releases the consumed prefix once it dominates the array. */
  compact() {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

module.exports = { BoundedQueue };
