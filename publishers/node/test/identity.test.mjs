// Ids, timestamps and the function service, end to end: what the SDK adds
// to logData arrives on the real gateway's stream, and function logs of a
// FAAS publisher reach the `function` service's channels.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import LogsSSEPublisher from '@datashop/logs-sse-publisher';
import { FAAS_FUNCTION_TOKEN, Gateway, SSEStream, TOKENS, uniqueWorkspace } from './helpers/gateway.mjs';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let gateway;
const cleanup = [];

before(async () => {
  gateway = await Gateway.start();
});

after(async () => {
  for (const item of cleanup) await item();
  await gateway.stop();
});

function publisher(options) {
  const instance = new LogsSSEPublisher({ gatewayUrl: gateway.url, logger: null, ...options });
  cleanup.push(() => instance.close(1000));
  return instance;
}

async function stream(channels) {
  const opened = await SSEStream.open(gateway.url, channels);
  cleanup.push(() => opened.close());
  await opened.waitStatuses(channels.length);
  return opened;
}

test('every log gets a unique UUID v4 id and a UTC millisecond timestamp of its publish time', async () => {
  const ws = uniqueWorkspace();
  const sse = await stream([`logs:etl:${ws}:wf1`]);
  const logsPublisher = publisher({ serviceToken: TOKENS.etl, serviceName: 'etl' });
  const before = Date.now();
  for (let seq = 0; seq < 200; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq, level: 'info', message: `m${seq}` });
  const afterPublish = Date.now();
  assert.equal(await logsPublisher.flush(10000), true);

  const logs = (await sse.logs(200)).map((log) => log.logData);
  assert.deepEqual(logs.map((data) => data.seq), [...Array(200).keys()]);
  for (const data of logs) {
    assert.match(data.id, UUID_V4);
    assert.match(data.timestamp, ISO_UTC_MS);
    const at = Date.parse(data.timestamp);
    // Millisecond precision: the stamp is within the publish calls' window.
    assert.ok(at >= before - 1 && at <= afterPublish, `${data.timestamp} outside [${before}, ${afterPublish}]`);
    assert.deepEqual(Object.keys(data), ['seq', 'level', 'message', 'id', 'timestamp']);
  }
  assert.equal(new Set(logs.map((data) => data.id)).size, 200, 'ids are unique');
});

test("the caller's id and timestamp win; null counts as absent; non-objects are sent as given", async () => {
  const ws = uniqueWorkspace();
  const sse = await stream([`logs:etl:${ws}:wf1`]);
  const logsPublisher = publisher({ serviceToken: TOKENS.etl, serviceName: 'etl' });
  const own = { id: 'run-7-line-1', timestamp: '2026-01-02T03:04:05.678Z', message: 'mine' };
  logsPublisher.publishWorkflowLog(ws, 'wf1', own);
  logsPublisher.publishWorkflowLog(ws, 'wf1', { id: 0, message: 'id zero is an id' });
  logsPublisher.publishWorkflowLog(ws, 'wf1', { id: null, timestamp: 1767322800000, message: 'null id' });
  logsPublisher.publishWorkflowLog(ws, 'wf1', 'plain text');
  logsPublisher.publishWorkflowLog(ws, 'wf1', [1, 2]);
  assert.equal(await logsPublisher.flush(10000), true);

  const [mine, zero, nullId, text, list] = (await sse.logs(5)).map((log) => log.logData);
  assert.deepEqual(mine, own);
  assert.equal(zero.id, 0);
  assert.match(zero.timestamp, ISO_UTC_MS);
  assert.match(nullId.id, UUID_V4);
  assert.equal(nullId.timestamp, 1767322800000);
  assert.equal(text, 'plain text');
  assert.deepEqual(list, [1, 2]);
  assert.deepEqual(own, { id: 'run-7-line-1', timestamp: '2026-01-02T03:04:05.678Z', message: 'mine' }, 'not mutated');
});

test('addIdAndTimestamp: false sends logData untouched', async () => {
  const ws = uniqueWorkspace();
  const sse = await stream([`logs:etl:${ws}:wf1`]);
  const logsPublisher = publisher({ serviceToken: TOKENS.etl, serviceName: 'etl', addIdAndTimestamp: false });
  logsPublisher.publishWorkflowLog(ws, 'wf1', { message: 'bare' });
  assert.equal(await logsPublisher.flush(10000), true);
  const [log] = await sse.logs(1);
  assert.deepEqual(log.logData, { message: 'bare' });
  assert.throws(
    () => new LogsSSEPublisher({ gatewayUrl: gateway.url, serviceToken: 't', serviceName: 'etl', addIdAndTimestamp: 'no' }),
    /addIdAndTimestamp must be a boolean/,
  );
});

test("the design's FAAS publisher: publishFunctionLog reaches service 'function' with a token granted faas+function", async () => {
  const ws = uniqueWorkspace();
  const sse = await stream([`logs:function:${ws}:fn456`, `logs:faas:${ws}:flow1`]);
  const logsPublisher = publisher({ gatewayUrl: gateway.url, serviceToken: FAAS_FUNCTION_TOKEN, serviceName: 'faas' });
  assert.equal(logsPublisher.functionServiceName, 'function');
  logsPublisher.publishFunctionLog(ws, 'fn456', { level: 'info', message: 'function ran' });
  logsPublisher.publishWorkflowLog(ws, 'flow1', { level: 'info', message: 'workflow step' });
  assert.equal(await logsPublisher.flush(10000), true);
  const logs = await sse.logs(2);
  assert.deepEqual(
    logs.map((log) => [log.channel, log.logData.message]),
    [
      [`logs:function:${ws}:fn456`, 'function ran'],
      [`logs:faas:${ws}:flow1`, 'workflow step'],
    ],
  );
  const stats = logsPublisher.stats();
  assert.deepEqual([stats.sent, stats.failed], [2, 0]);
});

test('a token not granted the function service is refused for function logs, and says why', async () => {
  const ws = uniqueWorkspace();
  const errors = [];
  const messages = [];
  const logsPublisher = publisher({
    serviceToken: TOKENS.faas,
    serviceName: 'faas',
    onError: (error) => errors.push(error),
    logger: { warn: (m) => messages.push(m), error: (m) => messages.push(m) },
  });
  logsPublisher.publishFunctionLog(ws, 'fn1', { message: 'refused' });
  assert.equal(await logsPublisher.flush(10000), true);
  assert.deepEqual(
    errors.map((e) => [e.status, e.code]),
    [[403, 'forbidden_service']],
  );
  assert.match(messages.join('\n'), /'function' for function logs/);
  assert.equal(logsPublisher.stats().failed, 1);
});
