import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RawClient } from '../../src/registry.js';
import { FrameBatcher } from '../../src/frame.js';
import { FakeClient, manualFrames, type FakeSubscription } from './fake-client.js';

// As in client.test.ts: only the wasm module is replaced by a fake.
const created: FakeClient[] = [];
vi.mock('../../src/wasm.js', () => ({
  createRawClient: async (): Promise<RawClient> => {
    const fake = new FakeClient();
    created.push(fake);
    return fake;
  },
}));
const { createLogsClient } = await import('../../src/client.js');
const { ChannelStore } = await import('../../src/store.js');

const KEY = Symbol.for('@datashop/logs-sse-client:registry:v1');
const GW = 'http://gateway.test/api/logs/stream';
const CHANNEL = 'logs:etl:ws1:wf1';
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** sessionStorage for node. */
class MemoryStorage {
  private readonly items = new Map<string, string>();
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.items.set(key, String(value));
  }
  removeItem(key: string) {
    this.items.delete(key);
  }
}

let frames: ReturnType<typeof manualFrames>;
let batcher: FrameBatcher;

beforeEach(() => {
  delete (globalThis as Record<symbol, unknown>)[KEY];
  created.length = 0;
  frames = manualFrames();
  batcher = new FrameBatcher(frames.request);
  (globalThis as { sessionStorage?: unknown }).sessionStorage = new MemoryStorage();
});
afterEach(() => {
  delete (globalThis as { sessionStorage?: unknown }).sessionStorage;
});

async function started(options = {}) {
  const client = createLogsClient({ gatewayUrl: GW });
  const store = new ChannelStore<Record<string, unknown>>(client, CHANNEL, options, null, batcher);
  const notify = vi.fn();
  const stop = store.subscribe(notify);
  await client.ready();
  const raw = created[0]!.subscriptions.at(-1) as FakeSubscription;
  return { client, store, notify, stop, raw, fake: created[0]! };
}

