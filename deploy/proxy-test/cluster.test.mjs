// The deployment, run for real: scripts/cluster-demo.sh starts redis-server,
// two gateway nodes on it and nginx (deploy/nginx/logs-sse.conf: TLS,
// HTTP/2, SSE unbuffered) serving the demo app; Chromium opens the app
// through the proxy.
//   - every metric the Grafana dashboard and the alert rules use is
//     exported by a running node,
//   - the browser speaks HTTP/2 to the proxy, and logs published through
//     the proxy reach the page: publish → page latency, median and p99,
//     printed,
//   - ten tabs of the app on one origin do not exhaust the browser's
//     connections: every tab goes live and an ordinary fetch completes,
//   - the terminal client `logs-sse` publishes and tails through the proxy
//     over TLS, trusting the run's CA, and refuses an unknown certificate,
//   - the node holding the page's stream is killed (SIGKILL): the page
//     reconnects through the proxy to the other node and has every log
//     once, in order, without a gap.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  badge, eventually, launchBrowser, lines, newPage, pane, range, sleep, uniqueWorkspace, waitLive,
} from '../../examples/e2e/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const ADMIN = 'admin-dev-token';
const ETL = 'etl-dev-token';
// The proxy's certificate is generated for this run: deploy/test.sh runs
// this file with NODE_TLS_REJECT_UNAUTHORIZED=0 for fetch; the HTTP/2 probe
// pins the generated certificate.

