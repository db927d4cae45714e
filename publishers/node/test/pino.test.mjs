// pino integration: a destination stream and a worker-thread transport, with real pino.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import pino from 'pino';

import LogsSSEPublisher, { createPinoStream } from '@datashop/logs-sse-publisher';
import { FAAS_FUNCTION_TOKEN, Gateway, SSEStream, TOKENS, uniqueWorkspace } from './helpers/gateway.mjs';

const run = promisify(execFile);
let gateway;
const cleanup = [];
before(async () => {
  gateway = await Gateway.start();
});
after(async () => {
  for (const item of cleanup) await item();
  await gateway.stop();
});

async function stream(channels) {
  const opened = await SSEStream.open(gateway.url, channels);
  cleanup.push(() => opened.close());
  await opened.waitStatuses(channels.length);
  return opened;
}

test('pino(options, createPinoStream(publisher)) streams child-logger lines', async () => {
  const ws = uniqueWorkspace();
  // Function logs go to the function service: the token is granted both.
  const sse = await stream([`logs:function:${ws}`, `logs:faas:${ws}`]);
  const errors = [];
  const logsPublisher = new LogsSSEPublisher({
    gatewayUrl: gateway.url,
    serviceToken: FAAS_FUNCTION_TOKEN,
    serviceName: 'faas',
    logger: { warn() {}, error: (m) => errors.push(m) },
  });
  cleanup.push(() => logsPublisher.close(1000));
  const destination = createPinoStream(logsPublisher);
  const logger = pino({ base: undefined }, destination);

  logger.info('service started'); // no ids: skipped
  const fnLog = logger.child({ workspace_id: ws, function_id: 'fn1' });
  fnLog.info({ rows: 3 }, 'cold start');
  fnLog.error(new Error('boom'), 'invocation failed');
  logger.child({ workspaceId: ws, workflowId: 'wf2' }).warn('camelCase ids work too');
  logger.child({ workspace_id: ws, function_id: 'bad id' }).info('never published'); // invalid: counted
  assert.equal(await logsPublisher.flush(10000), true);

  const logs = await sse.logs(3);
  assert.deepEqual(logs.map((log) => log.channel), [`logs:function:${ws}:fn1`, `logs:function:${ws}:fn1`, `logs:faas:${ws}:wf2`]);
  const first = logs[0].logData;
  assert.equal(first.msg, 'cold start');
  assert.equal(first.level, 'info');
  assert.equal(first.rows, 3);
  assert.equal(typeof first.time, 'number');
  assert.equal(first.workspace_id, undefined);
  assert.equal(first.function_id, undefined);
  assert.equal(logs[1].logData.level, 'error');
  assert.match(logs[1].logData.err.stack, /Error: boom/);
  assert.equal(logs[2].logData.level, 'warn');
  assert.equal(destination.skipped, 1);
  assert.equal(destination.invalid, 1);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /function_id contains ' ' at byte 3/);
});

test('the pino worker-thread transport delivers before the process exits', async () => {
  const ws = uniqueWorkspace();
  const sse = await stream([`logs:function:${ws}`]);
  const child = fileURLToPath(new URL('./fixtures/pino-transport-child.cjs', import.meta.url));
  const started = performance.now();
  await run(process.execPath, [child, gateway.url, FAAS_FUNCTION_TOKEN, ws, '25'], { timeout: 30000 });
  console.log(`pino transport child exited after ${(performance.now() - started).toFixed(0)} ms`);
  const logs = await sse.logs(25);
  assert.deepEqual(logs.map((log) => log.logData.seq), [...Array(25).keys()]);
  assert.equal(logs[0].channel, `logs:function:${ws}:fn-transport`);
  assert.equal(logs[0].logData.msg, 'invocation 0');
});
