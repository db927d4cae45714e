import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RawClient } from '../../src/registry.js';
import type { SubscriptionUpdate } from '../../src/types.js';
import { FakeClient } from './fake-client.js';

// The wasm module cannot run in node; the client's one call into it makes a
// fake instead. Everything else (registry, handle) is the real code.
const created: FakeClient[] = [];
const createRawClient = vi.fn(async (): Promise<RawClient> => {
  const fake = new FakeClient();
  created.push(fake);
  return fake;
});
vi.mock('../../src/wasm.js', () => ({ createRawClient: (...args: unknown[]) => createRawClient(...(args as [])) }));

const { createLogsClient, ClientHandle } = await import('../../src/client.js');

const KEY = Symbol.for('@datashop/logs-sse-client:registry:v1');
const GW = 'http://gateway.test/api/logs/stream';
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

beforeEach(() => {
  delete (globalThis as Record<symbol, unknown>)[KEY];
  created.length = 0;
  createRawClient.mockClear();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('createLogsClient', () => {
  test('clients of the same gateway share one wasm client; another credentials mode gets its own', async () => {
    const a = createLogsClient({ gatewayUrl: GW });
    const b = createLogsClient({ gatewayUrl: GW });
    const c = createLogsClient({ gatewayUrl: GW, withCredentials: true });
    await Promise.all([a.ready(), b.ready(), c.ready()]);
    expect(created).toHaveLength(2);
    expect(createRawClient.mock.calls.map((call) => (call as unknown[]).slice(0, 2))).toEqual([
      [GW, false],
      [GW, true],
    ]);
    a.close();
    b.close();
    c.close();
  });

  test('passes the tuning options to the wasm client and keeps the token', async () => {
    const onDiagnostic = () => undefined;
    const client = createLogsClient({ gatewayUrl: GW, lingerMs: 10, backoffMaxMs: 5000, onDiagnostic, token: async () => 'secret' });
    await client.ready();
    expect(createRawClient.mock.calls[0]).toEqual([GW, false, { lingerMs: 10, backoffMaxMs: 5000, onDiagnostic }, undefined]);
    expect(await client.getToken()).toBe('secret');
    expect(await createLogsClient({ gatewayUrl: GW }).getToken()).toBeNull();
  });

  test('subscribe() before the module is ready connects once it is', async () => {
    const client = createLogsClient({ gatewayUrl: GW });
    const updates: SubscriptionUpdate[] = [];
    const sub = client.subscribe('logs:etl:ws1:wf1', { maxLogs: 5 }, (u) => updates.push(u));
    expect(sub.snapshot()).toEqual([]);
    await client.ready();
    const raw = created[0]!.subscriptions[0]!;
    expect(raw.channel).toBe('logs:etl:ws1:wf1');
    expect(raw.options).toEqual({ maxLogs: 5 });
    raw.push({ a: 1 });
    expect(sub.snapshot().map((e) => e.logData)).toEqual([{ a: 1 }]);
    expect(updates).toEqual([{ type: 'logs', added: 1 }]);
    sub.unsubscribe();
    expect(raw.ended && raw.freed).toBe(true);
    sub.unsubscribe(); // idempotent
  });

  test('the shared client closes after the last user releases it, not before', async () => {
    vi.useFakeTimers();
    const a = createLogsClient({ gatewayUrl: GW, releaseDelayMs: 100 });
    const b = createLogsClient({ gatewayUrl: GW, releaseDelayMs: 100 });
    await vi.advanceTimersByTimeAsync(0);
    const fake = created[0]!;
    a.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(fake.closed).toBe(false);
    b.close();
    await vi.advanceTimersByTimeAsync(99);
    expect(fake.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.closed).toBe(true);
  });

  test('close() ends its own subscriptions and listeners; using it afterwards throws', async () => {
    const client = createLogsClient({ gatewayUrl: GW });
    const sub = client.subscribe('logs:etl:ws1');
    const seen: string[] = [];
    client.onStatus((s) => seen.push(s.state));
    await client.ready();
    created[0]!.setStatus({ state: 'open' });
    // The client's own status once it exists, then its changes.
    expect(seen).toEqual(['idle', 'open']);
    client.close();
    expect(created[0]!.subscriptions[0]!.ended).toBe(true);
    created[0]!.setStatus({ state: 'reconnecting' });
    expect(seen).toEqual(['idle', 'open']);
    expect(() => client.subscribe('logs:etl:ws1')).toThrow(expect.objectContaining({ code: 'closed' }));
    void sub;
  });

  test("the wasm client's subscribe errors arrive as error updates with their code", async () => {
    const client = createLogsClient({ gatewayUrl: GW });
    await client.ready();
    created[0]!.failSubscribe = { code: 'invalid_channel', message: 'bad channel' };
    const updates: SubscriptionUpdate[] = [];
    client.subscribe('nope', {}, (u) => updates.push(u));
    expect(updates).toHaveLength(1);
    const update = updates[0]!;
    expect(update.type === 'error' && update.error.code).toBe('invalid_channel');
  });

  test('a module that fails to load reports wasm_unavailable, and reconnect() retries', async () => {
    createRawClient.mockImplementationOnce(async () => {
      throw new Error('failed to fetch Wasm: 404');
    });
    const client = createLogsClient({ gatewayUrl: GW });
    const updates: SubscriptionUpdate[] = [];
    client.subscribe('logs:etl:ws1', {}, (u) => updates.push(u));
    await expect(client.ready()).rejects.toMatchObject({ code: 'wasm_unavailable' });
    await flush();
    expect(client.status).toMatchObject({ state: 'failed', reason: 'wasm_unavailable' });
    expect(updates.map((u) => u.type)).toEqual(['error']);
    client.reconnect();
    await client.ready();
    expect(client.status.state).toBe('idle');
    expect(created[0]!.subscriptions).toHaveLength(1);
  });

  test('an unused handle (what a provider creates during render) holds nothing', async () => {
    const handle = new ClientHandle({ gatewayUrl: GW });
    await flush();
    expect(createRawClient).not.toHaveBeenCalled();
    handle.retain();
    await handle.ready();
    expect(createRawClient).toHaveBeenCalledTimes(1);
    handle.release();
    await expect(handle.ready()).rejects.toMatchObject({ code: 'closed' });
  });
});
