// Backfill (`history`) through the hook and the framework-free client in
// headless Chromium against the real gateway: the last N logs it holds,
// through the filter and within maxLogs, then live; the persisted cursor
// wins over a second backfill.
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, test } from 'vitest';
import { eventSources, launchBrowser, newPage } from '../support/browser.js';
import { publish } from '../support/gateway.js';
import { eventually, mount, openApp, uniqueWorkspace, unmount, waitForCount } from '../support/app.js';

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
beforeEach(async () => {
  page = await newPage(browser);
  await openApp(page, baseUrl, '/vite/', ['vite']);
});
afterEach(async () => {
  await page.context().close();
});

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const logsOf = (seqs: number[]) => seqs.map((seq) => ({ seq, parity: seq % 2 === 0 ? 'even' : 'odd' }));
const seqs = (logs: Record<string, unknown>[]): unknown[] => logs.map((log) => log.seq);
const lastUrl = async (): Promise<string> => decodeURIComponent((await eventSources(page)).urls.at(-1) ?? '');

describe('history (backfill)', () => {
  test('useLogsSSE: the last N logs pass the filter and at most maxLogs stay, then live', async () => {
    const ws = uniqueWorkspace('backfill');
    const target = { service: 'etl', workspace_id: ws, workflow_id: 'wf1' };
    await publish(gateway, target, logsOf(range(1, 30)));
    await mount(page, 'vite', {
      id: 'r',
      panels: [{
        id: 'tail',
        options: { ...target, history: 20, maxLogs: 6, filter: { field: 'parity', equals: 'even' } },
      }],
    });
    // The last 20 are 11..30; their even ones are 12..30; the newest 6 stay.
    const first = await waitForCount(page, 'vite', 'tail', 6);
    expect(seqs(first.logs)).toEqual([20, 22, 24, 26, 28, 30]);
    expect(await lastUrl()).toContain(`logs:etl:${ws}:wf1@last:20`);
    await publish(gateway, target, logsOf(range(31, 34)));
    await eventually(
      async () => seqs((await waitForCount(page, 'vite', 'tail', 6)).logs),
      (s) => s.at(-1) === 34,
      'the live logs',
    );
    expect(seqs((await waitForCount(page, 'vite', 'tail', 6)).logs)).toEqual([24, 26, 28, 30, 32, 34]);
  });

  test('useLogsSSE: a persisted panel remounted after its channel left the stream resumes from its cursor, not a second backfill', async () => {
    const ws = uniqueWorkspace('backfill');
    const target = { service: 'etl', workspace_id: ws, workflow_id: 'wf2' };
    const channel = `logs:etl:${ws}:wf2`;
    await publish(gateway, target, logsOf(range(1, 8)));
    const spec = { id: 'p', panels: [{ id: 'p', options: { ...target, history: 5, persistence: true } }] };
    await mount(page, 'vite', spec);
    expect(seqs((await waitForCount(page, 'vite', 'p', 5)).logs)).toEqual(range(4, 8));
    await unmount(page, 'vite', 'p');
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // past lingerMs (1500): the channel left the stream
    await publish(gateway, target, logsOf(range(9, 10)));
    await mount(page, 'vite', spec);
    const back = await waitForCount(page, 'vite', 'p', 7);
    expect(seqs(back.logs)).toEqual(range(4, 10));
    expect(await lastUrl()).toMatch(new RegExp(`${channel}@[0-9a-f]+-\\d+`));
  });

  test('createLogsClient().subscribe: history N gives the last N logs, then live', async () => {
    const ws = uniqueWorkspace('backfill');
    const target = { service: 'faas', workspace_id: ws, workflow_id: 'flow1' };
    await publish(gateway, target, logsOf(range(1, 12)));
    await page.evaluate((channel) => {
      const w = window as any;
      w.core = w.harnesses.vite.createLogsClient({ gatewayUrl: '/api/logs/stream' });
      w.statuses = [];
      w.coreSub = w.core.subscribe(channel, { history: 5 }, (u: { type: string; replayed?: number }) => {
        if (u.type === 'status') w.statuses.push(u);
      });
    }, `logs:faas:${ws}:flow1`);
    await page.waitForFunction(() => (window as any).coreSub.snapshot().length === 5);
    const read = () => page.evaluate(() => (window as any).coreSub.snapshot().map((e: { logData: { seq: number } }) => e.logData.seq));
    expect(await read()).toEqual(range(8, 12));
    const status = await page.evaluate(() => (window as any).statuses[0]);
    expect(status).toMatchObject({ status: 'subscribed', replayed: 5 });
    await publish(gateway, target, logsOf([13]));
    await page.waitForFunction(() => (window as any).coreSub.snapshot().length === 6);
    expect(await read()).toEqual(range(8, 13));
    // Bad values are refused with a clear error.
    const refused = await page.evaluate(async (channel) => {
      const w = window as any;
      const errors: string[] = [];
      for (const options of [{ history: -1 }, { history: 100_001 }, { history: 3, resumeFrom: 'earliest' }]) {
        w.core.subscribe(channel, options, (u: { type: string; error?: { code: string } }) => {
          if (u.type === 'error') errors.push(u.error!.code);
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      return errors;
    }, `logs:faas:${ws}:flow2`);
    expect(refused).toEqual(['invalid_options', 'invalid_options', 'invalid_options']);
  });
});
