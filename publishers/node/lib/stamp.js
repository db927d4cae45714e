'use strict';

/**
 * Gives a log an `id` and a `timestamp` when it has none of its own.
 *
 * Log pages key their rows by `id` and show `timestamp`, so every log should
 * carry both; a service that sets its own keeps them. Only plain objects are
 * stamped: an array, a string or a class instance (whose JSON form is its
 * own business) is sent as given. The same rules hold in the Python SDK.
 *
 * - `id`: a random UUID v4 (`crypto.randomUUID`), unique without any
 *   coordination between processes.
 * - `timestamp`: ISO 8601 in UTC with milliseconds,
 *   `2026-12-01T10:00:00.123Z`, taken when the log is published (not sent).
 * - A key that is missing, `undefined` or `null` counts as absent; any other
 *   value wins, whatever its type. The caller's object is never modified.
 */

const { randomUUID } = require('node:crypto');

function isPlainObject(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return (proto === Object.prototype || proto === null) && typeof value.toJSON !== 'function';
}

/** An ISO 8601 UTC timestamp with milliseconds, e.g. `2026-12-01T10:00:00.123Z`. */
function utcTimestamp(ms = Date.now()) {
  return new Date(ms).toISOString();
}

/**
 * `logData` itself, or a shallow copy with `id` and/or `timestamp` added.
 * @param {unknown} logData
 * @param {number} [nowMs]
 */
function stampLog(logData, nowMs) {
  if (!isPlainObject(logData)) return logData;
  const needsId = logData.id == null;
  const needsTimestamp = logData.timestamp == null;
  if (!needsId && !needsTimestamp) return logData;
  const stamped = { ...logData };
  if (needsId) stamped.id = randomUUID();
  if (needsTimestamp) stamped.timestamp = utcTimestamp(nowMs);
  return stamped;
}

module.exports = { stampLog, utcTimestamp };
