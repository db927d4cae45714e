'use strict';

/**
 * @datashop/logs-sse-publisher — publish logs to a Datashop Logs SSE gateway.
 *
 *   const LogsSSEPublisher = require('@datashop/logs-sse-publisher');
 *   const logsPublisher = new LogsSSEPublisher({ gatewayUrl, serviceToken: 'faas-token', serviceName: 'faas' });
 *   logsPublisher.publishFunctionLog(workspaceId, functionId, logData);
 *
 * The export is the class itself, with the rest of the API attached as
 * properties so that both `require(...)` and `const { ... } = require(...)`
 * work.
 */

const { LogsSSEPublisher, DEFAULTS, BOUNDS, VERSION } = require('./lib/publisher');
const errors = require('./lib/errors');
const { MAX_SEGMENT_LEN, validateSegment } = require('./lib/validate');
const { createPinoStream } = require('./lib/pino');

module.exports = LogsSSEPublisher;
Object.assign(module.exports, {
  LogsSSEPublisher,
  default: LogsSSEPublisher,
  DEFAULTS,
  BOUNDS,
  VERSION,
  MAX_SEGMENT_LEN,
  validateSegment,
  createPinoStream,
  PublisherError: errors.PublisherError,
  ConfigError: errors.ConfigError,
  ValidationError: errors.ValidationError,
  LogTooLargeError: errors.LogTooLargeError,
  GatewayError: errors.GatewayError,
});
