// Counts the logs that arrive in a pane and measures their delivery latency.
//
// A subscription's entries are append-only (new logs at the end, the oldest
// dropped at the front once `maxLogs` is reached) and keep their identity
// across snapshots, so the logs new in a snapshot are the ones after the
// newest entry already seen. Counting them gives the total received, which
// the list cannot show once it is trimmed or virtualized.
import { useLayoutEffect, useRef } from 'react';
import type { LogEntry } from '@datashop/logs-sse-client';
import { nowMs, recordLatency, telemetry } from './telemetry';

class ArrivalTracker {
  private readonly seen = new WeakSet<LogEntry>();
  private last: readonly LogEntry[] | null = null;
  received = 0;
  /** The entries that arrived since the last commit took them (`take`). */
  private pending: LogEntry[] = [];

  /** Idempotent for the same array (React may render twice). */
  update(entries: readonly LogEntry[]): void {
    if (entries === this.last) return;
    this.last = entries;
    let i = entries.length - 1;
    while (i >= 0 && !this.seen.has(entries[i]!)) i -= 1;
    for (let j = i + 1; j < entries.length; j += 1) {
      const entry = entries[j]!;
      this.seen.add(entry);
      this.pending.push(entry);
    }
    this.received += entries.length - 1 - i;
  }

  take(): LogEntry[] {
    const taken = this.pending;
    this.pending = [];
    return taken;
  }
}

function publishedAt(entry: LogEntry): number | null {
  const data = entry.logData as { publishedAt?: unknown } | null;
  return typeof data === 'object' && data !== null && typeof data.publishedAt === 'number' ? data.publishedAt : null;
}

/**
 * Tracks the arrivals of one or more append-only entry lists (the
 * all-services view has three) for the pane `paneId`: returns the total
 * received, records the latency of stamped logs once their rows are in the
 * DOM, and publishes both (and `current()`, the pane's entries) on
 * `window.__datashopDemo`.
 */
export function useArrivals(
  paneId: string,
  lists: readonly (readonly LogEntry[])[],
  current: () => readonly LogEntry[],
): number {
  const trackers = useRef<ArrivalTracker[]>([]);
  while (trackers.current.length < lists.length) trackers.current.push(new ArrivalTracker());
  lists.forEach((entries, i) => trackers.current[i]!.update(entries));
  const received = trackers.current.reduce((sum, t) => sum + t.received, 0);

  const currentRef = useRef(current);
  currentRef.current = current;

  // After the commit: the new rows are in the DOM (the paint follows).
  useLayoutEffect(() => {
    const now = nowMs();
    for (const tracker of trackers.current) {
      for (const entry of tracker.take()) {
        const stamp = publishedAt(entry);
        if (stamp !== null) recordLatency(paneId, now - stamp);
      }
    }
    telemetry().panes[paneId] = { received, entries: () => currentRef.current() };
  });
  useLayoutEffect(
    () => () => {
      delete telemetry().panes[paneId];
    },
    [paneId],
  );
  return received;
}
