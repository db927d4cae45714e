// 1. One connection: moving between the three pages and the all-services
// view, and opening them together, the page constructs one EventSource (route
// changes add and remove channels on it through the control endpoint) and the
// gateway counts one stream for it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Gateway, eventSources, eventually, launchBrowser, newPage, stats, uniqueWorkspace, waitLive } from './harness.mjs';

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('connection').start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

const ROUTES = [
  ['/indata/logs', ['indata']],
  ['/faas/logs', ['faas']],
  ['/functions/logs', ['functions']],
  ['/all', ['all']],
  ['/dashboard', ['indata', 'faas', 'functions']],
  ['/indata/logs', ['indata']],
];

test('moving between the pages and the all-services view keeps one EventSource and one gateway stream', async () => {
  const ws = uniqueWorkspace();
  const opened = (await stats(gateway)).streamsOpened;
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/indata/logs?ws=${ws}`);
  await waitLive(page, 'indata');

  for (const [route, panes] of ROUTES) {
    await page.click(`[data-testid="nav-${route}"]`);
    await page.waitForURL(`**${route}?ws=${ws}`);
    for (const id of panes) await waitLive(page, id);
    const counted = await eventSources(page);
    const s = await stats(gateway);
    console.log(`${route}: EventSources open ${counted.open} (peak ${counted.maxOpen}, constructed ${counted.created}); gateway streams ${s.connections}`);
    assert.equal(counted.open, 1, `one open EventSource on ${route}`);
    assert.equal(counted.created, 1, `the page's first EventSource still, on ${route}`);
    assert.equal(s.connections, 1, `the gateway sees one stream on ${route}`);
  }
  const shell = await page.locator('[data-testid="stream-status"]').getAttribute('data-channel-changes');
  assert.equal(shell, 'live', 'the shell says channel changes are live');
  // Each page's channels joined the same stream, opened once.
  const { urls } = await eventSources(page);
  assert.ok(urls.every((url) => url.startsWith(`${gateway.url}/api/logs/stream?`)), 'every stream went to the gateway');
  assert.equal((await stats(gateway)).streamsOpened - opened, 1, 'the gateway opened one stream for the whole tour');
  await page.context().close();
  await eventually(() => stats(gateway), (s) => s.connections === 0, 'the stream to close with the page');
});

test('opening the three pages together (side by side) constructs exactly one EventSource', async () => {
  const ws = uniqueWorkspace();
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/dashboard?ws=${ws}`);
  for (const id of ['indata', 'faas', 'functions']) await waitLive(page, id);
  const counted = await eventSources(page);
  const s = await stats(gateway);
  console.log(`side by side: EventSources constructed ${counted.created}, open ${counted.open}; gateway streams ${s.connections}, stream subscriptions ${s.streamSubscriptions}`);
  assert.equal(counted.created, 1);
  assert.equal(counted.open, 1);
  assert.equal(s.connections, 1);
  const url = new URL(counted.urls[0]);
  const channels = url.searchParams.get('channels').split(',').sort();
  assert.deepEqual(channels, [`logs:etl:${ws}:wf-daily-sales`, `logs:faas:${ws}:flow-enrich-orders`, `logs:function:${ws}:fn-geocode`]);
  await page.context().close();
});
