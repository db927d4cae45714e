'use strict';

/**
 * Errors of the publisher.
 *
 * Only mistakes the caller can fix in code are thrown (synchronously, at the
 * call): a bad id, a missing token, a log that can never be accepted.
 * Everything that depends on the gateway (network errors, 5xx, 429, 401/403)
 * is handled in the background and shows up in `stats()`, the `logger` and
 * the `onError` callback, never as an exception in a request handler.
 */

/** Base class of every error this package creates. */
class PublisherError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** The publisher was constructed with a missing or out-of-range option. */
class ConfigError extends PublisherError {}

/** A service, workspace or resource id breaks the channel segment rule. */
class ValidationError extends PublisherError {
  /**
   * @param {string} field the publish API field, e.g. "workspace_id"
   * @param {string} message
   */
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

/** The serialised logData is larger than the gateway accepts per log. */
class LogTooLargeError extends PublisherError {}

/**
 * The gateway refused entries for good (401, 403, another 4xx, or items
 * rejected inside a 202). Passed to `onError`; never thrown.
 */
class GatewayError extends PublisherError {
  /**
   * @param {number} status HTTP status
   * @param {string} code the gateway's error code, e.g. "unknown_token"
   * @param {string} gatewayMessage the gateway's explanation
   * @param {number} dropped how many entries were given up
   */
  constructor(status, code, gatewayMessage, dropped) {
    super(`gateway answered ${status} ${code}: ${gatewayMessage}`);
    this.status = status;
    this.code = code;
    this.gatewayMessage = gatewayMessage;
    this.dropped = dropped;
  }
}

module.exports = { PublisherError, ConfigError, ValidationError, LogTooLargeError, GatewayError };
