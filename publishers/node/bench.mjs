#!/usr/bin/env node
// Publish throughput of the Node SDK against a local gateway (not a test).
//
// By default it starts the gateway binary (GATEWAY_BIN, or
// target/debug/logs-sse-gateway of this repo) on a free port; pass
// --gateway-url URL --token TOKEN to measure a gateway that is already
// running. Only loopback traffic, bounded in count.
//
// Prints, for N logs:
//   call rate       publishWorkflowLog() calls per second (the caller's cost)
//   delivered rate  logs accepted by the gateway per second, first call to
//                   flush() resolving (the SDK's end-to-end throughput)
//   requests        HTTP requests used (batching)
//   per call        median / p99 / max of one publish call
//
// Two runs: "burst" publishes everything in one synchronous loop (the
// sender only starts afterwards), "interleaved" yields to the event loop
// every 1000 logs, as a busy service would, so sending overlaps publishing.

import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import LogsSSEPublisher from './index.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TOKEN = 'bench-faas-token';
const ADMIN = 'bench-admin-token';

const { values } = parseArgs({
  options: {
    'gateway-url': { type: 'string' },
    token: { type: 'string', default: TOKEN },
    count: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '500' },
    payload: { type: 'string', default: '100' },
    // Send logData as given, without an id and a timestamp (addIdAndTimestamp: false).
    'no-ids': { type: 'boolean', default: false },
  },
});
const count = Number(values.count);
const batch = Number(values.batch);
const payload = Number(values.payload);
if (!(count >= 1 && count <= 5_000_000)) throw new Error('--count must be between 1 and 5000000');

function startGateway(binary) {
  const child = spawn(
    binary,
    ['--listen', '127.0.0.1:0', '--service-token', `faas+function=${TOKEN}`, '--admin-token', ADMIN, '--allow-anonymous', '--publish-rate', '0'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return new Promise((resolveUrl, reject) => {
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolveUrl({ child, url: match[1] });
    });
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}) before listening`)));
  });
}

async function logsPublished(url) {
  try {
    const response = await fetch(`${url}/admin/logs/stats`, { headers: { authorization: `Bearer ${ADMIN}` } });
    return response.ok ? (await response.json()).logsPublished : -1;
  } catch {
    return -1;
  }
}

async function run(url, token, label, yieldEvery) {
  const publisher = new LogsSSEPublisher({
    gatewayUrl: url,
    serviceToken: token,
    serviceName: 'faas',
    maxQueueSize: count,
    maxBatchSize: batch,
    addIdAndTimestamp: !values['no-ids'],
  });
  const message = 'x'.repeat(payload);
  const before = await logsPublished(url);
  const durations = new Float64Array(count);
  let publishing = 0;
  const started = performance.now();
  for (let seq = 0; seq < count; seq += 1) {
    const t0 = performance.now();
    publisher.publishFunctionLog('bench-ws', `fn${seq % 8}`, { seq, level: 'info', message });
    const spent = performance.now() - t0;
    durations[seq] = spent;
    publishing += spent;
    if (yieldEvery && seq % yieldEvery === yieldEvery - 1) await new Promise((next) => setImmediate(next));
  }
  if (!(await publisher.flush(120000))) console.error('warning: flush timed out');
  const total = (performance.now() - started) / 1000;
  const stats = publisher.stats();
  await publisher.close();
  const after = await logsPublished(url);
  const sorted = [...durations].sort((a, b) => a - b);
  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  console.log(`node publisher, ${label}: ${count} logs of ~${payload + 40} bytes, batches of ${batch}:`);
  console.log(`  call rate:      ${fmt(count / (publishing / 1000))} publish calls/s (time inside the calls only)`);
  console.log(`  delivered rate: ${fmt(stats.sent / total)} logs/s accepted by the gateway (${stats.sent} sent in ${total.toFixed(2)} s)`);
  console.log(
    `  requests:       ${stats.requests} (${Math.round(stats.sent / Math.max(1, stats.requests))} logs/request), ` +
      `retries ${stats.retries}, dropped ${stats.dropped}, failed ${stats.failed}`,
  );
  console.log(
    `  per call:       median ${(sorted[count >> 1] * 1000).toFixed(1)} us, ` +
      `p99 ${(sorted[Math.floor(count * 0.99)] * 1000).toFixed(1)} us, max ${sorted[count - 1].toFixed(2)} ms`,
  );
  if (before >= 0 && after >= 0) console.log(`  gateway logsPublished grew by ${after - before}`);
}

let gateway = null;
let url = values['gateway-url'];
if (!url) {
  gateway = await startGateway(process.env.GATEWAY_BIN || resolve(here, '../../target/debug/logs-sse-gateway'));
  url = gateway.url;
}
try {
  await run(url, values.token, 'burst', 0);
  await run(url, values.token, 'interleaved', 1000);
} finally {
  gateway?.child.kill('SIGTERM');
}
