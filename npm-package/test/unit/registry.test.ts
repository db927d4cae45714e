import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { acquireShared, pageRegistry, registryKey, type RawClient } from '../../src/registry.js';
import { FakeClient } from './fake-client.js';

const KEY = Symbol.for('@datashop/logs-sse-client:registry:v1');

beforeEach(() => {
  delete (globalThis as Record<symbol, unknown>)[KEY];
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const options = { releaseDelayMs: 1000, createdBy: 'test' };

describe('page registry', () => {
  test('one client per key, created once, reference counted, closed after the release delay', async () => {
    const fake = new FakeClient();
    const create = vi.fn(async (): Promise<RawClient> => fake);
    const a = acquireShared('k', create, options);
    const b = acquireShared('k', create, options);
    expect(a).toBe(b);
    expect(create).toHaveBeenCalledTimes(1);
    expect(await a.ready).toBe(fake);
    expect(a.client).toBe(fake);
    expect(a.refs).toBe(2);

    a.release();
    b.release();
    expect(fake.closed).toBe(false); // not yet: a remount may come
    vi.advanceTimersByTime(999);
    expect(fake.closed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(fake.closed).toBe(true);
    expect(fake.freed).toBe(true);
    expect(pageRegistry().entries.size).toBe(0);
  });

  test('acquiring again within the release delay keeps the client (StrictMode, route change)', async () => {
    const fake = new FakeClient();
    const create = vi.fn(async (): Promise<RawClient> => fake);
    const first = acquireShared('k', create, options);
    await first.ready;
    first.release();
    vi.advanceTimersByTime(500);
    const second = acquireShared('k', create, options);
    vi.advanceTimersByTime(5000);
    expect(second).toBe(first);
    expect(create).toHaveBeenCalledTimes(1);
    expect(fake.closed).toBe(false);
  });

  test('another copy of the package (a second module instance) joins the same client', async () => {
    const fake = new FakeClient();
    const entry = acquireShared('k', async () => fake, options);
    vi.resetModules();
    const copy = await import('../../src/registry.js');
    const createInCopy = vi.fn(async (): Promise<RawClient> => new FakeClient());
    const joined = copy.acquireShared('k', createInCopy, options);
    expect(joined).toBe(entry);
    expect(createInCopy).not.toHaveBeenCalled();
    expect(await joined.ready).toBe(fake);
    expect(entry.refs).toBe(2);
  });

  test('different gateways or credentials modes get different clients', () => {
    const create = async (): Promise<RawClient> => new FakeClient();
    const a = acquireShared(registryKey('http://gw/api/logs/stream', false), create, options);
    const b = acquireShared(registryKey('http://gw/api/logs/stream', true), create, options);
    const c = acquireShared(registryKey('http://other/api/logs/stream', false), create, options);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(registryKey('http://gw/api/../api/logs/stream', false)).toBe(registryKey('http://gw/api/logs/stream', false));
  });

  test('a failed creation is forgotten so the next user retries', async () => {
    const failing = acquireShared('k', async () => Promise.reject(new Error('404 wasm')), options);
    await expect(failing.ready).rejects.toThrow('404 wasm');
    expect(pageRegistry().entries.size).toBe(0);
    const fake = new FakeClient();
    const retry = acquireShared('k', async () => fake, options);
    expect(retry).not.toBe(failing);
    expect(await retry.ready).toBe(fake);
  });

  test('a client that becomes ready after everyone left is closed at once', async () => {
    const fake = new FakeClient();
    let resolve!: (client: RawClient) => void;
    const entry = acquireShared('k', () => new Promise<RawClient>((r) => (resolve = r)), options);
    entry.release();
    vi.advanceTimersByTime(1000);
    resolve(fake);
    await expect(entry.ready).rejects.toThrow('released');
    expect(fake.closed).toBe(true);
  });
});
