// 2. Routing: each page shows exactly the logs published to its channels,
// none of the others — other workflows, other services, other workspaces.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  Gateway, eventually, launchBrowser, lines, newPage, pane, publish, range, screenshot, uniqueWorkspace, waitLive,
} from './harness.mjs';

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('routing').start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

test('each page shows exactly the logs of its channels', async () => {
  const ws = uniqueWorkspace();
  const other = uniqueWorkspace('other');
  const context = await browser.newContext({ viewport: { width: 1440, height: 860 } });
  const side = await newPage(context);
  await side.goto(`${gateway.url}/dashboard?ws=${ws}&workflow=wf-a&flow=flow-a&function=fn-a`);
  for (const id of ['indata', 'faas', 'functions']) await waitLive(side, id);
  const all = await newPage(context);
  await all.goto(`${gateway.url}/all?ws=${ws}`);
  await waitLive(all, 'all');

  // What each page must show, and neighbours it must not.
  await publish(gateway, 'etl', ws, 'wf-a', lines('etl-a', 1, 6));
  await publish(gateway, 'etl', ws, 'wf-b', lines('etl-b', 1, 4));
  await publish(gateway, 'faas', ws, 'flow-a', lines('faas-a', 1, 5));
  await publish(gateway, 'faas', ws, 'flow-b', lines('faas-b', 1, 3));
  await publish(gateway, 'function', ws, 'fn-a', lines('fn-a', 1, 7));
  await publish(gateway, 'function', ws, 'fn-b', lines('fn-b', 1, 2));
  await publish(gateway, 'etl', other, 'wf-a', lines('other-etl', 1, 3));
  await publish(gateway, 'function', other, 'fn-a', lines('other-fn', 1, 3));
  // A trace line is published but kept out of every page by the subscription filter.
  await publish(gateway, 'etl', ws, 'wf-a', [{ seq: 99, tag: 'etl-a', level: 'trace', message: 'trace noise' }]);
  await publish(gateway, 'etl', ws, 'wf-a', lines('etl-a', 7, 1));

  const expect = async (page, id, tags, total, channels) => {
    const state = await eventually(() => pane(page, id), (p) => p?.count >= total, `${id} to hold ${total} logs`);
    await page.waitForTimeout(300); // anything stray would have arrived with the rest
    const settled = await pane(page, id);
    console.log(`${id}: ${settled.count} logs, tags ${settled.tags.join(', ')}`);
    assert.equal(settled.count, total, `${id} holds exactly ${total} logs`);
    assert.deepEqual(settled.tags.sort(), [...tags].sort(), `${id} shows only ${tags}`);
    assert.deepEqual(settled.channels.sort(), [...channels].sort());
    return state;
  };
  const indata = await expect(side, 'indata', ['etl-a'], 7, [`logs:etl:${ws}:wf-a`]);
  assert.deepEqual(indata.seqs, range(1, 7), 'in publish order, the trace line filtered out');
  const faas = await expect(side, 'faas', ['faas-a'], 5, [`logs:faas:${ws}:flow-a`]);
  assert.deepEqual(faas.seqs, range(1, 5));
  const fn = await expect(side, 'functions', ['fn-a'], 7, [`logs:function:${ws}:fn-a`]);
  assert.deepEqual(fn.seqs, range(1, 7));
  const timeline = await expect(all, 'all', ['etl-a', 'etl-b', 'faas-a', 'faas-b', 'fn-a', 'fn-b'], 7 + 4 + 5 + 3 + 7 + 2, [
    `logs:etl:${ws}:wf-a`, `logs:etl:${ws}:wf-b`, `logs:faas:${ws}:flow-a`, `logs:faas:${ws}:flow-b`,
    `logs:function:${ws}:fn-a`, `logs:function:${ws}:fn-b`,
  ]);
  // One timeline in publish order across the three services.
  const published = [['etl-a', 1, 6], ['etl-b', 1, 4], ['faas-a', 1, 5], ['faas-b', 1, 3], ['fn-a', 1, 7], ['fn-b', 1, 2], ['etl-a', 7, 7]]
    .flatMap(([tag, from, to]) => range(from, to).map((seq) => `${tag}:${seq}`));
  assert.deepEqual((await pane(all, 'all')).order, published);

  // On screen too: the newest line of each pane is rendered as text.
  for (const [page, id, text] of [[side, 'indata', 'etl-a line 7'], [side, 'faas', 'faas-a line 5'], [side, 'functions', 'fn-a line 7'], [all, 'all', 'etl-a line 7']]) {
    await page.locator(`[data-testid="pane-${id}"] .row-msg`, { hasText: text }).first().waitFor();
  }
  assert.equal(await side.locator('.row-msg', { hasText: 'trace noise' }).count(), 0);
  assert.equal(await all.locator('.row-msg', { hasText: 'other-' }).count(), 0);
  await context.close();
});

test('a log that looks like HTML is shown as text', async () => {
  const ws = uniqueWorkspace();
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/indata/logs?ws=${ws}&workflow=wf-x`);
  await waitLive(page, 'indata');
  const message = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
  await publish(gateway, 'etl', ws, 'wf-x', [{ seq: 1, level: 'error', message }]);
  const row = page.locator('[data-testid="pane-indata"] .row-msg').first();
  await row.waitFor();
  assert.equal(await row.textContent(), message);
  assert.equal(await page.locator('[data-testid="pane-indata"] .row-msg img, [data-testid="pane-indata"] .row-msg b').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await page.context().close();
});
