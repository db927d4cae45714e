'use strict';

/**
 * Channel segment validation: the rule of protocol/src/channel.rs.
 *
 * The gateway rejects a bad segment too, but only after the log was queued,
 * batched and sent, far from the line that made the mistake. Checking here
 * throws at the call, with the gateway's wording.
 */

const { ValidationError } = require('./errors');

/** Maximum length of one channel segment, in bytes. */
const MAX_SEGMENT_LEN = 64;

const VALID = /^[A-Za-z0-9_.-]+$/;

/** Renders a character the way the gateway (Rust's `{:?}`) does. */
function quoteChar(ch) {
  const escapes = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\0': '\\0', "'": "\\'", '\\': '\\\\' };
  if (escapes[ch]) return `'${escapes[ch]}'`;
  const code = ch.codePointAt(0);
  if (code < 0x20 || code === 0x7f) return `'\\u{${code.toString(16)}}'`;
  return `'${ch}'`;
}

/**
 * Returns `value` as a segment string, or throws a ValidationError naming
 * `field`. Safe integers are accepted and converted, because many services
 * keep numeric workspace and workflow ids.
 *
 * @param {string} field
 * @param {unknown} value
 * @returns {string}
 */
function validateSegment(field, value) {
  let text;
  if (typeof value === 'string') {
    text = value;
  } else if (typeof value === 'number' && Number.isSafeInteger(value)) {
    text = String(value);
  } else {
    const kind = value === null ? 'null' : typeof value;
    throw new ValidationError(field, `${field} must be a string (or integer), got ${kind}`);
  }
  if (VALID.test(text) && text.length <= MAX_SEGMENT_LEN) return text;
  if (text.length === 0) throw new ValidationError(field, `${field} is empty`);
  let position = 0;
  for (const ch of text) {
    if (!/^[A-Za-z0-9_.-]$/.test(ch)) {
      throw new ValidationError(
        field,
        `${field} contains ${quoteChar(ch)} at byte ${position}; ` +
          "only A-Z, a-z, 0-9, '_', '.' and '-' are allowed",
      );
    }
    position += Buffer.byteLength(ch, 'utf8');
  }
  throw new ValidationError(
    field,
    `${field} is ${text.length} bytes long; the limit is ${MAX_SEGMENT_LEN}`,
  );
}

module.exports = { MAX_SEGMENT_LEN, validateSegment };
