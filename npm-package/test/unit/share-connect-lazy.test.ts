import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RawClient } from '../../src/registry.js';
import type { Diagnostic } from '../../src/types.js';
import { FakeClient } from './fake-client.js';
import { Page, locks, pages, settleAll, useFakeTabs } from './fake-tabs.js';

// The leader mode's code (leader-link.ts and the owner) is a chunk that
// connect.ts imports only when a tab takes that mode. Here that import is
// made to fail or to never finish: the tab must then open a stream of its
// own (the per-tab client, with the token getter), say why in a
// diagnostic, and take no part in the election.
const calls: unknown[][] = [];
const created: FakeClient[] = [];
vi.mock('../../src/wasm.js', () => ({
  createRawClient: async (...args: unknown[]): Promise<RawClient> => {
    calls.push(args);
    const client = new FakeClient(args[5]);
    created.push(client);
    return client;
  },
}));

/** How the import of leader-link.js behaves in the next test. */
let chunk: 'fails' | 'hangs' | 'loads' = 'fails';
let imported = 0;
vi.mock('../../src/share/leader-link.js', async (importOriginal) => {
  imported += 1;
  if (chunk === 'fails') throw new Error('Failed to fetch dynamically imported module: /assets/leader-link.js');
  if (chunk === 'hangs') await new Promise(() => undefined);
  return importOriginal();
});
const { LEADER_LOAD_MS } = await import('../../src/share/connect.js');
/** connect.ts and what it imports, loaded afresh (so the chunk's import runs the mock again). */
let createTabClient: (typeof import('../../src/share/connect.js'))['createTabClient'];
useFakeTabs(() => {
  throw new Error('these tests connect through createTabClient');
});

const GW = 'http://gateway.test/api/logs/stream';
const getToken = async () => 'jwt';
const diagnostics: Diagnostic[] = [];
const options = () => ({
  key: `${GW}|anonymous`,
  gatewayUrl: GW,
  withCredentials: false,
  tuning: { lingerMs: 10, onDiagnostic: (d: Diagnostic) => diagnostics.push(d) },
  getToken,
  shareAcrossTabs: true,
});

beforeEach(async () => {
  calls.length = 0;
  created.length = 0;
  diagnostics.length = 0;
  imported = 0;
  vi.resetModules();
  ({ createTabClient } = await import('../../src/share/connect.js'));
});
afterEach(() => {
  for (const client of created) client.close();
});

/** Creates the tab's client in a browser with an election and no SharedWorker. */
function startTab(): Promise<RawClient> {
  const tab = new Page('one');
  pages.push(tab);
  return tab.run(() => {
    vi.stubGlobal('navigator', { locks: locks.facade(tab) });
    return createTabClient(options());
  });
}

/** The tab fell back to its own stream: the per-tab client, outside the election. */
function expectOwnStream(client: RawClient): void {
  expect(created).toHaveLength(1);
  expect(client).toBe(created[0]);
  expect(calls).toEqual([[GW, false, { lingerMs: 10, onDiagnostic: expect.any(Function) }, undefined, getToken]]);
  expect(locks.holder).toBeNull();
  expect(locks.waiting()).toEqual([]);
}

describe('the leader chunk', () => {
  test('that fails to load leaves the tab on a stream of its own, with a diagnostic', async () => {
    chunk = 'fails';
    const client = await startTab();
    await settleAll();
    expect(imported).toBe(1);
    expectOwnStream(client);
    expect(diagnostics).toEqual([
      {
        kind: 'sharing',
        message: expect.stringMatching(/^the code of the leader tab mode did not load \(.+\): this tab opens a stream of its own$/),
      },
    ]);
  });

  test('that never loads is given up after LEADER_LOAD_MS', async () => {
    chunk = 'hangs';
    let settled = false;
    const pending = startTab().finally(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(LEADER_LOAD_MS - 1);
    expect(settled).toBe(false);
    expect(created).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    const client = await pending;
    expectOwnStream(client);
    expect(diagnostics).toEqual([{ kind: 'sharing', message: expect.stringContaining(`not loaded within ${LEADER_LOAD_MS / 1000} s`) }]);
  });

  test.each([
    ['without onDiagnostic', {}],
    [
      'with an onDiagnostic that throws',
      {
        onDiagnostic: () => {
          throw new Error('broken callback');
        },
      },
    ],
  ])('%s, the failure goes to console.warn and the tab still streams', async (_, extra) => {
    chunk = 'fails';
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const tab = new Page('one');
      pages.push(tab);
      const client = await tab.run(() => {
        vi.stubGlobal('navigator', { locks: locks.facade(tab) });
        return createTabClient({ ...options(), tuning: { lingerMs: 10, ...extra } });
      });
      expect(client).toBe(created[0]);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('the code of the leader tab mode did not load'));
    } finally {
      warn.mockRestore();
    }
  });

  test('that loads makes the tab a leader, and is imported only then', async () => {
    chunk = 'loads';
    // Per tab (sharing off): the chunk is not imported.
    const own = await createTabClient({ ...options(), shareAcrossTabs: false });
    expect(own).toBe(created[0]);
    expect(imported).toBe(0);
    const client = await startTab();
    await settleAll();
    expect(imported).toBe(1);
    expect(client.status).toMatchObject({ sharing: 'leader' });
    expect(diagnostics).toEqual([]);
    client.close();
  });
});
