// A slow, stopped or restarted gateway never blocks the caller or loses queued logs.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

import LogsSSEPublisher from '@datashop/logs-sse-publisher';
import { Gateway, SSEStream, TOKENS, uniqueWorkspace } from './helpers/gateway.mjs';

const run = promisify(execFile);
const cleanup = [];
after(async () => {
  for (const item of cleanup.reverse()) await item();
});

// Generous per-call bound: publishing is microseconds of work; anything near
// this means the caller waited for the network. Checked at the 99th
// percentile: on a loaded machine a garbage collection or the scheduler alone
// can pause any single call for longer, whatever the SDK does.
const MAX_CALL_MS = 50;

const quiet = { warn() {}, error() {}, info() {} };

async function gatewayFor(extraArgs) {
  const gateway = await Gateway.start(extraArgs);
  cleanup.push(() => gateway.stop());
  return gateway;
}

function publisher(gateway, options = {}) {
  const instance = new LogsSSEPublisher({
    gatewayUrl: gateway.url,
    serviceToken: TOKENS.etl,
    serviceName: 'etl',
    logger: quiet,
    ...options,
  });
  cleanup.push(() => instance.close(1000));
  return instance;
}

async function stream(gateway, channels, since) {
  const opened = await SSEStream.open(gateway.url, channels, since);
  cleanup.push(() => opened.close());
  return opened;
}

function measureCalls(logsPublisher, ws, count) {
  const durations = new Float64Array(count);
  for (let seq = 0; seq < count; seq += 1) {
    const started = performance.now();
    logsPublisher.publishWorkflowLog(ws, 'wf1', { seq, message: 'x'.repeat(100) });
    durations[seq] = performance.now() - started;
  }
  return durations;
}

function report(label, durations) {
  const sorted = [...durations].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const p99 = sorted[Math.floor(sorted.length * 0.99) - 1];
  const max = sorted[sorted.length - 1];
  console.log(
    `${label}: ${durations.length} calls, median ${(median * 1000).toFixed(1)} us, ` +
      `p99 ${(p99 * 1000).toFixed(1)} us, max ${max.toFixed(2)} ms`,
  );
  return p99;
}

