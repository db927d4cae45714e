// 9. One EventSource for the page's whole life: route changes add and remove
// channels on the open stream through the gateway's control endpoint.
//   - A tour of every demo page and back, and the design's three-page flow,
//     with logs published at 500/s meanwhile: one EventSource constructed,
//     one stream opened on the gateway, and every view shows each of its
//     logs once and in order (checked against what was published).
//   - When the control endpoint answers 404 or the request fails at the
//     network (Playwright intercepts the POST), the client reopens the
//     stream from its cursors and loses nothing.
//   - The latency of a channel change (control call sent → first replayed
//     log on the stream, and → shown by the view), median and p99 over a few
//     dozen changes, printed as a figure.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  Gateway, channelChanges, eventSources, eventually, fmt, launchBrowser, lines, newPage, pane, publish, sleep, startPublishing, stats, summary,
  uniqueWorkspace, waitLive,
} from './harness.mjs';

let gateway;
let browser;

before(async () => {
  // History deep enough that a page left for the whole tour still resumes
  // from its cursor at 500 logs/s.
  gateway = await new Gateway('live-channels', { args: ['--history-size', '50000'] }).start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

/** The resources the demo pages show by default, with the pane that shows each. */
const TARGETS = [
  { service: 'etl', resource: 'wf-daily-sales', pane: 'indata' },
  { service: 'faas', resource: 'flow-enrich-orders', pane: 'faas' },
  { service: 'function', resource: 'fn-geocode', pane: 'functions' },
];


/** The seqs of `tag` in a pane's order, checked to be a run without a hole or a repeat. */
function run(order, tag, what) {
  const seqs = order.filter((o) => o.startsWith(`${tag}:`)).map((o) => Number(o.slice(tag.length + 1)));
  for (let i = 1; i < seqs.length; i += 1) {
    if (seqs[i] !== seqs[i - 1] + 1) {
      assert.fail(`${what}: ${tag} logs not once and in order at ${i}: … ${seqs.slice(Math.max(0, i - 3), i + 3).join(', ')} …`);
    }
  }
  return seqs;
}

/** Checks each visible pane's logs: every one once, in order, up to what was published; waits for them to catch up. */
async function checkViews(page, panes, publisher, what) {
  for (const id of panes) {
    const tags = id === 'all' ? TARGETS.map((t) => t.service) : [TARGETS.find((t) => t.pane === id).service];
    const target = Object.fromEntries(tags.map((tag) => [tag, publisher.published[tag]]));
    const state = await eventually(
      () => pane(page, id),
      (p) => p !== null && tags.every((tag) => {
        const seqs = run(p.order, tag, `${what}, pane ${id}`);
        return seqs.length > 0 && seqs.at(-1) >= target[tag];
      }),
      `pane ${id} on ${what} to catch up with ${JSON.stringify(target)}`,
    );
    assert.equal(new Set(state.cursors).size, state.cursors.length, `${what}, pane ${id}: no cursor twice`);
  }
}

async function go(page, route, ws) {
  await page.click(`[data-testid="nav-${route}"]`);
  await page.waitForURL(`**${route}?ws=${ws}`);
}

const TOUR = [
  ['/faas/logs', ['faas']],
  ['/functions/logs', ['functions']],
  ['/all', ['all']],
  ['/dashboard', ['indata', 'faas', 'functions']],
  ['/indata/logs', ['indata']],
  ['/all', ['all']],
  ['/functions/logs', ['functions']],
  ['/faas/logs', ['faas']],
  ['/indata/logs', ['indata']],
];
/** The design's three log pages and back. */
const THREE_PAGES = [
  ['/faas/logs', ['faas']],
  ['/functions/logs', ['functions']],
  ['/faas/logs', ['faas']],
  ['/indata/logs', ['indata']],
];

test('a tour of every page and back, and the three-page flow, at 500 logs/s: one EventSource, one stream, every log once and in order', async () => {
  const ws = uniqueWorkspace('tour');
  const opened = (await stats(gateway)).streamsOpened;
  const publisher = startPublishing(gateway, ws, 500, TARGETS);
  const page = await newPage(browser);
  try {
    await page.goto(`${gateway.url}/indata/logs?ws=${ws}`);
    await waitLive(page, 'indata');
    await checkViews(page, ['indata'], publisher, 'the first page');
    for (const [step, [route, panes]] of [...TOUR, ...THREE_PAGES].entries()) {
      await go(page, route, ws);
      for (const id of panes) await waitLive(page, id);
      await checkViews(page, panes, publisher, `step ${step + 1} (${route})`);
      const counted = await eventSources(page);
      assert.equal(counted.created, 1, `still the first EventSource on ${route}`);
      // Let a page's channels linger out now and then, so removals happen too.
      if (step % 3 === 2) await sleep(1_700);
    }
    const published = await publisher.stop();
    await checkViews(page, ['indata'], publisher, 'after the publisher stopped');
    const counted = await eventSources(page);
    const changes = await channelChanges(page);
    const s = await stats(gateway);
    const total = Object.values(published).reduce((a, b) => a + b, 0);
    console.log(
      `tour of ${TOUR.length + THREE_PAGES.length} route changes with ${total} logs published at 500/s: ` +
        `EventSources constructed ${counted.created}; channel changes ${changes.length} ` +
        `(answers ${[...new Set(changes.map((c) => c.status))].join(', ')}); gateway streams opened ${s.streamsOpened - opened}`,
    );
    assert.equal(counted.created, 1, 'one EventSource for the page\'s whole life');
    assert.ok(changes.length >= TOUR.length, `the route changes went through the control endpoint (${changes.length})`);
    assert.ok(changes.every((c) => c.status === 200), `every change answered 200: ${changes.map((c) => c.status)}`);
    assert.equal(s.streamsOpened - opened, 1, 'the gateway opened one stream for the whole tour');
  } finally {
    await publisher.stop();
    await page.context().close();
  }
});

test('a control endpoint answering 404, or failing at the network, makes the client reopen and lose nothing', async () => {
  const ws = uniqueWorkspace('fallback');
  const publisher = startPublishing(gateway, ws, 200, TARGETS);
  const page = await newPage(browser);
  try {
    await page.goto(`${gateway.url}/indata/logs?ws=${ws}`);
    await waitLive(page, 'indata');
    await checkViews(page, ['indata'], publisher, 'before');

    await page.route('**/api/logs/stream/*/channels', (route) =>
      route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":{"code":"unknown_stream","message":"no such stream"}}' }));
    await go(page, '/faas/logs', ws);
    await waitLive(page, 'faas');
    // (A lingering channel leaving meanwhile is a change too: maybe more.)
    await eventually(() => eventSources(page), (c) => c.created >= 2, 'a new stream after the 404');
    await checkViews(page, ['faas'], publisher, 'after the 404');

    await page.unroute('**/api/logs/stream/*/channels');
    await page.route('**/api/logs/stream/*/channels', (route) => route.abort('failed'));
    const before = (await eventSources(page)).created;
    await go(page, '/functions/logs', ws);
    await waitLive(page, 'functions');
    await eventually(() => eventSources(page), (c) => c.created > before, 'a new stream after the network failure');
    await checkViews(page, ['functions'], publisher, 'after the network failure');

    // The endpoint works again: back to live changes, the stream stays (after
    // the ETL channel lingered out, so that coming back is a change).
    await page.unroute('**/api/logs/stream/*/channels');
    await sleep(1_700);
    const reopened = (await eventSources(page)).created;
    await go(page, '/indata/logs', ws);
    await waitLive(page, 'indata');
    await publisher.stop();
    await checkViews(page, ['indata'], publisher, 'back with the endpoint working');
    const changes = await channelChanges(page);
    const statuses = changes.map((c) => c.status);
    const created = (await eventSources(page)).created;
    console.log(`fallback: answers ${statuses.join(', ')}; EventSources constructed ${created}`);
    assert.ok(statuses.includes(404) && statuses.includes(0), `a 404 and a network failure were seen: ${statuses}`);
    assert.equal(statuses.at(-1), 200, 'the last change went live');
    assert.ok(created >= 3, `a stream reopened after each failure (${created})`);
    assert.equal(created, reopened, 'no stream reopened once the endpoint answered again');
  } finally {
    await publisher.stop();
    await page.context().close();
  }
});

test('the latency of a channel change: control call sent → first replayed log on the stream and in the view', async () => {
  const CHANGES = Number(process.env.E2E_CHANGES ?? 30);
  const page = await newPage(browser);
  const first = uniqueWorkspace('lat');
  await page.goto(`${gateway.url}/indata/logs?ws=${first}`);
  await waitLive(page, 'indata');
  const wire = [];
  const view = [];
  for (let i = 0; i < CHANGES; i += 1) {
    const ws = `${first}-${i}`;
    const channel = `logs:etl:${ws}:wf-daily-sales`;
    await publish(gateway, 'etl', ws, 'wf-daily-sales', lines('lat', 1, 5));
    const { wireAt, shownAt } = await page.evaluate(({ ws, channel }) => new Promise((resolve) => {
      window.__watch = { channel, at: null };
      history.pushState(null, '', `/indata/logs?ws=${ws}`);
      window.dispatchEvent(new Event('datashop:navigate'));
      const check = () => {
        const p = window.__datashopDemo?.panes.indata;
        if (p && p.entries().some((e) => e.channel === channel)) resolve({ wireAt: window.__watch.at, shownAt: performance.now() });
        else requestAnimationFrame(check);
      };
      check();
    }), { ws, channel });
    const change = (await channelChanges(page)).find((c) => (c.body.add ?? []).some((a) => a.channel === channel));
    assert.ok(change, `change ${i} went through the control endpoint`);
    assert.equal(change.status, 200);
    wire.push(wireAt - change.at);
    view.push(shownAt - change.at);
  }
  assert.equal((await eventSources(page)).created, 1, 'every change on the first stream');
  const w = summary(wire);
  const v = summary(view);
  console.log(`channel change latency over ${CHANGES} changes (each a new channel with a 5-log backfill):`);
  console.log(`  control call sent -> first replayed log on the stream: median ${fmt(w.median)}, p99 ${fmt(w.p99)}, max ${fmt(w.max)}`);
  console.log(`  control call sent -> shown by the view:                median ${fmt(v.median)}, p99 ${fmt(v.p99)}, max ${fmt(v.max)}`);
  await page.context().close();
});
