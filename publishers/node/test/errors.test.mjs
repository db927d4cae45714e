// Mistakes throw at the call; a rejecting gateway is reported once, not retried.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import LogsSSEPublisher, { ConfigError, LogTooLargeError, ValidationError } from '@datashop/logs-sse-publisher';
import { Gateway, SSEStream, TOKENS, uniqueWorkspace } from './helpers/gateway.mjs';

// Never contacted: every call below fails before any request.
const UNUSED_URL = 'http://127.0.0.1:1';

let gateway;
const cleanup = [];
before(async () => {
  gateway = await Gateway.start();
});
after(async () => {
  for (const item of cleanup) await item();
  await gateway.stop();
});

function capture() {
  const lines = { warn: [], error: [], info: [] };
  return {
    lines,
    logger: {
      warn: (m) => lines.warn.push(m),
      error: (m) => lines.error.push(m),
      info: (m) => lines.info.push(m),
    },
  };
}

function rejecting(options) {
  const errors = [];
  const { lines, logger } = capture();
  const logsPublisher = new LogsSSEPublisher({
    gatewayUrl: gateway.url,
    serviceName: 'etl',
    onError: (error) => errors.push(error),
    logger,
    ...options,
  });
  cleanup.push(() => logsPublisher.close(1000));
  return { logsPublisher, errors, lines };
}

async function publishInThreeRequests(logsPublisher, ws) {
  for (let round = 0; round < 3; round += 1) {
    for (let seq = 0; seq < 10; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq, round });
    assert.equal(await logsPublisher.flush(10000), true);
  }
}

test('an unknown token is reported once and not retried', async () => {
  const { logsPublisher, errors, lines } = rejecting({ serviceToken: 'not-a-known-token' });
  await publishInThreeRequests(logsPublisher, uniqueWorkspace());
  const stats = logsPublisher.stats();
  assert.deepEqual([stats.sent, stats.failed, stats.retries, stats.requests], [0, 30, 0, 3]);
  assert.deepEqual(errors.map((e) => [e.status, e.code, e.dropped]), Array(3).fill([401, 'unknown_token', 10]));
  assert.equal(lines.error.length, 1);
  assert.match(lines.error[0], /401 unknown_token.*serviceToken/);
  console.log(`401 reported as: ${lines.error[0]}`);
});

test('the token of another service is forbidden (403), reported once', async () => {
  const { logsPublisher, errors, lines } = rejecting({ serviceName: 'faas', serviceToken: TOKENS.etl });
  await publishInThreeRequests(logsPublisher, uniqueWorkspace());
  const stats = logsPublisher.stats();
  assert.deepEqual([stats.sent, stats.failed, stats.retries, stats.requests], [0, 30, 0, 3]);
  assert.deepEqual(new Set(errors.map((e) => e.status)), new Set([403]));
  assert.equal(errors[0].code, 'forbidden_service');
  assert.equal(lines.error.length, 1);
  assert.match(lines.error[0], /not granted the service of these logs \('faas', or 'function' for function logs\)/);
});

test('without onError a 401 goes to console.error once', async (t) => {
  const logged = [];
  t.mock.method(console, 'error', (message) => logged.push(message));
  const logsPublisher = new LogsSSEPublisher({ gatewayUrl: gateway.url, serviceToken: 'wrong-token-123', serviceName: 'etl' });
  cleanup.push(() => logsPublisher.close(1000));
  await publishInThreeRequests(logsPublisher, uniqueWorkspace());
  assert.equal(logged.length, 1);
  assert.match(logged[0], /^\[logs-sse\] publisher 'etl': gateway answered 401/);
  assert.equal(logsPublisher.stats().failed, 30);
});

test('items rejected inside an accepted batch count as failed', async () => {
  const ws = uniqueWorkspace();
  const sse = await SSEStream.open(gateway.url, [`logs:etl:${ws}`]);
  cleanup.push(() => sse.close());
  await sse.waitStatuses(1);
  // The SDK's own size limit is raised above the gateway's 64 KiB per-log
  // limit so that the gateway is the one rejecting the middle item.
  const { logsPublisher, errors } = rejecting({ serviceToken: TOKENS.etl, maxLogBytes: 200000, flushIntervalMs: 1000 });
  logsPublisher.publishWorkflowLog(ws, 'wf1', { seq: 0 });
  logsPublisher.publishWorkflowLog(ws, 'wf1', { seq: 1, blob: 'x'.repeat(100000) });
  logsPublisher.publishWorkflowLog(ws, 'wf1', { seq: 2 });
  assert.equal(await logsPublisher.flush(10000), true);
  const stats = logsPublisher.stats();
  assert.deepEqual([stats.sent, stats.failed, stats.requests], [2, 1, 1]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].dropped, 1);
  console.log(`per-item rejection reported as: ${errors[0].message}`);
  const logs = await sse.logs(2);
  assert.deepEqual(logs.map((log) => log.logData.seq), [0, 2]);
});

