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

  test('passes the tuning options to the wasm client', async () => {
    const onDiagnostic = () => undefined;
    const client = createLogsClient({ gatewayUrl: GW, lingerMs: 10, backoffMaxMs: 5000, onDiagnostic });
    await client.ready();
    expect(createRawClient.mock.calls[0]).toEqual([GW, false, { lingerMs: 10, backoffMaxMs: 5000, onDiagnostic }, undefined, expect.any(Function)]);
    // Without a token source the getter answers null: no token (cookies or anonymous).
    expect(await (createRawClient.mock.calls[0] as unknown[])[4]()).toBeNull();
    expect(await client.getToken()).toBeNull();
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

  test('subscribe() forwards history (and resumeFrom) only when set', async () => {
    const client = createLogsClient({ gatewayUrl: GW });
    await client.ready();
    client.subscribe('logs:etl:ws1:wf1', { history: 200, maxLogs: 50 });
    client.subscribe('logs:etl:ws1:wf2', { resumeFrom: 'last:5' });
    client.subscribe('logs:etl:ws1:wf3', { history: undefined });
    const [a, b, c] = created[0]!.subscriptions;
    expect(a!.options).toEqual({ maxLogs: 50, history: 200 });
    expect(b!.options).toEqual({ resumeFrom: 'last:5' });
    expect(c!.options).toEqual({});
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

/** The getter the (first) wasm client was created with. */
const wasmGetter = (call = 0) => (createRawClient.mock.calls[call] as unknown[])[4] as (() => Promise<string | null>) | undefined;

describe('subscriber tokens', () => {

  test('a getter (sync or async) becomes the wasm client\'s getToken', async () => {
    let n = 0;
    const client = createLogsClient({ gatewayUrl: GW, token: async () => `jwt-${(n += 1)}` });
    await client.ready();
    const getter = wasmGetter();
    expect(getter).toBeTypeOf('function');
    expect(await getter!()).toBe('jwt-1');
    expect(await getter!()).toBe('jwt-2');
    expect(await client.getToken()).toBe('jwt-3');
    client.close();
    delete (globalThis as Record<symbol, unknown>)[KEY];
    const sync = createLogsClient({ gatewayUrl: GW, token: () => 'plain' });
    await sync.ready();
    expect(await wasmGetter(1)!()).toBe('plain');
    sync.close();
  });

  test('a fixed token is given through the getter, and a changed token is used at the next call', async () => {
    const handle = new ClientHandle({ gatewayUrl: GW, token: 'first' });
    handle.retain();
    await handle.ready();
    const getter = wasmGetter()!;
    expect(await getter()).toBe('first');
    handle.setToken(async () => 'refreshed');
    expect(await getter()).toBe('refreshed');
    handle.setToken(null);
    expect(await getter()).toBeNull();
    handle.release();
  });

  test('a throwing getter rejects, so the wasm client reports token_getter_failed', async () => {
    const client = createLogsClient({
      gatewayUrl: GW,
      token: () => {
        throw new Error('signed out');
      },
    });
    await client.ready();
    await expect(wasmGetter()!()).rejects.toThrow('signed out');
    client.close();
  });

  describe('two users of one page connection with different token sources: the first one wins', () => {
    let warn: ReturnType<typeof vi.spyOn>;
    beforeEach(() => {
      warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    });
    afterEach(() => {
      warn.mockRestore();
    });

    test('the second getter is not used and a warning says so, once', async () => {
      const first = vi.fn(async () => 'token-of-first');
      const second = vi.fn(async () => 'token-of-second');
      const a = createLogsClient({ gatewayUrl: GW, token: first });
      const b = createLogsClient({ gatewayUrl: GW, token: second });
      const c = createLogsClient({ gatewayUrl: GW, token: async () => 'third' });
      await Promise.all([a.ready(), b.ready(), c.ready()]);
      expect(created).toHaveLength(1);
      expect(await wasmGetter()!()).toBe('token-of-first');
      expect(first).toHaveBeenCalledTimes(1);
      expect(second).not.toHaveBeenCalled();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/created with another token source; it keeps using that one/);
      expect(String(warn.mock.calls[0]![0])).toContain(GW);
      a.close();
      b.close();
      c.close();
    });

    test('the same getter, or none, joins silently', async () => {
      const getToken = async () => 't';
      const a = createLogsClient({ gatewayUrl: GW, token: getToken });
      const b = createLogsClient({ gatewayUrl: GW, token: getToken });
      const c = createLogsClient({ gatewayUrl: GW });
      await Promise.all([a.ready(), b.ready(), c.ready()]);
      expect(created).toHaveLength(1);
      expect(warn).not.toHaveBeenCalled();
      a.close();
      b.close();
      c.close();
    });

    test('a token offered to a connection created without one is not used, with a warning', async () => {
      const a = createLogsClient({ gatewayUrl: GW });
      const b = createLogsClient({ gatewayUrl: GW, token: 'late' });
      await Promise.all([a.ready(), b.ready()]);
      expect(await wasmGetter()!()).toBeNull();
      expect(String(warn.mock.calls[0]![0])).toMatch(/created with no token/);
      a.close();
      b.close();
    });

    test('the creator coming back (remount) with a new getter function is not a conflict', async () => {
      const handle = new ClientHandle({ gatewayUrl: GW, releaseDelayMs: 1000, token: async () => 'one' });
      handle.retain();
      await handle.ready();
      handle.release();
      handle.setToken(async () => 'two'); // a re-render's new inline function
      handle.retain();
      await handle.ready();
      expect(created).toHaveLength(1);
      expect(warn).not.toHaveBeenCalled();
      expect(await wasmGetter()!()).toBe('two');
      handle.release();
    });
  });
});

describe('a token that arrives after the first render', () => {
  test('retries a connection refused without it, once', async () => {
    const handle = new ClientHandle({ gatewayUrl: GW });
    handle.retain();
    await handle.ready();
    const fake = created[0]!;
    // The session is still loading: the first stream went without a token.
    fake.setStatus({ state: 'failed', reason: 'unauthorized', code: 'missing_token' });
    expect(fake.reconnects).toBe(0);
    handle.setToken(async () => 'now-signed-in');
    expect(fake.reconnects).toBe(1);
    expect(await wasmGetter()!()).toBe('now-signed-in');
    // Another refusal is not retried again by itself.
    fake.setStatus({ state: 'failed', reason: 'unauthorized', code: 'invalid_signature' });
    expect(fake.reconnects).toBe(1);
    // A new inline getter (same meaning) retries nothing; a new fixed token does.
    handle.setToken(async () => 'now-signed-in');
    expect(fake.reconnects).toBe(1);
    handle.setToken('t1');
    handle.setToken('t2');
    expect(fake.reconnects).toBe(2);
    handle.release();
  });

  test('arriving while the first stream still opens, it retries once that stream is refused', async () => {
    const handle = new ClientHandle({ gatewayUrl: GW });
    handle.retain();
    await handle.ready();
    const fake = created[0]!;
    fake.setStatus({ state: 'connecting' });
    handle.setToken('token');
    expect(fake.reconnects).toBe(0);
    fake.setStatus({ state: 'failed', reason: 'unauthorized', code: 'missing_token' });
    expect(fake.reconnects).toBe(1);
    fake.setStatus({ state: 'failed', reason: 'unauthorized', code: 'missing_token' });
    expect(fake.reconnects).toBe(1);
    handle.release();
  });

  test('a stream that opened without it (anonymous or cookie) is left alone', async () => {
    const handle = new ClientHandle({ gatewayUrl: GW });
    handle.retain();
    await handle.ready();
    const fake = created[0]!;
    fake.setStatus({ state: 'open' });
    handle.setToken('token');
    fake.setStatus({ state: 'failed', reason: 'forbidden' });
    expect(fake.reconnects).toBe(0);
    handle.release();
  });

  test('only the handle whose getter the connection uses retries', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const owner = new ClientHandle({ gatewayUrl: GW });
    owner.retain();
    await owner.ready();
    const joiner = new ClientHandle({ gatewayUrl: GW });
    joiner.retain();
    await joiner.ready();
    created[0]!.setStatus({ state: 'failed', reason: 'unauthorized' });
    joiner.setToken('not-used');
    expect(created[0]!.reconnects).toBe(0);
    owner.release();
    joiner.release();
    warn.mockRestore();
  });
});
