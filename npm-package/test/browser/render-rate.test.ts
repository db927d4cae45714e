// At most one React render per animation frame per hook, whatever the log
// rate: 2,000 logs/s for 10 s from the real gateway into three hooks
// (two workflow channels and their service-level channel). Renders and
// frames are counted in the page and printed; the ratio is asserted, never
// a duration.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { eventSources, launchBrowser, newPage } from '../support/browser.js';
import { publishItems } from '../support/gateway.js';
import { mount, openApp, uniqueWorkspace, waitConnected, waitForPanel } from '../support/app.js';

const gateway = inject('gatewayUrl');
const baseUrl = inject('baseUrl');
const RATE = 2000; // logs per second
const SECONDS = 10;
const TICK_MS = 10; // 100 bursts a second: more than the ~60 frames, so bursts share frames
let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launchBrowser();
  page = await newPage(browser);
  await openApp(page, baseUrl, '/vite/', ['vite']);
});
afterAll(async () => {
  await browser?.close();
});

test(`${RATE} logs/s for ${SECONDS} s cause at most one render per frame per hook`, { timeout: 90_000 }, async () => {
  const ws = uniqueWorkspace('rate');
  const ids = ['wf1', 'wf2', 'all'];
  await mount(page, 'vite', {
    id: 'rate',
    panels: [
      { id: 'wf1', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf1', maxLogs: 200 } },
      { id: 'wf2', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf2', maxLogs: 200 } },
      { id: 'all', options: { service: 'etl', workspace_id: ws, maxLogs: 200 } },
    ],
  });
  for (const id of ids) await waitConnected(page, 'vite', id);

  // Renders and frames are counted over the same window: read and start
  // (later: stop and read) in one evaluation each.
  const rendersBefore: Record<string, number> = await page.evaluate(() => {
    const harness = (window as any).harnesses.vite;
    (window as any).stopFrames = harness.countFrames();
    return { ...harness.renders };
  });

  // Publish RATE logs/s in ticks of TICK_MS, alternating the two workflows.
  const perTick = (RATE * TICK_MS) / 1000;
  const ticks = (SECONDS * 1000) / TICK_MS;
  const started = Date.now();
  let seq = 0;
  for (let tick = 0; tick < ticks; tick += 1) {
    const items = Array.from({ length: perTick }, () => {
      seq += 1;
      return { service: 'etl', workspace_id: ws, workflow_id: seq % 2 === 1 ? 'wf1' : 'wf2', logData: { seq, msg: `log ${seq}` } };
    });
    await publishItems(gateway, 'etl', items);
    const wait = started + (tick + 1) * TICK_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const publishSeconds = (Date.now() - started) / 1000;

  const all = await waitForPanel(page, 'vite', 'all', `(s) => s.lastLog && s.lastLog.seq === ${seq}`, 30_000);
  const wf1 = await waitForPanel(page, 'vite', 'wf1', `(s) => s.lastLog && s.lastLog.seq === ${seq - 1}`);
  const wf2 = await waitForPanel(page, 'vite', 'wf2', `(s) => s.lastLog && s.lastLog.seq === ${seq}`);
  const { frames, rendersAfter } = await page.evaluate(() => ({
    frames: (window as any).stopFrames() as number,
    rendersAfter: { ...(window as any).harnesses.vite.renders } as Record<string, number>,
  }));

  console.log(`published ${seq} logs in ${publishSeconds.toFixed(1)} s (${Math.round(seq / publishSeconds)} logs/s); ${frames} animation frames`);
  const renders: Record<string, number> = {};
  for (const id of ids) {
    renders[id] = rendersAfter[id]! - rendersBefore[id]!;
    console.log(`  hook ${id.padEnd(4)}: ${renders[id]} renders, ${(renders[id]! / frames).toFixed(3)} renders per frame, ${(seq / renders[id]!).toFixed(1)} logs per render`);
  }

  // Every hook got its logs, in publish order, bounded by maxLogs.
  expect(all.logs.map((log) => log.seq)).toEqual(Array.from({ length: 200 }, (_, i) => seq - 199 + i));
  expect(wf1.logs.map((log) => log.seq)).toEqual(Array.from({ length: 200 }, (_, i) => seq - 399 + 2 * i));
  expect(wf2.logs.map((log) => log.seq)).toEqual(Array.from({ length: 200 }, (_, i) => seq - 398 + 2 * i));
  // At most one render per frame per hook (one frame of slack: the counting
  // loop and the store's flush may start in different frames).
  for (const id of ids) {
    expect(renders[id], `renders of ${id}`).toBeGreaterThan(0);
    expect(renders[id], `renders of ${id} vs ${frames} frames`).toBeLessThanOrEqual(frames + 1);
  }
  expect((await eventSources(page)).created).toBe(1);
});
