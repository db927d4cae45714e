'use strict';

/**
 * A batch: the unit the sender sends and retries, with its idempotency key.
 *
 * The body is encoded once, when the batch is taken from the queue, and a
 * retry sends exactly those bytes under the same `Idempotency-Key`: the
 * gateway then recognises a request it already stored (whose answer was
 * lost) and stores nothing again. Re-encoding, or letting a retried batch
 * take in logs queued behind it, would make the retry a different request
 * and the logs it shares with the first attempt could be stored twice.
 */

const { randomUUID } = require('node:crypto');

/** @typedef {import('./queue').Entry} Entry */

/**
 * @typedef {object} Batch
 * @property {Entry[]} entries the queue entries, in publish order (kept to split the batch after a 413)
 * @property {string} key the Idempotency-Key: a random UUID v4 (122 random bits), new for every batch
 * @property {Buffer} body the JSON array sent, byte for byte the same on every attempt
 */

/**
 * @param {Entry[]} entries
 * @returns {Batch}
 */
function newBatch(entries) {
  const body = Buffer.from(`[${entries.map((entry) => entry.body).join(',')}]`, 'utf8');
  return { entries, key: randomUUID(), body };
}

module.exports = { newBatch };
