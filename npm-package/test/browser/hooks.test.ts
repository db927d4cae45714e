// The React provider and hooks in headless Chromium against the real
// gateway, through the Vite builds of the test app (the packed package):
// once with React 19 and once with React 18.
import type { Browser, Page } from 'playwright-core';
import type { Bundle } from '../support/app.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, test } from 'vitest';
import { eventSources, launchBrowser, newPage } from '../support/browser.js';
import { publish, stats } from '../support/gateway.js';
import {
  eventually,
  mount,
  openApp,
  panel,
  registrySize,
  setPanels,
  uniqueWorkspace,
  unmount,
  waitConnected,
  waitForCount,
  waitForPanel,
} from '../support/app.js';

const gateway = inject('gatewayUrl');
const baseUrl = inject('baseUrl');
let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  await page.context().close();
});

const seqs = (logs: Record<string, unknown>[]): unknown[] => logs.map((log) => log.seq);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each([
  { app: 'vite' as Bundle, path: '/vite/', react: '19' },
  { app: 'react18' as Bundle, path: '/react18/', react: '18' },
])('useLogsSSE with React $react ($app build)', ({ app, path, react }) => {
  beforeEach(async () => {
    page = await newPage(browser);
    await openApp(page, baseUrl, path, [app]);
    const version = await page.evaluate((name) => (window as any).harnesses[name].reactVersion, app);
    expect(version.split('.')[0]).toBe(react);
  });

  test('components on different channels share one EventSource and each sees only its logs', async () => {
    const ws = uniqueWorkspace();
    await mount(page, app, {
      id: 'r1',
      panels: [
        { id: 'wf1', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf1' } },
        { id: 'wf2', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf2' } },
        { id: 'all', options: { channel: `logs:etl:${ws}` } },
        { id: 'faas', options: { service: 'faas', workspace_id: ws, workflow_id: 'wf1' } },
      ],
    });
    for (const id of ['wf1', 'wf2', 'all', 'faas']) await waitConnected(page, app, id);

    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'wf1' }, range(1, 5).map((seq) => ({ seq, wf: 'wf1' })));
    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'wf2' }, range(1, 3).map((seq) => ({ seq, wf: 'wf2' })));
    await publish(gateway, { service: 'faas', workspace_id: ws, workflow_id: 'wf1' }, range(1, 2).map((seq) => ({ seq, fn: true })));

    const wf1 = await waitForCount(page, app, 'wf1', 5);
    const wf2 = await waitForCount(page, app, 'wf2', 3);
    const all = await waitForCount(page, app, 'all', 8);
    const faas = await waitForCount(page, app, 'faas', 2);

    expect(wf1.logs).toEqual(range(1, 5).map((seq) => ({ seq, wf: 'wf1' })));
    expect(wf2.logs).toEqual(range(1, 3).map((seq) => ({ seq, wf: 'wf2' })));
    expect(faas.logs).toEqual([{ seq: 1, fn: true }, { seq: 2, fn: true }]);
    // The service-level channel gets both workflows, in publish order.
    expect(all.logs).toEqual([...wf1.logs, ...wf2.logs]);
    expect(all.entries.map((e) => e.channel)).toEqual([...Array(5).fill(`logs:etl:${ws}:wf1`), ...Array(3).fill(`logs:etl:${ws}:wf2`)]);
    expect(wf1.lastLog).toEqual({ seq: 5, wf: 'wf1' });
    expect(wf1.connectionStatus).toBe('open');

    const counted = await eventSources(page);
    console.log(`EventSources created: ${counted.created}, open: ${counted.open}`);
    expect(counted.created).toBe(1);
    expect(counted.open).toBe(1);
    const gatewayStats = await stats(gateway);
    for (const channel of [`logs:etl:${ws}:wf1`, `logs:etl:${ws}:wf2`, `logs:etl:${ws}`, `logs:faas:${ws}:wf1`]) {
      expect(gatewayStats.subscriptions[channel], channel).toBe(1);
    }
  });

  test('StrictMode mounts open one connection and lose or repeat nothing', async () => {
    const ws = uniqueWorkspace();
    await mount(page, app, {
      id: 'strict',
      strict: true,
      panels: [
        { id: 's1', options: { service: 'etl', workspace_id: ws, workflow_id: 'a' } },
        { id: 's2', options: { service: 'etl', workspace_id: ws, workflow_id: 'b', persistence: true } },
      ],
    });
    await waitConnected(page, app, 's1');
    await waitConnected(page, app, 's2');
    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'a' }, range(1, 10).map((seq) => ({ seq })));
    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'b' }, range(1, 10).map((seq) => ({ seq })));
    const s1 = await waitForCount(page, app, 's1', 10);
    const s2 = await waitForCount(page, app, 's2', 10);
    expect(seqs(s1.logs)).toEqual(range(1, 10));
    expect(seqs(s2.logs)).toEqual(range(1, 10));

    const counted = await eventSources(page);
    console.log(`StrictMode: EventSources created ${counted.created}, open ${counted.open}`);
    expect(counted.created).toBe(1);
    expect(counted.open).toBe(1);
    expect(await registrySize(page)).toBe(1);
    const gatewayStats = await stats(gateway);
    expect(gatewayStats.subscriptions[`logs:etl:${ws}:a`]).toBe(1);
    expect(gatewayStats.subscriptions[`logs:etl:${ws}:b`]).toBe(1);
  });

  test('unmounting a component releases its channel; unmounting the provider closes the connection', async () => {
    const ws = uniqueWorkspace();
    const keep = `logs:etl:${ws}:keep`;
    const drop = `logs:etl:${ws}:drop`;
    await mount(page, app, {
      id: 'r',
      panels: [
        { id: 'keep', options: { channel: keep } },
        { id: 'drop', options: { channel: drop } },
      ],
    });
    await waitConnected(page, app, 'keep');
    await waitConnected(page, app, 'drop');
    expect((await stats(gateway)).subscriptions[drop]).toBe(1);

    await setPanels(page, app, 'r', [{ id: 'keep', options: { channel: keep } }]);
    // The channel lingers briefly (lingerMs), then leaves the stream.
    await eventually(() => stats(gateway), (s) => s.subscriptions[drop] === undefined, `gateway still streams ${drop}`);
    expect((await stats(gateway)).subscriptions[keep]).toBe(1);
    // The remaining component keeps receiving after the stream changed.
    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'keep' }, [{ seq: 1 }, { seq: 2 }]);
    expect(seqs((await waitForCount(page, app, 'keep', 2)).logs)).toEqual([1, 2]);
    expect((await eventSources(page)).open).toBe(1);
    // A channel added later joins the same stream too (the control endpoint).
    const late = `logs:etl:${ws}:late`;
    await setPanels(page, app, 'r', [
      { id: 'keep', options: { channel: keep } },
      { id: 'late', options: { channel: late } },
    ]);
    await waitConnected(page, app, 'late');
    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'late' }, [{ seq: 1 }]);
    expect(seqs((await waitForCount(page, app, 'late', 1)).logs)).toEqual([1]);
    expect((await stats(gateway)).subscriptions[late]).toBe(1);
    expect((await eventSources(page)).created, 'channel changes keep the first EventSource').toBe(1);

    await unmount(page, app, 'r');
    await eventually(() => eventSources(page), (c) => c.open === 0, 'EventSource still open after unmount');
    await eventually(() => registrySize(page), (n) => n === 0, 'shared client not released');
    await eventually(() => stats(gateway), (s) => s.subscriptions[keep] === undefined, `gateway still streams ${keep}`);
  });

  test('maxLogs and filter hold', async () => {
    const ws = uniqueWorkspace();
    await mount(page, app, {
      id: 'r',
      panels: [
        {
          id: 'e1',
          options: {
            service: 'etl',
            workspace_id: ws,
            workflow_id: 'wf',
            maxLogs: 5,
            filter: { field: 'execution_id', equals: 'e1' },
          },
        },
        { id: 'every', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf', maxLogs: 7 } },
      ],
    });
    await waitConnected(page, app, 'e1');
    await waitConnected(page, app, 'every');
    const logs = range(1, 20).map((seq) => ({ seq, execution_id: seq % 2 === 1 ? 'e1' : 'e2' }));
    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'wf' }, logs);

    const e1 = await waitForPanel(page, app, 'e1', '(s) => s.lastLog && s.lastLog.seq === 19');
    const every = await waitForPanel(page, app, 'every', '(s) => s.lastLog && s.lastLog.seq === 20');
    expect(e1.logs).toEqual([11, 13, 15, 17, 19].map((seq) => ({ seq, execution_id: 'e1' })));
    expect(seqs(every.logs)).toEqual(range(14, 20));
  });

  test('persistence survives remounting the tree; logs published meanwhile come from history; clear() empties it', async () => {
    const ws = uniqueWorkspace();
    const options = { service: 'etl', workspace_id: ws, workflow_id: 'wf', maxLogs: 200, persistence: true, persistenceKey: `etl-logs-${ws}-wf` };
    const target = { service: 'etl', workspace_id: ws, workflow_id: 'wf' };
    await mount(page, app, { id: 'p1', panels: [{ id: 'p', options }] });
    await waitConnected(page, app, 'p');
    await publish(gateway, target, range(1, 10).map((seq) => ({ seq })));
    await waitForCount(page, app, 'p', 10);

    await unmount(page, app, 'p1');
    // Wait until the page's client is really gone, so the remount starts
    // from sessionStorage and not from a client still in memory.
    await eventually(() => registrySize(page), (n) => n === 0, 'shared client not released');
    await page.evaluate((a) => delete (window as any).harnesses[a].panels.p, app);
    await publish(gateway, target, [{ seq: 11 }, { seq: 12 }]);

    await mount(page, app, { id: 'p2', panels: [{ id: 'p', options }] });
    const restored = await waitForCount(page, app, 'p', 12);
    expect(seqs(restored.logs)).toEqual(range(1, 12));
    await waitConnected(page, app, 'p');
    await publish(gateway, target, [{ seq: 13 }]);
    expect(seqs((await waitForCount(page, app, 'p', 13)).logs)).toEqual(range(1, 13));

    await page.evaluate((a) => (window as any).harnesses[a].clear('p'), app);
    await waitForPanel(page, app, 'p', '(s) => s.logs.length === 0');
    await publish(gateway, target, [{ seq: 14 }]);
    expect(seqs((await waitForCount(page, app, 'p', 1)).logs)).toEqual([14]);

    await unmount(page, app, 'p2');
    await eventually(() => registrySize(page), (n) => n === 0, 'shared client not released');
    await page.evaluate((a) => delete (window as any).harnesses[a].panels.p, app);
    await mount(page, app, { id: 'p3', panels: [{ id: 'p', options }] });
    await waitConnected(page, app, 'p');
    const afterClear = await panel(page, app, 'p');
    expect(seqs(afterClear!.logs)).toEqual([14]);
  });

  test('reports why it is not connected: unreachable gateway, missing wasm file', async () => {
    await mount(page, app, {
      id: 'down',
      provider: { gatewayUrl: 'http://127.0.0.1:9/api/logs/stream', backoffMinMs: 50, backoffMaxMs: 200 },
      panels: [{ id: 'down', options: { service: 'etl', workspace_id: 'ws', workflow_id: 'wf' } }],
    });
    // The first failure says `network` until the probe of the stream URL
    // answers; then the reason is known.
    const down = await waitForPanel(page, app, 'down', "(s) => s.error !== null && s.error.code !== 'network'");
    expect(['reconnecting', 'failed']).toContain(down.connectionStatus);
    expect(down.error!.code).toBe('gateway_unreachable');
    expect(down.isConnected).toBe(false);

    // A fresh page whose first client is told to load the module from a 404.
    await page.context().close();
    page = await newPage(browser);
    await openApp(page, baseUrl, path, [app]);
    await mount(page, app, {
      id: 'nowasm',
      provider: { wasmUrl: '/missing.wasm' },
      panels: [{ id: 'nowasm', options: { service: 'etl', workspace_id: 'ws', workflow_id: 'wf' } }],
    });
    const nowasm = await waitForPanel(page, app, 'nowasm', '(s) => s.error !== null');
    expect(nowasm.connectionStatus).toBe('failed');
    expect(nowasm.error!.code).toBe('wasm_unavailable');
    expect(nowasm.error!.message).toContain('WebAssembly');
  });

  test('createLogsClient() joins the connection of the providers on the page', async () => {
    const ws = uniqueWorkspace('core');
    await mount(page, app, { id: 'r', panels: [{ id: 'hook', options: { service: 'etl', workspace_id: ws, workflow_id: 'a' } }] });
    await waitConnected(page, app, 'hook');
    await page.evaluate(
      ([a, channel]) => {
        const w = window as any;
        w.core = w.harnesses[a].createLogsClient({ gatewayUrl: '/api/logs/stream' });
        w.coreUpdates = [];
        w.coreSub = w.core.subscribe(channel, { maxLogs: 10 }, (u: { type: string }) => w.coreUpdates.push(u.type));
      },
      [app, `logs:etl:${ws}:b`] as const,
    );
    await page.waitForFunction(() => (window as any).coreUpdates.includes('status'));
    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'b' }, [{ n: 1 }, { n: 2 }]);
    await page.waitForFunction(() => (window as any).coreSub.snapshot().length === 2);
    const logs = await page.evaluate(() => (window as any).coreSub.snapshot().map((e: { logData: unknown }) => e.logData));
    expect(logs).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await registrySize(page)).toBe(1);
    expect((await eventSources(page)).open).toBe(1);
    // Closing it leaves the provider's connection alone.
    await page.evaluate(() => (window as any).core.close());
    await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'a' }, [{ n: 3 }]);
    expect((await waitForCount(page, app, 'hook', 1)).logs).toEqual([{ n: 3 }]);
    expect((await eventSources(page)).open).toBe(1);
  });

  test('a hook outside the provider throws a clear error', async () => {
    const error = await page.evaluate((a) => (window as any).harnesses[a].mountOrphan(), app);
    expect(error.name).toBe('LogsSSEError');
    expect(error.code).toBe('no_provider');
    expect(error.message).toContain('useLogsSSE() must be used inside <LogsSSEProvider>');
  });

  test('waits while ids are missing and reports invalid ids and refused channels', async () => {
    const ws = uniqueWorkspace();
    await mount(page, app, {
      id: 'r',
      panels: [
        { id: 'waiting', options: { service: 'etl', workspace_id: ws, workflow_id: null } },
        { id: 'bad', options: { service: 'etl', workspace_id: 'a:b', workflow_id: 'wf' } },
        { id: 'invalid', options: { channel: 'logs:etl' } },
      ],
    });
    const bad = await waitForPanel(page, app, 'bad', '(s) => s.error !== null');
    expect(bad.error!.code).toBe('invalid_channel');
    const invalid = await waitForPanel(page, app, 'invalid', '(s) => s.error !== null');
    expect(invalid.error!.code).toBe('invalid_channel');
    const waiting = await panel(page, app, 'waiting');
    expect(waiting!.connectionStatus).toBe('idle');
    expect(waiting!.channel).toBeNull();
    expect((await eventSources(page)).created).toBe(0);
  });
});
