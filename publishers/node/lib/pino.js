'use strict';

/**
 * pino integration: a destination stream for `pino(options, stream)` and a
 * worker-thread transport for `pino.transport({ target })`.
 *
 * Each pino line is one JSON object. Its ids come from the line itself, so
 * they can be set once on a child logger:
 *
 *   const log = logger.child({ workspace_id: ws, function_id: fn });
 *   log.info('cold start');     // -> logs:faas:{ws}:{fn}
 *
 * Recognised id keys: workspace_id / workspaceId, and one of workflow_id /
 * workflowId, function_id / functionId, resource_id / resourceId. They are
 * removed from logData (the channel already carries them); numeric pino
 * levels are turned into their names. Lines without ids are skipped (start-up
 * and library logs belong to no workflow); lines with invalid ids are counted
 * and reported once, never thrown into the logging call.
 */

const { Writable } = require('node:stream');
const { LogsSSEPublisher } = require('./publisher');

const LEVELS = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

const WORKSPACE_KEYS = ['workspace_id', 'workspaceId'];
const RESOURCE_KEYS = [
  ['workflow_id', 'workflow_id'],
  ['workflowId', 'workflow_id'],
  ['function_id', 'function_id'],
  ['functionId', 'function_id'],
  ['resource_id', 'resource_id'],
  ['resourceId', 'resource_id'],
];

const PUBLISH = {
  workflow_id: 'publishWorkflowLog',
  function_id: 'publishFunctionLog',
  resource_id: 'publishLog',
};

/**
 * Builds a Writable that publishes each pino line through `publisher`.
 *
 * @param {LogsSSEPublisher} publisher
 * @param {{ closePublisher?: boolean, levelLabels?: boolean }} [options]
 *   closePublisher: end() also closes the publisher (default false);
 *   levelLabels: replace numeric levels with names (default true).
 */
function createPinoStream(publisher, options = {}) {
  if (!(publisher instanceof LogsSSEPublisher)) {
    throw new TypeError('createPinoStream(publisher) needs a LogsSSEPublisher');
  }
  const levelLabels = options.levelLabels !== false;
  let partial = '';
  let reportedInvalid = false;

  const stream = new Writable({
    decodeStrings: false,
    write(chunk, _encoding, callback) {
      const text = partial + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) handleLine(line);
      callback();
    },
    final(callback) {
      if (partial) handleLine(partial);
      partial = '';
      if (!options.closePublisher) {
        publisher.flush().then(() => callback(), callback);
        return;
      }
      publisher.close().then(() => callback(), callback);
    },
  });
  /** Lines not streamed because they carried no workspace/resource id. */
  stream.skipped = 0;
  /** Lines not streamed because they were not JSON or had invalid ids. */
  stream.invalid = 0;

  function handleLine(line) {
    if (!line.trim()) return;
    let record;
    try {
      record = JSON.parse(line);
    } catch {
      stream.invalid += 1;
      return;
    }
    if (!record || typeof record !== 'object' || Array.isArray(record)) {
      stream.invalid += 1;
      return;
    }
    const workspaceKey = WORKSPACE_KEYS.find((key) => record[key] != null);
    const resource = RESOURCE_KEYS.find(([key]) => record[key] != null);
    if (!workspaceKey || !resource) {
      stream.skipped += 1;
      return;
    }
    const [resourceKey, field] = resource;
    const workspaceId = record[workspaceKey];
    const resourceId = record[resourceKey];
    const logData = { ...record };
    for (const key of WORKSPACE_KEYS) delete logData[key];
    for (const [key] of RESOURCE_KEYS) delete logData[key];
    if (levelLabels && typeof logData.level === 'number' && LEVELS[logData.level]) {
      logData.level = LEVELS[logData.level];
    }
    try {
      publisher[PUBLISH[field]](workspaceId, resourceId, logData);
    } catch (error) {
      // A logging call must never throw: count it, say it once.
      stream.invalid += 1;
      if (!reportedInvalid) {
        reportedInvalid = true;
        publisher._error(`pino line not published: ${error.message} (further ones are counted in stream.invalid)`);
      }
    }
  }

  return stream;
}

/**
 * The pino transport entry: `pino.transport({ target:
 * '@datashop/logs-sse-publisher/pino-transport', options })`. Runs in pino's
 * worker thread, with its own publisher built from `options` (the
 * LogsSSEPublisher options, plus `levelLabels`). When pino ends the
 * transport, queued logs are delivered before the worker exits.
 *
 * @param {object} options
 */
function pinoTransport(options = {}) {
  const { levelLabels, ...publisherOptions } = options;
  const publisher = new LogsSSEPublisher(publisherOptions);
  return createPinoStream(publisher, { closePublisher: true, levelLabels });
}

module.exports = { createPinoStream, pinoTransport };
