// Two micro frontends, built separately (one by Vite, one by webpack, each
// with its own copy of this package and of React), mounted on one page,
// share one client and one EventSource; each sees only its logs, and the
// connection stays until the last of them lets go.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { eventSources, launchBrowser, newPage } from '../support/browser.js';
import { publish, stats } from '../support/gateway.js';
import { eventually, mount, openApp, registrySize, uniqueWorkspace, unmount, waitConnected, waitForCount } from '../support/app.js';

const gateway = inject('gatewayUrl');
const baseUrl = inject('baseUrl');
let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launchBrowser();
  page = await newPage(browser);
  await openApp(page, baseUrl, '/both/', ['vite', 'webpack']);
});
afterAll(async () => {
  await browser?.close();
});

test('two separately built bundles on one page share one connection', async () => {
  // Two copies of the package really are on the page.
  const copies = await page.evaluate(() => {
    const h = (window as any).harnesses;
    return { different: h.vite.createLogsClient !== h.webpack.createLogsClient };
  });
  expect(copies.different).toBe(true);

  const ws = uniqueWorkspace('mfe');
  const etl = `logs:etl:${ws}:wf1`;
  const fn = `logs:function:${ws}:fn1`;
  await mount(page, 'vite', { id: 'etl', panels: [{ id: 'etl', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf1' } }] });
  await mount(page, 'webpack', {
    id: 'fn',
    strict: true,
    panels: [{ id: 'fn', options: { service: 'function', workspace_id: ws, workflow_id: 'fn1' } }],
  });
  await waitConnected(page, 'vite', 'etl');
  await waitConnected(page, 'webpack', 'fn');

  await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'wf1' }, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  await publish(gateway, { service: 'function', workspace_id: ws, workflow_id: 'fn1' }, [{ f: 1 }, { f: 2 }]);
  expect((await waitForCount(page, 'vite', 'etl', 3)).logs).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  expect((await waitForCount(page, 'webpack', 'fn', 2)).logs).toEqual([{ f: 1 }, { f: 2 }]);

  const counted = await eventSources(page);
  console.log(`two bundles: EventSources created ${counted.created}, open ${counted.open}, at most ${counted.maxOpen} at once; shared clients ${await registrySize(page)}`);
  // The bundles mount one after the other: when the second's channel comes
  // after the first stream opened, the client moves to a new stream with
  // both channels (closing the old one first), so up to two are created
  // over time, but never two at once.
  expect(counted.created).toBeLessThanOrEqual(2);
  expect(counted.maxOpen).toBe(1);
  expect(counted.open).toBe(1);
  expect(await registrySize(page)).toBe(1);
  const s = await stats(gateway);
  expect(s.subscriptions[etl]).toBe(1);
  expect(s.subscriptions[fn]).toBe(1);

  // The Vite micro frontend leaves (its copy may have created the client):
  // the webpack one keeps the connection and its logs.
  await unmount(page, 'vite', 'etl');
  await eventually(() => stats(gateway), (st) => st.subscriptions[etl] === undefined, `gateway still streams ${etl}`);
  await publish(gateway, { service: 'function', workspace_id: ws, workflow_id: 'fn1' }, [{ f: 3 }]);
  expect((await waitForCount(page, 'webpack', 'fn', 3)).logs).toEqual([{ f: 1 }, { f: 2 }, { f: 3 }]);
  expect((await eventSources(page)).open).toBe(1);
  expect(await registrySize(page)).toBe(1);

  await unmount(page, 'webpack', 'fn');
  await eventually(() => eventSources(page), (c) => c.open === 0, 'EventSource still open after the last unmount');
  await eventually(() => registrySize(page), (n) => n === 0, 'shared client not released');
});
