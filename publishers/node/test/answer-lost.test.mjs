// The failure idempotency keys exist for: the gateway stored a batch but its
// answer never reached the SDK (connection cut, gateway or Redis gone after
// the write). A proxy between the SDK and the real gateway loses answers; the
// SDK retries under the same key and a stream must get every log exactly once.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { Gateway, SSEStream, uniqueWorkspace } from './helpers/gateway.mjs';
import { CuttingProxy } from './helpers/proxy.mjs';
import { retryingPublisher } from './helpers/retrying.mjs';
import { RedisServer } from './helpers/redis.mjs';

const cleanup = [];
after(async () => {
  for (const item of cleanup.reverse()) await item();
});


const publisher = (gatewayUrl, options) => retryingPublisher(gatewayUrl, cleanup, options);

/** Reads every event up to the sentinel log; returns the logs before it. */
async function logsUntilSentinel(sse, timeoutMs = 10000) {
  const logs = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const item = await sse.next(Math.max(1, deadline - Date.now()));
    if (!item) throw new Error(`no sentinel within ${timeoutMs} ms; ${logs.length} logs before`);
    const [event, data] = item;
    if (event === 'log') {
      if (data.logData.seq === 'end') return logs;
      logs.push(data);
    } else if (!['hello', 'status', 'ping'].includes(event)) {
      throw new Error(`unexpected ${event} event: ${JSON.stringify(data)}`);
    }
  }
}

/**
 * A real gateway, a proxy in front of it that loses the answers `cut(index)`
 * picks, and a stream on a fresh workspace's `wf1`.
 */
async function gatewayBehindProxy(backendArgs, cut) {
  const gateway = await Gateway.start(backendArgs);
  cleanup.push(() => gateway.stop());
  const proxy = await CuttingProxy.start(gateway.port, cut);
  cleanup.push(() => proxy.close());
  const ws = uniqueWorkspace();
  const sse = await SSEStream.open(gateway.url, [`logs:etl:${ws}:wf1`]);
  cleanup.push(() => sse.close());
  await sse.waitStatuses(1);
  return { proxy, ws, sse };
}

async function answerLostOnce(backendArgs) {
  const { proxy, ws, sse } = await gatewayBehindProxy(backendArgs, (index) => index === 0);

  const logsPublisher = publisher(proxy.url);
  const total = 20;
  for (let seq = 0; seq < total; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
  assert.equal(await logsPublisher.flush(5000), true);
  const stats = logsPublisher.stats();
  // A last log behind the others: once it is on the stream, a repeat of any
  // earlier one would have been too.
  logsPublisher.publishWorkflowLog(ws, 'wf1', { seq: 'end' });
  assert.equal(await logsPublisher.flush(5000), true);
  const logs = await logsUntilSentinel(sse);

  assert.deepEqual(proxy.cuts.map((cut) => cut.items), [total], 'the first request was stored, its answer lost');
  assert.deepEqual(logs.map((log) => log.logData.seq), [...Array(total).keys()], 'every log exactly once');
  assert.deepEqual(
    [stats.sent, stats.duplicates, stats.requests, stats.retries, stats.failed, stats.dropped],
    [total, total, 2, 1, 0, 0],
  );
}

test('an answer lost after the gateway stored the batch: the retry stores nothing again (memory backend)', async () => {
  await answerLostOnce([]);
});

test('an answer lost after the gateway stored the batch: the retry stores nothing again (Redis backend)', async () => {
  const redis = await RedisServer.start();
  cleanup.push(() => redis.close());
  await answerLostOnce(['--redis-url', redis.url]);
});

/** A small seeded PRNG (mulberry32), so a failing run's choices can be replayed with IDEMPOTENCY_SEED. */
function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('answers lost at random while publishing: every log once, in order, duplicates as stored', async () => {
  const seed = Number(process.env.IDEMPOTENCY_SEED ?? Math.floor(Math.random() * 2 ** 32));
  // Two streams, so the answers lost (by request number) and the publishing
  // pattern each replay from the seed; how logs fall into batches still
  // depends on timing.
  const random = prng(seed);
  const lose = prng(seed ^ 0x9e3779b9);
  // The first answer is always lost, then about one in three.
  const { proxy, ws, sse } = await gatewayBehindProxy([], (index) => lose() < 0.3 || index === 0);

  const logsPublisher = publisher(proxy.url, { maxBatchSize: 1 + Math.floor(random() * 20), flushIntervalMs: 2 });
  const total = 400;
  for (let seq = 0; seq < total; seq += 1) {
    logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
    // Bursts and pauses, so batches of every size meet retries in flight.
    if (random() < 0.1) await new Promise((wake) => setTimeout(wake, Math.floor(random() * 10)));
  }
  assert.equal(await logsPublisher.flush(20000), true);
  const stats = logsPublisher.stats();
  const cuts = proxy.cuts.slice(); // the sentinel's answer may be lost too
  logsPublisher.publishWorkflowLog(ws, 'wf1', { seq: 'end' });
  assert.equal(await logsPublisher.flush(20000), true);
  const logs = await logsUntilSentinel(sse, 20000);

  const context = `seed ${seed} (IDEMPOTENCY_SEED=${seed} replays its choices)`;
  console.log(
    `${total} logs, ${stats.requests} requests, ${cuts.length} answers lost, ` +
      `${stats.duplicates} duplicates recognised; ${context}`,
  );
  assert.deepEqual(logs.map((log) => log.logData.seq), [...Array(total).keys()], context);
  // Each batch whose answer was lost at least once was stored by its first
  // attempt; the attempt that got through was told all of it was already there.
  const lostBatches = new Map(cuts.map((cut) => [cut.key, cut.items]));
  const expectedDuplicates = [...lostBatches.values()].reduce((sum, items) => sum + items, 0);
  assert.deepEqual(
    [stats.sent, stats.duplicates, stats.retries, stats.failed, stats.dropped],
    [total, expectedDuplicates, cuts.length, 0, 0],
    context,
  );
});