describe('ChannelStore', () => {
  test('the history option reaches the subscription', async () => {
    const { raw } = await started({ history: 300, persist: true });
    expect(raw.options).toMatchObject({ history: 300, persist: true });
  });

  test('many updates within a frame make one snapshot and one notification', async () => {
    const { store, notify, raw } = await started();
    frames.run();
    notify.mockClear();
    for (let i = 1; i <= 500; i += 1) raw.push({ seq: i });
    expect(notify).not.toHaveBeenCalled();
    expect(store.getSnapshot().logs).toEqual([]);
    frames.run();
    expect(notify).toHaveBeenCalledTimes(1);
    const state = store.getSnapshot();
    expect(state.logs).toHaveLength(500);
    expect(state.logs[0]).toEqual({ seq: 1 });
    expect(state.lastLog).toEqual({ seq: 500 });
    expect(state.entries[499]!.logData).toBe(state.logs[499]);
    expect(Object.isFrozen(state) && Object.isFrozen(state.logs)).toBe(true);
  });

  test('an unchanged store keeps its snapshot object and does not notify', async () => {
    const { store, notify, raw, fake } = await started();
    raw.push({ a: 1 });
    frames.run();
    const before = store.getSnapshot();
    notify.mockClear();
    fake.repeatStatus(); // same status object: nothing changed
    frames.run();
    expect(notify).not.toHaveBeenCalled();
    expect(store.getSnapshot()).toBe(before);
    // A status change gives a new snapshot that keeps the same logs array.
    fake.setStatus({ state: 'open' });
    frames.run();
    expect(notify).toHaveBeenCalledTimes(1);
    expect(store.getSnapshot()).not.toBe(before);
    expect(store.getSnapshot().logs).toBe(before.logs);
  });

  test('connection status and isConnected follow the client and the channel grant', async () => {
    const { store, raw, fake } = await started();
    frames.run();
    expect(store.getSnapshot().connectionStatus).toBe('connecting'); // client idle, but we subscribed
    fake.setStatus({ state: 'open' });
    frames.run();
    expect(store.getSnapshot()).toMatchObject({ connectionStatus: 'open', isConnected: false });
    raw.channelStatus = 'subscribed';
    raw.onUpdate({ type: 'status', status: 'subscribed', replayed: 0 });
    frames.run();
    expect(store.getSnapshot()).toMatchObject({ isConnected: true, channelStatus: 'subscribed', error: null });
    fake.setStatus({ state: 'failed', reason: 'unauthorized', httpStatus: 401, message: 'sign in' });
    frames.run();
    const failed = store.getSnapshot();
    expect(failed).toMatchObject({ connectionStatus: 'failed', isConnected: false });
    expect(failed.error).toMatchObject({ code: 'unauthorized', httpStatus: 401, message: 'sign in' });
  });

  test('a denied channel and a gap are reported', async () => {
    const { store, raw } = await started();
    raw.onUpdate({ type: 'gap', from: 'a-1', to: 'a-9', reason: 'expired' });
    raw.channelStatus = 'denied';
    raw.onUpdate({ type: 'status', status: 'denied', reason: 'not a member', replayed: 0 });
    frames.run();
    const state = store.getSnapshot();
    expect(state.gap).toEqual({ from: 'a-1', to: 'a-9', reason: 'expired' });
    expect(state.error?.code).toBe('denied');
    expect(state.error?.message).toContain('not a member');
  });

  test('unsubscribing and resubscribing at once (StrictMode) keeps the subscription', async () => {
    const { store, stop, raw, fake } = await started();
    raw.push({ a: 1 });
    stop();
    const again = store.subscribe(() => undefined);
    await tick();
    expect(raw.ended).toBe(false);
    expect(fake.subscriptions).toHaveLength(1);
    again();
    await tick();
    expect(raw.ended).toBe(true);
  });

  test('the latest filter is applied to logData as logs arrive', async () => {
    let wanted = 'e1';
    const { store, raw } = await started({ filter: () => (log: Record<string, unknown>) => log.execution_id === wanted });
    raw.push({ execution_id: 'e1', n: 1 }, { execution_id: 'e2', n: 2 });
    wanted = 'e2';
    raw.push({ execution_id: 'e1', n: 3 }, { execution_id: 'e2', n: 4 });
    frames.run();
    expect(store.getSnapshot().logs.map((log) => log.n)).toEqual([1, 4]);
  });

  test('clear() hides the logs held now, also from a later store when persisted', async () => {
    const { store, raw } = await started({ persist: true, persistKey: 'k' });
    raw.push({ n: 1 }, { n: 2 });
    frames.run();
    store.clear();
    expect(store.getSnapshot().logs).toEqual([]);
    raw.push({ n: 3 });
    frames.run();
    expect(store.getSnapshot().logs).toEqual([{ n: 3 }]);
    expect(JSON.parse(sessionStorage.getItem('k:cleared')!)).toHaveLength(2);

    // A remount restores the persisted buffer (which still holds 1 and 2).
    const restoredBuffer = raw.snapshot();
    const client = createLogsClient({ gatewayUrl: GW });
    const again = new ChannelStore<Record<string, unknown>>(client, CHANNEL, { persist: true, persistKey: 'k' }, null, batcher);
    again.subscribe(() => undefined);
    await client.ready();
    (created[0]!.subscriptions.at(-1) as FakeSubscription).setBuffer([...restoredBuffer]);
    (created[0]!.subscriptions.at(-1) as FakeSubscription).push({ n: 4 });
    frames.run();
    expect(again.getSnapshot().logs).toEqual([{ n: 3 }, { n: 4 }]);
  });

  test('the cleared cursors are forgotten once the buffer no longer holds them', async () => {
    const { store, raw } = await started({ persist: true, persistKey: 'k', maxLogs: 2 });
    raw.push({ n: 1 }, { n: 2 });
    store.clear();
    raw.push({ n: 3 }, { n: 4 }); // maxLogs 2 drops 1 and 2
    frames.run();
    expect(store.getSnapshot().logs).toEqual([{ n: 3 }, { n: 4 }]);
    expect(sessionStorage.getItem('k:cleared')).toBeNull();
  });

  test('a store without a channel (ids still loading) stays idle and subscribes nothing', async () => {
    const client = createLogsClient({ gatewayUrl: GW });
    const store = new ChannelStore(client, null, {}, null, batcher);
    store.subscribe(() => undefined);
    await client.ready();
    expect(created[0]!.subscriptions).toHaveLength(0);
    expect(store.getSnapshot()).toMatchObject({ connectionStatus: 'idle', channel: null, logs: [] });
  });
});