const INVALID_IDS = [
  [['ws 1', 'wf'], "workspace_id contains ' ' at byte 2; only A-Z, a-z, 0-9, '_', '.' and '-' are allowed"],
  [['ws', 'a:b'], "workflow_id contains ':' at byte 1"],
  [['ws', 'é'], "workflow_id contains 'é' at byte 0"],
  [['ws', 'ab\n'], "workflow_id contains '\\n' at byte 2"],
  [['', 'wf'], 'workspace_id is empty'],
  [['w'.repeat(65), 'wf'], 'workspace_id is 65 bytes long; the limit is 64'],
  [[null, 'wf'], 'workspace_id must be a string (or integer), got null'],
  [['ws', undefined], 'workflow_id must be a string (or integer), got undefined'],
  [['ws', 1.5], 'workflow_id must be a string (or integer), got number'],
  [['ws', { id: 1 }], 'workflow_id must be a string (or integer), got object'],
];

test('invalid ids throw synchronously with a precise message', () => {
  const logsPublisher = new LogsSSEPublisher({ gatewayUrl: UNUSED_URL, serviceToken: 'token-123', serviceName: 'etl', logger: null });
  for (const [[ws, id], message] of INVALID_IDS) {
    assert.throws(
      () => logsPublisher.publishWorkflowLog(ws, id, { m: 1 }),
      (error) => error instanceof ValidationError && error.message.includes(message),
      `${JSON.stringify([ws, id])} should fail with ${message}`,
    );
  }
  assert.throws(() => logsPublisher.publishFunctionLog('ws', 'fn/1', {}), /function_id contains '\/' at byte 2/);
  assert.throws(() => logsPublisher.publishLog('ws', 'r r', {}), /resource_id contains ' ' at byte 1/);
  // The longest valid ids pass.
  assert.equal(logsPublisher.publishLog('w'.repeat(64), `A-z_0.9${'r'.repeat(57)}`, { m: 1 }), true);
  assert.equal(logsPublisher.stats().queued, 1);
  logsPublisher.close(0);
});

test('configuration mistakes throw at construction', () => {
  const base = { gatewayUrl: UNUSED_URL, serviceToken: 'token-123', serviceName: 'etl' };
  const cases = [
    [{ ...base, serviceToken: '' }, /serviceToken is required/],
    [{ ...base, serviceToken: undefined }, /serviceToken is required/],
    [{ ...base, gatewayUrl: '' }, /gatewayUrl is required/],
    [{ ...base, gatewayUrl: 'logs-sse-gateway:3002' }, /gatewayUrl must be an absolute http:\/\/ or https:\/\/ URL/],
    [{ ...base, serviceName: 'et l' }, /serviceName contains ' ' at byte 2/],
    [{ ...base, maxQueueSize: 0 }, /maxQueueSize must be between 1 and 10000000, got 0/],
    [{ ...base, maxBatchSize: 1001 }, /maxBatchSize must be between 1 and 1000/],
    [{ ...base, flushIntervalMs: '100' }, /flushIntervalMs must be a finite number/],
    [{ ...base, retryBackoffMinMs: 1000, retryBackoffMaxMs: 500 }, /retryBackoffMaxMs \(500\) must be at least retryBackoffMinMs/],
    [{ ...base, onError: 'print' }, /onError must be a function/],
    [{ ...base, logger: {} }, /logger must have warn\(\) and error\(\)/],
  ];
  for (const [options, pattern] of cases) {
    assert.throws(() => new LogsSSEPublisher(options), (error) => error instanceof ConfigError && pattern.test(error.message));
  }
  assert.throws(() => new LogsSSEPublisher(), ConfigError);
});

test('unusable logData throws at the call', () => {
  const logsPublisher = new LogsSSEPublisher({
    gatewayUrl: UNUSED_URL,
    serviceToken: 'token-123',
    serviceName: 'etl',
    maxLogBytes: 1024,
    logger: null,
    addIdAndTimestamp: false, // the exact size below is the caller's logData
  });
  assert.throws(
    () => logsPublisher.publishLog('ws', 'wf', { m: 'x'.repeat(2000) }),
    (error) => error instanceof LogTooLargeError && error.message === 'logData is 2008 bytes once encoded as JSON; the limit is 1024 bytes per log',
  );
  const circular = {};
  circular.self = circular;
  assert.throws(() => logsPublisher.publishLog('ws', 'wf', circular), TypeError);
  assert.throws(() => logsPublisher.publishLog('ws', 'wf', { n: 1n }), TypeError);
  assert.throws(() => logsPublisher.publishLog('ws', 'wf'), /logData is required/);
  assert.throws(() => logsPublisher.publishLog('ws', 'wf', () => {}), /logData must be JSON-serialisable/);
  assert.equal(logsPublisher.stats().queued, 0);
  logsPublisher.close(0);
});
