// The SDK against a gateway on the Redis backend while Redis goes away for
// 10 s: the gateway answers 503, the SDK keeps its queue and retries, and an
// open stream receives every log exactly once, in order, once Redis is back.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import LogsSSEPublisher from '@datashop/logs-sse-publisher';
import { Gateway, SSEStream, TOKENS, uniqueWorkspace } from './helpers/gateway.mjs';
import { RedisServer } from './helpers/redis.mjs';

const cleanup = [];
after(async () => {
  for (const item of cleanup.reverse()) await item();
});

const quiet = { warn() {}, error() {}, info() {} };
const OUTAGE_MS = 10000;

test('Redis stopped for 10 s: publishes are retried and an open stream gets everything once, in order', async () => {
  const redis = await RedisServer.start();
  cleanup.push(() => redis.close());
  const gateway = await Gateway.start(['--redis-url', redis.url, '--redis-check-ms', '100', '--redis-timeout-ms', '500']);
  cleanup.push(() => gateway.stop());
  const ws = uniqueWorkspace();
  const channel = `logs:etl:${ws}:wf1`;
  const sse = await SSEStream.open(gateway.url, [channel]);
  cleanup.push(() => sse.close());
  await sse.waitStatuses(1);
  const logsPublisher = new LogsSSEPublisher({
    gatewayUrl: gateway.url,
    serviceToken: TOKENS.etl,
    serviceName: 'etl',
    logger: quiet,
    retryBackoffMinMs: 50,
    retryBackoffMaxMs: 500,
    flushIntervalMs: 20,
  });
  cleanup.push(() => logsPublisher.close(1000));

  // 50 logs/s for 13 s: 1 s before the outage, 10 s of it, 2 s after.
  const total = 650;
  const producing = (async () => {
    for (let seq = 0; seq < total; seq += 1) {
      logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
      await delay(20);
    }
  })();
  await delay(1000);
  await redis.stop();
  const sentWhenStopped = logsPublisher.stats().sent;
  await delay(1000);
  const health = await fetch(`${gateway.url}/health`);
  assert.equal(health.status, 503, 'not ready while Redis is down');
  await delay(OUTAGE_MS - 1000);
  const sentDuringOutage = logsPublisher.stats().sent - sentWhenStopped;
  await redis.start();
  await producing;
  assert.equal(await logsPublisher.flush(20000), true);
  const stats = logsPublisher.stats();
  // Every event the stream gave, not only logs: a `gap` would fail the test.
  const seen = [];
  const others = [];
  const deadline = Date.now() + 20000;
  while (seen.length < total) {
    const item = await sse.next(Math.max(1, deadline - Date.now()));
    if (!item) throw new Error(`got ${seen.length} of ${total} logs; other events: ${JSON.stringify(others)}`);
    const [event, data] = item;
    if (event === 'log') seen.push(data);
    else others.push([event, data]);
  }
  console.log(
    `redis down ${OUTAGE_MS} ms: ${sentWhenStopped} sent before, ${sentDuringOutage} during, ` +
      `${stats.retries} retries, ${stats.requests} requests, dropped ${stats.dropped}`,
  );
  assert.ok(stats.retries >= 1, 'the gateway refused while Redis was down');
  assert.deepEqual(
    others.filter(([event]) => !['hello', 'status', 'ping'].includes(event)),
    [],
    'no gap, no close: the stream stayed open and resynced',
  );
  // A request in flight when Redis died may still have been answered.
  assert.ok(sentDuringOutage <= 50, `${sentDuringOutage} logs acknowledged while Redis was down`);
  assert.deepEqual([stats.sent, stats.dropped, stats.failed], [total, 0, 0]);
  assert.deepEqual(
    seen.map((log) => log.logData.seq),
    Array.from({ length: total }, (_, i) => i),
  );
  // Nothing more: no repeats after the last one.
  await delay(300);
  assert.deepEqual(
    sse.events.filter(([event]) => !['status', 'ping'].includes(event)),
    [],
    'no repeated log',
  );
});
