// The demo as people see it: the real demo publisher (examples/publisher,
// through the Node SDK) plays its cross-service pipeline and a short burst
// on request from its control endpoint; the run shows up on each page and in
// the all-services view, and each page is saved as a screenshot under
// test-artifacts/e2e/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { EXAMPLES, Gateway, TOKENS, eventually, launchBrowser, newPage, pane, screenshot, sleep, uniqueWorkspace, waitLive } from './harness.mjs';

let gateway;
let browser;
let publisher;
let control;
const ws = uniqueWorkspace('ws-demo');

before(async () => {
  gateway = await new Gateway('demo').start();
  browser = await launchBrowser();
  publisher = spawn(process.execPath, [
    path.join(EXAMPLES, 'publisher/demo-publisher.mjs'),
    '--gateway', gateway.url, '--workspace', ws, '--no-loop', '--control', '127.0.0.1:0',
    '--etl-token', TOKENS.etl, '--faas-token', TOKENS.faas, '--function-token', TOKENS.function,
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  control = await new Promise((resolve, reject) => {
    let out = '';
    publisher.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /control listening on (http:\/\/[0-9.:]+)/.exec(out);
      if (match) resolve(match[1]);
    });
    publisher.once('exit', (code) => reject(new Error(`demo publisher exited with ${code}: ${out}`)));
  });
});
after(async () => {
  if (publisher && publisher.exitCode === null) {
    const exited = new Promise((resolve) => publisher.once('exit', resolve));
    publisher.kill('SIGTERM');
    await exited;
  }
  await browser?.close();
  await gateway?.close();
});

const post = (pathname, body, headers = {}) =>
  fetch(`${control}${pathname}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });

test('the control endpoint answers only the app origin and JSON posts', async () => {
  assert.equal((await post('/scenarios/pipeline', {}, { Origin: 'http://evil.example' })).status, 403);
  const form = await fetch(`${control}/scenarios/pipeline`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' });
  assert.equal(form.status, 415);
  assert.equal((await post('/scenarios/burst', { rate: 1e6, seconds: 10 })).status, 400);
  const preflight = await fetch(`${control}/scenarios/pipeline`, { method: 'OPTIONS', headers: { Origin: gateway.url, 'Access-Control-Request-Method': 'POST' } });
  assert.equal(preflight.headers.get('access-control-allow-origin'), gateway.url);
});

test('a pipeline run started from the page is followed across ETL, FAAS and functions; a burst floods its function', async () => {
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/all?ws=${ws}&control=${encodeURIComponent(control)}`);
  await waitLive(page, 'all');
  await page.locator('[data-testid="demo-controls"][data-online="true"]').waitFor();
  await page.click('[data-testid="run-pipeline"]');
  // The run ends with the ETL workflow's last line.
  const all = await eventually(
    () => page.evaluate(() => window.__datashopDemo.panes.all.entries().map((e) => [e.channel, e.logData.message, e.logData.run_id])),
    (rows) => rows.some(([, message]) => /^Run etl-run-0001 finished/.test(message)),
    'the pipeline run to finish', 60_000,
  );
  const services = new Set(all.map(([channel]) => channel.split(':')[1]));
  assert.deepEqual([...services].sort(), ['etl', 'faas', 'function']);
  assert.ok(all.every(([, , run]) => run === 'run-0001'), 'every line carries the run id');
  const order = (re) => all.findIndex(([, message]) => re.test(message));
  assert.ok(order(/^load: triggering FAAS/) < order(/^Workflow flow-run-0001 started/), 'ETL triggers the FAAS workflow');
  assert.ok(order(/invoking \(execution exec-geocode-0001\)/) < order(/^execution exec-geocode-0001 finished/), 'the workflow calls the function');
  const lastGeocode = all.findLastIndex(([channel]) => channel.endsWith(':fn-geocode'));
  assert.ok(lastGeocode < order(/fn-geocode: done/), 'the function finishes before the workflow step does (causal order across services)');
  assert.ok(order(/^Workflow flow-run-0001 succeeded/) < order(/^load: FAAS workflow flow-run-0001 succeeded/), 'the workflow finishes before the ETL run resumes');
  console.log(`pipeline run-0001: ${all.length} lines across ${[...services].join(', ')}`);
  await sleep(300);
  await screenshot(page, 'all-services');

  await page.click('[data-testid="nav-/dashboard"]');
  for (const id of ['indata', 'faas', 'functions']) await waitLive(page, id);
  // Run 2 on the three pages side by side.
  await page.locator('[data-testid="run-pipeline"]:not([disabled])').click();
  await page.locator('[data-testid="pane-indata"] .row-msg', { hasText: 'etl-run-0002 finished' }).waitFor({ timeout: 60_000 });
  await screenshot(page, 'side-by-side');

  for (const [route, id, name] of [
    ['/indata/logs', 'indata', 'indata-logs'],
    ['/faas/logs', 'faas', 'faas-logs'],
    ['/functions/logs', 'functions', 'functions-logs'],
  ]) {
    await page.click(`[data-testid="nav-${route}"]`);
    await waitLive(page, id);
    const state = await pane(page, id);
    assert.ok(state.count > 0 && state.received === state.count, `${route} shows run 2 (restored from the side-by-side view)`);
    await screenshot(page, name);
  }

  // The burst: 1,000 logs/s for 3 s into fn-clickstream-parser, on its page.
  await page.selectOption('[data-testid="function-picker"]', 'fn-clickstream-parser');
  await waitLive(page, 'functions');
  const answer = await (await post('/scenarios/burst', { rate: 1000, seconds: 3 }, { Origin: gateway.url })).json();
  console.log(`burst: ${answer.message}`);
  const burst = await eventually(() => pane(page, 'functions'), (p) => p.count >= 3002, 'the burst (3,000 events + first and last line)', 30_000);
  console.log(`burst on the functions page: ${burst.count} lines`);
  await screenshot(page, 'functions-burst');
  await page.context().close();
});
