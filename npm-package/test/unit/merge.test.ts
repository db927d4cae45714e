import { describe, expect, test } from 'vitest';
import { mergeLogs } from '../../src/merge.js';

interface Log {
  id: string;
  t: number;
  src?: string;
}
const key = (log: Log) => log.id;
const order = (log: Log) => log.t;
const ids = (logs: Log[]) => logs.map((log) => log.id);

describe('mergeLogs', () => {
  test('overlapping API and live logs come out once each, in time order', () => {
    const api: Log[] = [{ id: 'a', t: 1 }, { id: 'b', t: 2 }, { id: 'c', t: 3, src: 'api' }];
    const live: Log[] = [{ id: 'c', t: 3, src: 'live' }, { id: 'd', t: 4 }, { id: 'e', t: 5 }];
    const merged = mergeLogs(live, api, { key, order });
    expect(ids(merged)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(merged[2]!.src).toBe('live');
  });

  test('prefer: initial keeps the API copy of a duplicate', () => {
    const merged = mergeLogs([{ id: 'c', t: 3, src: 'live' }], [{ id: 'c', t: 3, src: 'api' }], { key, order, prefer: 'initial' });
    expect(merged).toEqual([{ id: 'c', t: 3, src: 'api' }]);
  });

  test('interleaved timestamps are sorted; ties keep API before live and each list in its order', () => {
    const api: Log[] = [{ id: 'a1', t: 1 }, { id: 'a5', t: 5 }, { id: 'a5b', t: 5 }];
    const live: Log[] = [{ id: 'l3', t: 3 }, { id: 'l5', t: 5 }, { id: 'l6', t: 6 }];
    expect(ids(mergeLogs(live, api, { key, order }))).toEqual(['a1', 'l3', 'a5', 'a5b', 'l5', 'l6']);
  });

  test('without an order accessor API logs come first, then live logs', () => {
    const merged = mergeLogs<Log>([{ id: 'x', t: 0 }, { id: 'b', t: 0 }], [{ id: 'a', t: 0 }, { id: 'b', t: 0 }], { key });
    expect(ids(merged)).toEqual(['a', 'x', 'b']);
  });

  test('duplicates inside one list are removed too, first occurrence wins', () => {
    expect(ids(mergeLogs<Log>([{ id: 'a', t: 1 }, { id: 'a', t: 2 }], [], { key, order }))).toEqual(['a']);
  });

  test('dates and ISO strings order correctly; direction desc gives newest first; limit keeps the newest', () => {
    const api = [{ id: '1', at: new Date(1000) }, { id: '2', at: new Date(3000) }];
    const live = [{ id: '3', at: new Date(2000) }, { id: '4', at: new Date(4000) }];
    const k = (l: { id: string }) => l.id;
    expect(mergeLogs(live, api, { key: k, order: (l) => l.at }).map(k)).toEqual(['1', '3', '2', '4']);
    expect(mergeLogs(live, api, { key: k, order: (l) => l.at, direction: 'desc' }).map(k)).toEqual(['4', '2', '3', '1']);
    expect(mergeLogs(live, api, { key: k, order: (l) => l.at, limit: 2 }).map(k)).toEqual(['2', '4']);
    const iso = mergeLogs([{ id: 'b', at: '2024-01-02T00:00:00Z' }], [{ id: 'a', at: '2024-01-01T00:00:00Z' }], { key: k, order: (l) => l.at });
    expect(iso.map(k)).toEqual(['a', 'b']);
  });

  test('a missing (NaN) timestamp sorts first instead of scrambling the rest', () => {
    const merged = mergeLogs<Log>([{ id: 'b', t: 2 }, { id: 'n', t: Number.NaN }], [{ id: 'a', t: 1 }], { key, order });
    expect(ids(merged)).toEqual(['n', 'a', 'b']);
  });

  test('the inputs are not changed', () => {
    const live = Object.freeze([{ id: 'b', t: 2 }]) as readonly Log[];
    const api = Object.freeze([{ id: 'a', t: 1 }]) as readonly Log[];
    expect(ids(mergeLogs(live, api, { key, order, direction: 'desc' }))).toEqual(['b', 'a']);
    expect(ids([...live])).toEqual(['b']);
  });
});
