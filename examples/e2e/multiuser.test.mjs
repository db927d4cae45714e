// 6. Multi-user: two browser contexts (two users: separate storage, separate
// connections) watch the same workflow and both see every log, in order.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Gateway, eventSources, eventually, fmt, launchBrowser, lines, newPage, pane, publish, range, stats, summary, uniqueWorkspace, waitLive } from './harness.mjs';

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('multiuser').start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

test('two users watching the same workflow both see every log', async () => {
  const ws = uniqueWorkspace();
  const url = `${gateway.url}/faas/logs?ws=${ws}&flow=flow-shared`;
  const alice = await newPage(browser);
  const bob = await newPage(browser);
  await Promise.all([alice.goto(url), bob.goto(url)]);
  await Promise.all([waitLive(alice, 'faas'), waitLive(bob, 'faas')]);
  const s = await stats(gateway);
  assert.equal(s.connections, 2, 'one stream per user');
  assert.equal((await eventSources(alice)).open, 1);
  assert.equal((await eventSources(bob)).open, 1);

  // 600 logs in batches, paced a little so they stream in rather than arrive at once.
  for (let from = 1; from <= 600; from += 50) {
    await publish(gateway, 'faas', ws, 'flow-shared', lines('shared', from, 50));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const [a, b] = await Promise.all([
    eventually(() => pane(alice, 'faas'), (p) => p.count >= 600, 'alice to see 600 logs'),
    eventually(() => pane(bob, 'faas'), (p) => p.count >= 600, 'bob to see 600 logs'),
  ]);
  assert.deepEqual(a.seqs, range(1, 600), 'alice: every log once, in order');
  assert.deepEqual(b.seqs, range(1, 600), 'bob: every log once, in order');
  assert.deepEqual(a.cursors, b.cursors, 'the same logs, the same cursors');
  for (const page of [alice, bob]) {
    await page.locator('[data-testid="pane-faas"] .row-msg', { hasText: 'shared line 600' }).waitFor();
  }
  const [la, lb] = await Promise.all([alice, bob].map((p) => p.evaluate(() => window.__datashopDemo.latencies.faas)));
  const lat = summary([...la, ...lb]);
  console.log(`two users: ${a.count} and ${b.count} logs; gateway deliveries ${(await stats(gateway)).deliveries}; latency median ${fmt(lat.median)}, p99 ${fmt(lat.p99)}`);
  await alice.context().close();
  await bob.context().close();
});