test('the caller is never blocked by a live or a dead gateway', async () => {
  const gateway = await gatewayFor();
  const ws = uniqueWorkspace();
  const live = publisher(gateway, { maxQueueSize: 20000 });
  assert.ok(report('publishWorkflowLog, gateway up', measureCalls(live, ws, 20000)) < MAX_CALL_MS);
  assert.equal(await live.flush(20000), true);
  assert.equal(live.stats().sent, 20000);

  await gateway.stop();
  const dead = publisher(gateway, { maxQueueSize: 5000, retryBackoffMinMs: 10, retryBackoffMaxMs: 50 });
  assert.ok(report('publishWorkflowLog, gateway down', measureCalls(dead, ws, 20000)) < MAX_CALL_MS);
  // Let the sender run against the dead gateway, then publish again.
  await delay(200);
  assert.ok(report('publishWorkflowLog, gateway down, retrying', measureCalls(dead, ws, 5000)) < MAX_CALL_MS);
  const stats = dead.stats();
  assert.equal(stats.sent, 0);
  assert.ok(stats.retries >= 1);
  assert.ok(stats.dropped >= 25000 - 5000 - 500, `dropped ${stats.dropped}`);
  // close() is bounded by its timeout even though nothing can be delivered.
  const started = performance.now();
  assert.equal(await dead.close(500), false);
  const elapsed = performance.now() - started;
  console.log(`close(500) with the gateway down resolved after ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed < 5000);
  const closed = dead.stats();
  assert.equal(closed.dropped + closed.inFlight + closed.queueSize, 25000);
});

test('a gateway restarted mid-run loses nothing that fits the queue', async () => {
  const gateway = await gatewayFor();
  const ws = uniqueWorkspace();
  const channel = `logs:etl:${ws}:wf1`;
  const before = await stream(gateway, [channel]);
  await before.waitStatuses(1);
  const logsPublisher = publisher(gateway, { retryBackoffMinMs: 50, retryBackoffMaxMs: 300, flushIntervalMs: 20 });

  // Publish steadily while the gateway stops and restarts.
  const total = 600;
  const producing = (async () => {
    for (let seq = 0; seq < total; seq += 1) {
      logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
      await delay(2);
    }
  })();
  await delay(300);
  await gateway.stop();
  const seenBefore = await before.logsUntilEnd();
  await delay(500); // logs pile up in the queue; the sender keeps retrying
  // Everything the stopped gateway acknowledged (202) precedes, in publish
  // order, everything still queued in the SDK.
  const acceptedByFirst = logsPublisher.stats().sent;
  await gateway.restart();
  // The restarted gateway has a fresh history: replay all of it so logs the
  // sender delivered before this stream connected are seen too.
  const afterRestart = await stream(gateway, [channel], `${channel}@earliest`);
  await producing;
  assert.equal(await logsPublisher.flush(20000), true);
  const stats = logsPublisher.stats();
  console.log(
    `restart: ${seenBefore.length} logs streamed before the stop, ${acceptedByFirst} acknowledged by the ` +
      `stopped gateway (${acceptedByFirst - seenBefore.length} acknowledged during its shutdown but never ` +
      `streamed), ${stats.retries} retries, ${stats.requests} requests, dropped ${stats.dropped}`,
  );
  const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);
  assert.deepEqual(seenBefore.map((log) => log.logData.seq), range(0, seenBefore.length));
  assert.ok(seenBefore.length <= acceptedByFirst);
  // Nothing the SDK still held is lost or repeated: the restarted gateway
  // gets exactly the rest, in order.
  const seenAfter = await afterRestart.logs(total - acceptedByFirst);
  assert.deepEqual(seenAfter.map((log) => log.logData.seq), range(acceptedByFirst, total));
  assert.ok(stats.retries >= 1);
  assert.deepEqual([stats.sent, stats.dropped, stats.failed], [total, 0, 0]);
});

test('a full queue drops its oldest entries and counts them; the batch being retried is kept whole', async () => {
  const gateway = await gatewayFor();
  const ws = uniqueWorkspace();
  const channel = `logs:etl:${ws}:wf1`;
  await gateway.stop();
  const logsPublisher = publisher(gateway, {
    maxQueueSize: 100,
    maxBatchSize: 50,
    flushIntervalMs: 0,
    retryBackoffMinMs: 50,
    retryBackoffMaxMs: 200,
  });
  // One full batch goes out (and fails) first; 200 more pile up behind it.
  for (let seq = 0; seq < 50; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
  await delay(20);
  for (let seq = 50; seq < 250; seq += 1) {
    logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
    if (seq % 50 === 0) await delay(5); // let the sender fail a few times meanwhile
  }
  assert.equal(await logsPublisher.flush(300), false); // nothing can be delivered yet
  const down = logsPublisher.stats();
  assert.deepEqual([down.inFlight, down.queueSize, down.dropped], [50, 100, 100]);
  assert.ok(down.retries >= 2, `${down.retries} retries`);

  await gateway.restart();
  const sse = await stream(gateway, [channel], `${channel}@earliest`);
  assert.equal(await logsPublisher.flush(10000), true);
  const stats = logsPublisher.stats();
  console.log(`queue of 100, 250 published while down: sent ${stats.sent}, dropped ${stats.dropped}`);
  assert.deepEqual([stats.queued, stats.sent, stats.dropped, stats.failed, stats.duplicates], [250, 150, 100, 0, 0]);
  // The batch sent first is retried as it was; drop-oldest took the oldest
  // of the queue behind it, so the newest 100 survive, in order.
  const logs = await sse.logs(150);
  const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);
  assert.deepEqual(logs.map((log) => log.logData.seq), [...range(0, 50), ...range(150, 250)]);
});

test('close() delivers what is queued, then drops and counts later logs', async () => {
  const gateway = await gatewayFor();
  const ws = uniqueWorkspace();
  const sse = await stream(gateway, [`logs:etl:${ws}`]);
  await sse.waitStatuses(1);
  // A long flush interval: only close() makes these go out now.
  const logsPublisher = publisher(gateway, { flushIntervalMs: 30000 });
  for (let seq = 0; seq < 20; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
  await delay(50);
  assert.equal(logsPublisher.stats().sent, 0);
  assert.equal(await logsPublisher.close(5000), true);
  const logs = await sse.logs(20);
  assert.deepEqual(logs.map((log) => log.logData.seq), [...Array(20).keys()]);
  assert.equal(logsPublisher.publishWorkflowLog(ws, 'wf1', { seq: 20 }), false);
  assert.equal(logsPublisher.stats().dropped, 1);
});

test('a process that simply ends delivers its queue on beforeExit', async () => {
  const gateway = await gatewayFor();
  const ws = uniqueWorkspace();
  const sse = await stream(gateway, [`logs:etl:${ws}`]);
  await sse.waitStatuses(1);
  const script = `
    const LogsSSEPublisher = require('@datashop/logs-sse-publisher');
    const p = new LogsSSEPublisher({ gatewayUrl: ${JSON.stringify(gateway.url)},
      serviceToken: ${JSON.stringify(TOKENS.etl)}, serviceName: 'etl', flushIntervalMs: 30000 });
    for (let seq = 0; seq < 50; seq += 1) p.publishWorkflowLog(${JSON.stringify(ws)}, 'wf1', { seq });
    // no flush() or close(): the beforeExit hook must deliver
  `;
  const started = performance.now();
  await run(process.execPath, ['-e', script], { cwd: new URL('..', import.meta.url), timeout: 30000 });
  console.log(`child process exited ${(performance.now() - started).toFixed(0)} ms after start`);
  const logs = await sse.logs(50);
  assert.deepEqual(logs.map((log) => log.logData.seq), [...Array(50).keys()]);
});

test('a 413 makes batches smaller instead of failing them', async () => {
  const gateway = await gatewayFor(['--max-body-bytes', '16384']);
  const ws = uniqueWorkspace();
  const sse = await stream(gateway, [`logs:etl:${ws}`]);
  await sse.waitStatuses(1);
  const logsPublisher = publisher(gateway, { flushIntervalMs: 1000 });
  for (let seq = 0; seq < 200; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq, pad: 'p'.repeat(400) });
  assert.equal(await logsPublisher.flush(10000), true);
  const stats = logsPublisher.stats();
  console.log(`200 logs of ~480 bytes through a 16 KiB body limit: ${stats.requests} requests`);
  assert.deepEqual([stats.sent, stats.failed, stats.dropped], [200, 0, 0]);
  assert.ok(stats.requests > Math.floor((200 * 480) / 16384));
  const logs = await sse.logs(200);
  assert.deepEqual(logs.map((log) => log.logData.seq), [...Array(200).keys()]);
});
