// 4. Reconnection: the gateway stops for a few seconds and starts again on
// the same port. The badge shows the outage and the recovery; no log
// published before the stop is lost; those published while it was down
// (through the real publisher SDK, which queues and retries) are delivered
// or reported as a gap — the restarted in-memory gateway has a new epoch, so
// the client gets a `gap` status for its old cursor.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import LogsSSEPublisher from '@datashop/logs-sse-publisher';
import {
  Gateway, TOKENS, badge, eventually, launchBrowser, lines, newPage, pane, publish, range, screenshot, sleep, stats, uniqueWorkspace, waitLive,
} from './harness.mjs';

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('reconnect').start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

test('a gateway restart is shown, recovered from, and loses nothing silently', async () => {
  const ws = uniqueWorkspace();
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/indata/logs?ws=${ws}&workflow=wf-r`);
  await waitLive(page, 'indata');
  const epochBefore = (await stats(gateway)).epoch;

  await publish(gateway, 'etl', ws, 'wf-r', lines('r', 1, 50));
  await eventually(() => pane(page, 'indata'), (p) => p.count === 50, 'the 50 logs before the stop');

  // Every badge state the page goes through, sampled in the page itself.
  await page.evaluate(() => {
    window.__badgeStates = [];
    const read = () => {
      const el = document.querySelector('[data-testid="pane-indata"] [data-testid="connection-badge"]');
      const seen = el ? `${el.dataset.state}${el.dataset.live === 'true' ? '/live' : ''}${el.dataset.reason ? `/${el.dataset.reason}` : ''}` : 'none';
      if (window.__badgeStates.at(-1) !== seen) window.__badgeStates.push(seen);
    };
    read();
    window.__badgeTimer = setInterval(read, 20);
  });

  const publisher = new LogsSSEPublisher({
    gatewayUrl: gateway.url, serviceName: 'etl', serviceToken: TOKENS.etl,
    retryBackoffMinMs: 100, retryBackoffMaxMs: 400, flushIntervalMs: 20, logger: null,
  });
  try {
    await gateway.stop();
    const down = await eventually(() => badge(page, 'indata'), (b) => !b.live && b.state === 'reconnecting' && b.reason !== '', 'the badge to show the outage');
    console.log(`outage badge: "${down.text}" (state ${down.state}, reason ${down.reason})`);
    for (const logData of lines('r', 51, 20)) publisher.publishWorkflowLog(ws, 'wf-r', logData);
    await sleep(1500);
    await screenshot(page, 'reconnect-outage');
    await sleep(1500);
    assert.equal(publisher.stats().sent, 0, 'nothing can be delivered while the gateway is down');

    await gateway.start(); // same port
    assert.notEqual((await stats(gateway)).epoch, epochBefore, 'the restarted in-memory gateway has a new epoch');
    const up = await eventually(() => badge(page, 'indata'), (b) => b.live, 'the badge to show the recovery', 30_000);
    console.log(`recovered badge: "${up.text}" (channel status ${up.channelStatus})`);
    assert.equal(await publisher.flush(10_000), true, 'the SDK delivered its queue after the restart');
    assert.equal(publisher.stats().sent, 20);
  } finally {
    await publisher.close(1000);
  }
  await publish(gateway, 'etl', ws, 'wf-r', lines('r', 71, 10));
  const final = await eventually(() => pane(page, 'indata'), (p) => p.seqs.at(-1) === 80, 'the logs published after the recovery');
  await sleep(300);
  const settled = await pane(page, 'indata');
  const states = await page.evaluate(() => { clearInterval(window.__badgeTimer); return window.__badgeStates; });
  const b = await badge(page, 'indata');
  const gapShown = await page.locator('[data-testid="pane-indata"] [data-testid="gap-notice"]').count();
  const outage = settled.seqs.filter((s) => s >= 51 && s <= 70);
  console.log(`badge went through: ${states.join(' → ')}`);
  console.log(`after the restart: ${settled.count} logs; published while down delivered ${outage.length}/20; gap reported: ${b.channelStatus === 'gap' ? 'yes' : 'no'} (notice shown: ${gapShown > 0})`);

  assert.deepEqual(settled.seqs.slice(0, 50), range(1, 50), 'every log published before the stop, once, in order');
  assert.deepEqual(settled.seqs.slice(-10), range(71, 80), 'the logs after the recovery');
  assert.equal(new Set(settled.seqs).size, settled.seqs.length, 'no log twice');
  assert.deepEqual(settled.seqs, [...settled.seqs].sort((x, y) => x - y), 'publish order');
  assert.ok(states.some((s) => s.startsWith('reconnecting')), 'the badge showed the outage');
  assert.ok(states.at(-1).includes('/live'), 'and the recovery');
  // Those published while it was down: delivered, or the page says logs may be missing.
  if (outage.length < 20) {
    assert.equal(b.channelStatus, 'gap', 'missing logs are reported as a gap');
    assert.ok(gapShown > 0, 'the gap notice is shown');
  }
  // In-memory restart: the old cursor belongs to the old epoch, so a gap is always reported.
  assert.equal(b.channelStatus, 'gap');
  assert.ok(gapShown > 0);
  await screenshot(page, 'reconnect-recovered');
  assert.ok(final.count >= 60);
  await page.context().close();
});