let cluster; // { env, child, dir }
let browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function startCluster() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'logs-sse-proxy-test-'));
  const port = await freePort();
  const child = spawn('bash', [path.join(ROOT, 'scripts/cluster-demo.sh')], {
    env: {
      ...process.env,
      PORT: String(port),
      CLUSTER_DIR: dir,
      DEMO_PUBLISHER: '0',
      GATEWAY_BIN: process.env.GATEWAY_BIN ?? path.join(ROOT, 'target/debug/logs-sse-gateway'),
      APP_DIR: process.env.DEMO_APP_DIST ?? path.join(ROOT, 'examples/app/dist'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (d) => { output += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cluster not ready in 60 s:\n${output}`)), 60_000);
    child.stdout.on('data', (d) => {
      output += d;
      if (output.includes('cluster ready')) { clearTimeout(timer); resolve(); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`cluster-demo.sh exited ${code}:\n${output}`)); });
  });
  const env = Object.fromEntries(readFileSync(path.join(dir, 'cluster.env'), 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
  return { env, child, dir };
}

async function stopCluster() {
  if (!cluster) return;
  const exited = new Promise((resolve) => cluster.child.once('exit', resolve));
  cluster.child.kill('SIGTERM'); // its trap stops redis, the nodes and nginx by PID
  await Promise.race([exited, sleep(10_000)]);
  rmSync(cluster.dir, { recursive: true, force: true });
}

async function publishVia(url, ws, resource, logDatas, retries = 3) {
  const body = logDatas.map((logData) => ({ service: 'etl', workspace_id: ws, resource_id: resource, logData }));
  let response = await postOnce(url, body);
  // As the publisher SDKs do: a 502 (nginx reused a keep-alive connection to
  // a node that just died) or a 503 is retried.
  for (let i = 0; i < retries && (response.status === 502 || response.status === 503); i += 1) {
    await sleep(100);
    response = await postOnce(url, body);
  }
  const answer = await response.json();
  assert.equal(response.status, 202, JSON.stringify(answer));
  assert.equal(answer.accepted, logDatas.length);
}

function postOnce(url, body) {
  return fetch(`${url}/api/logs/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ETL}` },
    body: JSON.stringify(body),
  }).catch((error) => { throw new Error(`publish to ${url}: ${error.cause?.message ?? error.message}`); });
}

async function nodeStats(url) {
  const response = await fetch(`${url}/admin/logs/stats`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(response.status, 200);
  return response.json();
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

before(async () => {
  cluster = await startCluster();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await stopCluster();
});

test('every metric the dashboard and the alert rules use is exported by a running node', async () => {
  const response = await fetch(`${cluster.env.NODE1_URL}/metrics`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(response.status, 200);
  const text = await response.text();
  const exported = new Set();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    exported.add(name);
    if (type === 'counter') exported.add(`${name}_total`);
  }
  const used = new Set();
  for (const file of ['deploy/grafana/logs-sse-gateway.json', 'deploy/prometheus/logs-sse.rules.yaml']) {
    for (const [name] of readFileSync(path.join(ROOT, file), 'utf8').matchAll(/logs_sse_[a-z_]+/g)) used.add(name);
  }
  assert.ok(used.size >= 15, `the dashboard and rules use ${used.size} metrics`);
  const missing = [...used].filter((name) => !exported.has(name));
  assert.deepEqual(missing, [], `used but not exported (exported: ${[...exported].join(', ')})`);
  console.log(`metrics: the dashboard and rules use ${used.size} names, all exported`);
});

test('HTTP/2 through the proxy, and logs reach the page unbuffered', async () => {
  // Node's own HTTP/2 client: the proxy negotiates h2 over TLS.
  const session = http2.connect(cluster.env.URL, { ca: readFileSync(cluster.env.CA_CERT) });
  const status = await new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/health' });
    req.on('response', (headers) => resolve(headers[':status']));
    req.on('error', reject);
    req.end();
  });
  session.close();
  assert.equal(status, 200);

  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await newPage(context);
  const ws = uniqueWorkspace('px');
  await page.goto(`${cluster.env.URL}/indata/logs?ws=${ws}&workflow=wf-lat`);
  await waitLive(page, 'indata');
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');
  // The page notes when each log first shows up in the pane's state.
  await page.evaluate(() => {
    window.__arrivals = new Map();
    const tick = () => {
      const p = window.__datashopDemo?.panes.indata;
      if (p) for (const e of p.entries()) if (!window.__arrivals.has(e.logData.seq)) window.__arrivals.set(e.logData.seq, [performance.timeOrigin + performance.now(), e.logData.publishedAt]);
      window.__arrivalTimer = setTimeout(tick, 1);
    };
    tick();
  });
  const count = 200;
  for (let seq = 1; seq <= count; seq += 1) {
    await publishVia(cluster.env.URL, ws, 'wf-lat', lines('lat', seq, 1));
    await sleep(10);
  }
  const arrivals = await eventually(
    () => page.evaluate(() => [...window.__arrivals.entries()]),
    (a) => a.length === count, `${count} logs in the page`,
  );
  await page.evaluate(() => clearTimeout(window.__arrivalTimer));
  const latencies = arrivals.map(([, [seen, published]]) => seen - published).sort((a, b) => a - b);
  const median = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  console.log(`publish → page through nginx (TLS, HTTP/2, 2 nodes on Redis), ${count} logs one by one: median ${median.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${latencies.at(-1).toFixed(1)} ms`);
  assert.deepEqual((await pane(page, 'indata')).seqs, range(1, count), 'each log once, in order');
  await context.close();
});

test('ten tabs of the app on one origin do not exhaust the connections', async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const ws = uniqueWorkspace('tabs');
  const pages = [];
  for (let i = 0; i < 10; i += 1) {
    const page = await newPage(context);
    await page.goto(`${cluster.env.URL}/indata/logs?ws=${ws}&workflow=wf-tab${i}`);
    pages.push(page);
  }
  for (const page of pages) await waitLive(page, 'indata');
  // An ordinary request from the first tab still gets through at once
  // (over HTTP/1.1, six streams per origin would leave it queued).
  const health = await pages[0].evaluate(async () => {
    const started = performance.now();
    const answer = await Promise.race([
      fetch('/health', { cache: 'no-store' }).then((r) => r.status),
      new Promise((resolve) => setTimeout(() => resolve('no answer in 10 s'), 10_000)),
    ]);
    return { status: answer, ms: performance.now() - started, protocol: performance.getEntriesByType('navigation')[0].nextHopProtocol };
  });
  assert.equal(health.status, 200);
  assert.equal(health.protocol, 'h2');
  for (let i = 0; i < 10; i += 1) await publishVia(cluster.env.URL, ws, `wf-tab${i}`, lines(`tab${i}`, 1, 3));
  for (const page of pages) {
    await eventually(() => pane(page, 'indata'), (p) => p?.count === 3, 'each tab to get its 3 logs');
  }
  const streams = (await nodeStats(cluster.env.NODE1_URL)).connections + (await nodeStats(cluster.env.NODE2_URL)).connections;
  console.log(`ten tabs: all live, a fetch from tab 1 answered ${health.status} in ${health.ms.toFixed(0)} ms (pages over ${health.protocol}); gateway streams open for them: ${streams}`);
  await context.close();
});

const CLI = process.env.LOGS_SSE_BIN ?? path.join(ROOT, 'target/debug/logs-sse');

/** Runs logs-sse with `input` on stdin; resolves to {code, stdout, stderr}. */
function cli(args, { input = '', env = {} } = {}) {
  return new Promise((resolve) => {
    const child = execFile(CLI, args, { env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

test('the terminal client publishes and tails through the proxy over TLS', async () => {
  const ws = uniqueWorkspace('cli');
  const trust = { SSL_CERT_FILE: cluster.env.CA_CERT };
  const target = ['--gateway', cluster.env.URL, '--token', ETL, 'publish', '--service', 'etl', '--workspace', ws, '--resource', 'job'];
  const published = await cli(target, { input: 'step 1\nstep 2\nstep 3\n', env: trust });
  assert.equal(published.code, 0, published.stderr);
  const tail = await cli(['--gateway', cluster.env.URL, 'tail', '--json', '--history', '3', '--exit-after', '3', `logs:etl:${ws}:job`], { env: trust });
  assert.equal(tail.code, 0, tail.stderr);
  assert.deepEqual(tail.stdout.trim().split('\n').map((l) => JSON.parse(l).logData.message), ['step 1', 'step 2', 'step 3']);
  // Without the CA the proxy's certificate is refused: nothing is sent.
  const untrusted = await cli([...target, '--retries', '0'], { input: 'x\n', env: { SSL_CERT_FILE: '/dev/null' } });
  assert.equal(untrusted.code, 3, untrusted.stderr);
  assert.match(untrusted.stderr, /certificate|UnknownIssuer/i);
  console.log(`logs-sse through the proxy: published 3 lines and tailed them back; an untrusted certificate: exit 3 (${untrusted.stderr.match(/[^:]*(certificate|UnknownIssuer)[^;\n]*/i)?.[0]?.trim()})`);
});

test('a node killed behind the proxy: the page reconnects to the other node with nothing lost', async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await newPage(context);
  const ws = uniqueWorkspace('kill');
  await page.goto(`${cluster.env.URL}/indata/logs?ws=${ws}&workflow=wf-k`);
  await waitLive(page, 'indata');
  await publishVia(cluster.env.URL, ws, 'wf-k', lines('k', 1, 50));
  await eventually(() => pane(page, 'indata'), (p) => p.count === 50, 'the first 50 logs');

  const [s1, s2] = [await nodeStats(cluster.env.NODE1_URL), await nodeStats(cluster.env.NODE2_URL)];
  const victim = s1.connections >= 1 && s2.connections === 0 ? 1 : s2.connections >= 1 && s1.connections === 0 ? 2 : 0;
  assert.notEqual(victim, 0, `one node holds the page's stream (streams: ${s1.connections}, ${s2.connections})`);
  const survivor = victim === 1 ? 2 : 1;
  const killedAt = Date.now();
  process.kill(Number(cluster.env[`NODE${victim}_PID`]), 'SIGKILL');
  // Published through the proxy while the page reconnects: nginx skips the dead node.
  await publishVia(cluster.env.URL, ws, 'wf-k', lines('k', 51, 50));
  const final = await eventually(() => pane(page, 'indata'), (p) => p.count >= 100, 'all 100 logs after the kill', 30_000);
  const recoveredMs = Date.now() - killedAt;
  await sleep(300);
  const settled = await pane(page, 'indata');
  const b = await badge(page, 'indata');
  const now = await nodeStats(cluster.env[`NODE${survivor}_URL`]);
  console.log(`node ${victim} killed: the page has all 100 logs ${recoveredMs} ms later through node ${survivor} (channel status ${b.channelStatus}, streams there: ${now.connections})`);
  assert.deepEqual(settled.seqs, range(1, 100), 'every log once, in publish order');
  assert.notEqual(b.channelStatus, 'gap', 'no gap: the other node resumed from the shared history');
  assert.ok(b.live, 'live again');
  assert.ok(now.connections >= 1, 'the stream is on the surviving node');
  assert.ok(final.count === 100);
  await context.close();
});
