import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RawClient } from '../../src/registry.js';
import { FakeClient } from './fake-client.js';
import { Page, locks, pages, settleAll, useFakeTabs } from './fake-tabs.js';

// Where a tab's connection lives (connect.ts): the mode the browser allows,
// and the raw client made for it, with the wasm module mocked. The election
// runs on the fake tabs of fake-tabs.ts.
const calls: unknown[][] = [];
const created: FakeClient[] = [];
let failCreate: Error | null = null;
vi.mock('../../src/wasm.js', () => ({
  createRawClient: async (...args: unknown[]): Promise<RawClient> => {
    calls.push(args);
    if (failCreate !== null) throw failCreate;
    const client = new FakeClient(args[5]);
    created.push(client);
    return client;
  },
}));
const { connectLeader } = await import('../../src/share/leader-link.js');
const { availableSharing, createTabClient } = await import('../../src/share/connect.js');
useFakeTabs(connectLeader);

const GW = 'http://gateway.test/api/logs/stream';
const getToken = async () => 'jwt';
const options = (share = true) => ({
  key: `${GW}|anonymous`,
  gatewayUrl: GW,
  withCredentials: false,
  tuning: { lingerMs: 10, onDiagnostic: () => undefined },
  getToken,
  shareAcrossTabs: share,
});

beforeEach(() => {
  calls.length = 0;
  created.length = 0;
  failCreate = null;
});
afterEach(() => {
  for (const client of created) client.close();
});

describe('availableSharing', () => {
  test('opting out, or no document (SSR, a worker), is per tab', () => {
    expect(availableSharing(false)).toBe('tab');
    vi.stubGlobal('document', undefined);
    expect(availableSharing(true)).toBe('tab');
  });

  test('a SharedWorker first, then an election (Web Locks and BroadcastChannel), else per tab', () => {
    // The fake tabs give a document and a BroadcastChannel; no SharedWorker, no locks yet.
    vi.stubGlobal('navigator', {});
    expect(availableSharing(true)).toBe('tab');
    vi.stubGlobal('navigator', { locks: { request: () => Promise.resolve() } });
    expect(availableSharing(true)).toBe('leader');
    vi.stubGlobal('SharedWorker', class {});
    expect(availableSharing(true)).toBe('worker');
    expect(availableSharing(false)).toBe('tab');
    vi.stubGlobal('SharedWorker', undefined);
    vi.stubGlobal('BroadcastChannel', undefined);
    expect(availableSharing(true)).toBe('tab');
  });
});

describe('createTabClient', () => {
  test('per tab: the wasm client itself, with the token getter and the full tuning', async () => {
    const client = await createTabClient(options(false));
    expect(client).toBe(created[0]);
    expect(calls).toEqual([[GW, false, { lingerMs: 10, onDiagnostic: expect.any(Function) }, undefined, getToken]]);
  });

  test('leader: a tab client over the transport (no token getter, no diagnostic function), with sharing in its status', async () => {
    const tab = new Page('one');
    pages.push(tab);
    const pending = tab.run(() => {
      vi.stubGlobal('navigator', { locks: locks.facade(tab) });
      return createTabClient(options());
    });
    await settleAll();
    const client = await pending;
    // The tab's own client (over the transport), then the owner's once this tab leads.
    const [inner, owner] = calls;
    expect(inner).toEqual([GW, false, { lingerMs: 10 }, undefined, undefined, { open: expect.any(Function), fetch: expect.any(Function) }]);
    expect(owner![2]).toMatchObject({ lingerMs: 10, maxSubscriptions: 4096 });
    expect(client.status).toMatchObject({ sharing: 'leader' });
    client.close();
  });

  test('a tab client that cannot be created leaves the owner and rejects', async () => {
    failCreate = new Error('no module');
    const tab = new Page('one');
    pages.push(tab);
    const pending = tab.run(() => {
      vi.stubGlobal('navigator', { locks: locks.facade(tab) });
      return createTabClient(options());
    });
    await expect(pending).rejects.toThrow('no module');
    await settleAll();
    // It left the election: no lock held or asked for, and it does not lead.
    expect(locks.holder).toBeNull();
    expect(locks.waiting()).toEqual([]);
    expect(created).toEqual([]);
  });

  test('a SharedWorker that fails to start falls back to per tab when there is no election either', async () => {
    vi.stubGlobal('BroadcastChannel', undefined);
    vi.stubGlobal(
      'SharedWorker',
      class extends EventTarget {
        readonly port = new MessageChannel().port1;
        constructor() {
          super();
          setTimeout(() => this.dispatchEvent(new Event('error')), 5);
        }
      },
    );
    const pending = createTabClient(options());
    await vi.advanceTimersByTimeAsync(50);
    const client = await pending;
    expect(client).toBe(created[0]);
    expect(calls[0]![4]).toBe(getToken);
  });
});
