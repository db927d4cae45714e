// Combining the logs a micro frontend fetched from its own API with the live
// logs of the stream, when the two overlap: each log once, in order.

/** How to identify and order logs; both lists hold the same kind of log. */
export interface MergeLogsOptions<T> {
  /**
   * Identifies a log across both sources (e.g. `(log) => log.id`). Logs with
   * the same key are the same log: only one copy is kept.
   */
  key: (log: T) => string | number;
  /**
   * Sort key, e.g. a timestamp or sequence number. Ties keep API logs before
   * live ones, and each list's own order. Without it, the API logs (older)
   * come first, then the live logs, each in its own order.
   */
  order?: (log: T) => number | string | Date;
  /** Which copy of a duplicate is kept. Default `'live'` (the stream's copy). */
  prefer?: 'live' | 'initial';
  /** `'asc'` (default): oldest first, like `logs`; `'desc'`: newest first. */
  direction?: 'asc' | 'desc';
  /** Keep only the newest `limit` logs. Default: all. */
  limit?: number;
}

/**
 * Merges the stream's logs (`live`, e.g. `useLogsSSE().logs`) with logs
 * fetched from an API (`initial`), removing duplicates and ordering them.
 * Returns a new array; the inputs are not changed.
 */
export function mergeLogs<T>(
  live: readonly T[],
  initial: readonly T[],
  options: MergeLogsOptions<T>,
): T[] {
  const { key, order, prefer = 'live', direction = 'asc', limit } = options;
  const preferred = prefer === 'live' ? live : initial;
  const preferredKeys = new Set<string | number>();
  for (const log of preferred) preferredKeys.add(key(log));

  // Keep each key once: the preferred list wins, and within one list the
  // first occurrence wins.
  const seen = new Set<string | number>();
  const keep = (log: T, fromPreferred: boolean): boolean => {
    const id = key(log);
    if (!fromPreferred && preferredKeys.has(id)) return false;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  };
  const older = initial.filter((log) => keep(log, preferred === initial));
  const newer = live.filter((log) => keep(log, preferred === live));

  let merged: T[];
  if (order === undefined) {
    merged = [...older, ...newer];
  } else {
    // Decorate once so the accessor runs n times, not n log n; the index
    // makes the sort stable with API logs first on ties.
    const decorated = [...older, ...newer].map((log, index) => ({ log, index, rank: rankOf(order(log)) }));
    decorated.sort((a, b) => compare(a.rank, b.rank) || a.index - b.index);
    merged = decorated.map((item) => item.log);
  }
  if (limit !== undefined && limit >= 0 && merged.length > limit) {
    merged = merged.slice(merged.length - limit);
  }
  return direction === 'desc' ? merged.reverse() : merged;
}

function rankOf(value: number | string | Date): number | string {
  if (value instanceof Date) return value.getTime();
  return value;
}

function compare(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') {
    // NaN (a missing timestamp) sorts first instead of breaking the order.
    if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : -1;
    if (Number.isNaN(b)) return 1;
    return a - b;
  }
  const left = String(a);
  const right = String(b);
  return left < right ? -1 : left > right ? 1 : 0;
}
