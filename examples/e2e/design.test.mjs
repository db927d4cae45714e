// The design document's components, as written (examples/design), in React's
// development build, fed by the design's Python and Node publisher snippets
// as written: every log shows with its timestamp, the FAAS publisher's
// function logs reach the component subscribed with service 'function', and
// the page prints no console warning or error at all. A control publishes
// logs without the SDK (no id, no timestamp) and shows the check catches
// React's key warning.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { EXAMPLES, Gateway, ROOT, eventually, launchBrowser, screenshot, stats, uniqueWorkspace } from './harness.mjs';

const run = promisify(execFile);
const DESIGN = path.join(EXAMPLES, 'design');
const DIST = process.env.DESIGN_DIST ?? path.join(DESIGN, 'dist');
/** The tokens of the design's snippets; the FAAS token is granted both of its services. */
const DESIGN_TOKENS = ['etl=l5-etl-token', 'faas+function=faas-token'];
const COUNT = 25;
const ISO_UTC_MS = '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z';

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('design', { staticDir: DIST, serviceTokens: DESIGN_TOKENS }).start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

/** A page that records every console warning and error and every uncaught exception. */
async function watchedPage() {
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'warning' || message.type() === 'error') problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  return { page, problems };
}

/** The rendered rows of one component: the text of each child of its root, skipping a status line. */
function rows(page, section) {
  return page.evaluate((section) => {
    const root = document.querySelector(`#${section} > div`);
    if (!root) return [];
    return [...root.children].map((el) => el.textContent).filter((text) => !/Live|Connecting/.test(text));
  }, section);
}

async function waitSubscribed(channels) {
  await eventually(
    () => stats(gateway),
    (s) => channels.every((c) => (s.subscriptions?.[c] ?? 0) > 0),
    `the page to subscribe ${channels.join(', ')}`,
  );
}

test('the design built with React in development mode', () => {
  const bundles = readdirSync(path.join(DIST, 'assets')).filter((f) => f.endsWith('.js'));
  const code = bundles.map((f) => readFileSync(path.join(DIST, 'assets', f), 'utf8')).join('\n');
  // Only React's development build carries its warnings.
  assert.match(code, /Each child in a list should have a unique/);
});

test("the design's components show every log of the design's Python and Node snippets with its timestamp, without a warning", async () => {
  const ws = uniqueWorkspace('design');
  const ids = { workflow_id: 'wf456', other_workflow_id: 'wf789', flow_id: 'flow1', function_id: 'fn456' };
  const { page, problems } = await watchedPage();
  await page.goto(`${gateway.url}/?${new URLSearchParams({ workspace_id: ws, ...ids })}`);
  await waitSubscribed([
    `logs:etl:${ws}:wf456`,
    `logs:etl:${ws}:wf789`,
    `logs:faas:${ws}:flow1`,
    `logs:function:${ws}:fn456`,
  ]);

  await Promise.all([
    run('python3', [path.join(DESIGN, 'publish_etl.py'), gateway.url, ws, ids.workflow_id, ids.other_workflow_id, String(COUNT)], {
      env: { ...process.env, PYTHONPATH: path.join(ROOT, 'publishers/python/src') },
    }),
    run(process.execPath, [path.join(DESIGN, 'publish_faas.cjs'), gateway.url, ws, ids.flow_id, ids.function_id, String(COUNT)]),
  ]);

  const n = [...Array(COUNT).keys()];
  const expected = {
    logs: [
      ...n.map((i) => `[${i % 5 === 4 ? 'warning' : 'info'}] etl step ${i}`),
      '[info] api: run scheduled',
      '[info] api: run queued',
    ],
    'logs-component': n.map((i) => `[info] other etl step ${i}`),
    'workflow-logs': n.map((i) => `[info] faas step ${i}`),
    'function-logs': n.map((i) => `[${i % 4 === 3 ? 'error' : 'info'}] function invocation ${i}`),
  };
  for (const [section, want] of Object.entries(expected)) {
    const got = await eventually(() => rows(page, section), (r) => r.length >= want.length, `${want.length} rows in #${section}`);
    const api = section === 'logs' ? 2 : 0;
    for (const [i, text] of got.entries()) {
      // `{log.timestamp} [{log.level}] {log.message}`: the SDKs' ISO 8601 UTC ms (the API's own for API logs).
      assert.match(text, new RegExp(`^${ISO_UTC_MS} \\[`), `#${section} row ${i} shows a timestamp: ${JSON.stringify(text)}`);
    }
    assert.deepEqual(
      got.map((text) => text.replace(new RegExp(`^${ISO_UTC_MS} `), '')),
      want,
      `#${section}: every log once, in order${api ? ', then the API logs' : ''}`,
    );
  }
  await screenshot(page, 'design-components');
  // Let late renders settle, then require a silent console.
  await page.waitForTimeout(300);
  assert.deepEqual(problems, [], 'no console warning or error');
  await page.close();
});

test('control: logs published without the SDK (no id, no timestamp) make React warn, and the check sees it', async () => {
  const ws = uniqueWorkspace('control');
  const { page, problems } = await watchedPage();
  await page.goto(`${gateway.url}/?${new URLSearchParams({ workspace_id: ws, other_workflow_id: 'bare', workflow_id: 'x', flow_id: 'x', function_id: 'x' })}`);
  await waitSubscribed([`logs:etl:${ws}:bare`]);
  const body = [1, 2].map((i) => ({ service: 'etl', workspace_id: ws, workflow_id: 'bare', logData: { level: 'info', message: `bare ${i}` } }));
  const response = await fetch(`${gateway.url}/api/logs/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer l5-etl-token' },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 202);
  const got = await eventually(() => rows(page, 'logs-component'), (r) => r.length >= 2, 'two bare rows');
  assert.deepEqual(got, [' [info] bare 1', ' [info] bare 2'], 'no timestamp to show');
  await eventually(() => problems, (p) => p.some((m) => /unique "key" prop/.test(m)), "React's key warning");
  await page.close();
});
