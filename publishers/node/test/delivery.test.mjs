// Logs published through the SDK arrive on the real gateway's SSE stream.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import LogsSSEPublisher, { ValidationError } from '@datashop/logs-sse-publisher';
import { Gateway, SSEStream, TOKENS, uniqueWorkspace } from './helpers/gateway.mjs';

const require = createRequire(import.meta.url);

let gateway;
const cleanup = [];

before(async () => {
  gateway = await Gateway.start();
});

after(async () => {
  for (const item of cleanup) await item();
  await gateway.stop();
});

function publisher(options = {}) {
  const service = options.serviceName || 'etl';
  const instance = new LogsSSEPublisher({
    gatewayUrl: gateway.url,
    serviceToken: TOKENS[service],
    serviceName: service,
    ...options,
  });
  cleanup.push(() => instance.close(1000));
  return instance;
}

async function stream(channels, since) {
  const opened = await SSEStream.open(gateway.url, channels, since);
  cleanup.push(() => opened.close());
  return opened;
}

test('logs arrive in publish order, once per stream', async () => {
  const ws = uniqueWorkspace();
  const channel = `logs:etl:${ws}:wf9`;
  // Resource channel plus its service-level channel: each log still once.
  const sse = await stream([channel, `logs:etl:${ws}`]);
  await sse.waitStatuses(2);
  const logsPublisher = publisher();

  for (let seq = 0; seq < 300; seq += 1) {
    logsPublisher.publishWorkflowLog(ws, 'wf9', { seq, message: `line ${seq}` });
  }
  assert.equal(await logsPublisher.flush(10000), true);

  const logs = await sse.logs(300);
  assert.deepEqual(logs.map((log) => log.logData.seq), [...Array(300).keys()]);
  assert.deepEqual(new Set(logs.map((log) => log.channel)), new Set([channel]));
  const { id, timestamp, ...own } = logs[7].logData;
  assert.deepEqual(own, { seq: 7, message: 'line 7' });
  assert.equal(typeof id, 'string');
  assert.equal(typeof timestamp, 'string');
  const stats = logsPublisher.stats();
  assert.deepEqual([stats.queued, stats.sent, stats.dropped, stats.failed], [300, 300, 0, 0]);
});

test('workflow, function and resource ids route to their channels', async () => {
  const ws = uniqueWorkspace();
  const sse = await stream([`logs:faas:${ws}`]);
  await sse.waitStatuses(1);
  // Function logs of this publisher stay in its own service.
  const logsPublisher = publisher({ serviceName: 'faas', functionServiceName: 'faas' });

  await logsPublisher.publishWorkflowLog(ws, 'wf-1', { n: 1 });
  await logsPublisher.publishFunctionLog(ws, 'fn.2', { n: 2 });
  await logsPublisher.publishLog(ws, 'res_3', { n: 3 });
  await logsPublisher.publishFunctionLog(ws, 42, { n: 4 });
  assert.equal(await logsPublisher.flush(10000), true);

  const logs = await sse.logs(4);
  assert.deepEqual(
    logs.map((log) => [log.channel, log.logData.n]),
    [
      [`logs:faas:${ws}:wf-1`, 1],
      [`logs:faas:${ws}:fn.2`, 2],
      [`logs:faas:${ws}:res_3`, 3],
      [`logs:faas:${ws}:42`, 4],
    ],
  );
});

test('batching reduces the request count', async () => {
  const ws = uniqueWorkspace();
  const sse = await stream([`logs:etl:${ws}`]);
  await sse.waitStatuses(1);
  const before = await gateway.adminStats();
  const logsPublisher = publisher({ maxBatchSize: 500, flushIntervalMs: 500 });

  const total = 2000;
  for (let seq = 0; seq < total; seq += 1) logsPublisher.publishWorkflowLog(ws, `wf${seq % 4}`, { seq });
  assert.equal(await logsPublisher.flush(10000), true);
  const afterStats = await gateway.adminStats();

  const stats = logsPublisher.stats();
  const requests = afterStats.publishRequests - before.publishRequests;
  console.log(
    `${total} logs sent in ${stats.requests} SDK requests (gateway counted ${requests} publish requests, ` +
      `${afterStats.logsPublished - before.logsPublished} logs)`,
  );
  assert.equal(stats.sent, total);
  assert.ok(stats.requests >= 4 && stats.requests <= 20, `requests: ${stats.requests}`);
  assert.equal(requests, stats.requests);
  assert.equal(afterStats.logsPublished - before.logsPublished, total);
  const logs = await sse.logs(total);
  assert.deepEqual(logs.map((log) => log.logData.seq), [...Array(total).keys()]);
});

test('ESM and CommonJS entries expose the same implementation', () => {
  const Cjs = require('@datashop/logs-sse-publisher');
  assert.equal(Cjs, LogsSSEPublisher);
  assert.equal(Cjs.LogsSSEPublisher, LogsSSEPublisher);
  assert.equal(Cjs.default, LogsSSEPublisher);
  assert.equal(Cjs.ValidationError, ValidationError);
  assert.equal(typeof require('@datashop/logs-sse-publisher/pino-transport'), 'function');
});
