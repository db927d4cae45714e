// The pure parts: the drop-oldest queue, Retry-After parsing, segment rules.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { BoundedQueue } = require('../lib/queue.js');
const { parseRetryAfter } = require('../lib/transport.js');
const { validateSegment } = require('../lib/validate.js');

const entries = (...names) => names.map((body) => ({ body, bytes: body.length, queuedAt: 0 }));

test('the queue drops the oldest on push and on put-back', () => {
  const queue = new BoundedQueue(3);
  const dropped = entries('a', 'b', 'c', 'd').reduce((sum, entry) => sum + queue.push(entry), 0);
  assert.equal(dropped, 1);
  const batch = queue.take(2, 1 << 20);
  assert.deepEqual(batch.map((e) => e.body), ['b', 'c']);
  for (const entry of entries('e', 'f')) queue.push(entry);
  // The queue holds d, e, f: putting back b and c drops exactly those two.
  assert.equal(queue.pushFront(batch), 2);
  assert.deepEqual(queue.take(10, 1 << 20).map((e) => e.body), ['d', 'e', 'f']);
  assert.equal(queue.length, 0);
});

test('the queue batches by bytes but never returns an empty batch', () => {
  const queue = new BoundedQueue(10);
  for (const entry of entries('x'.repeat(10), 'y'.repeat(10), 'z'.repeat(30))) queue.push(entry);
  assert.deepEqual(queue.take(10, 25).map((e) => e.bytes), [10, 10]);
  assert.deepEqual(queue.take(10, 25).map((e) => e.bytes), [30]); // alone, even if larger
  assert.deepEqual(queue.take(10, 25), []);
});

test('the queue stays correct across many drops and compactions', () => {
  const queue = new BoundedQueue(1000);
  let dropped = 0;
  for (let i = 0; i < 50000; i += 1) dropped += queue.push({ body: String(i), bytes: 1, queuedAt: 0 });
  assert.equal(dropped, 49000);
  assert.equal(queue.length, 1000);
  const all = queue.take(1000, 1 << 20).map((e) => Number(e.body));
  assert.deepEqual(all, Array.from({ length: 1000 }, (_, i) => 49000 + i));
});

test('Retry-After accepts seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(' 0.5 '), 500);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter('soon'), null);
  const inTen = parseRetryAfter(new Date(Date.now() + 10000).toUTCString());
  assert.ok(inTen > 8000 && inTen <= 10000, String(inTen));
  assert.equal(parseRetryAfter(new Date(Date.now() - 60000).toUTCString()), 0);
});

test('segment validation follows protocol/src/channel.rs', () => {
  assert.equal(validateSegment('workspace_id', 'A-z_0.9'), 'A-z_0.9');
  assert.equal(validateSegment('workspace_id', 42), '42');
  assert.equal(validateSegment('workspace_id', 'w'.repeat(64)), 'w'.repeat(64));
  // The character check comes before the length check, as in the gateway,
  // and positions are UTF-8 byte offsets.
  assert.throws(() => validateSegment('resource_id', `${'w'.repeat(70)} `), /resource_id contains ' ' at byte 70/);
  assert.throws(() => validateSegment('resource_id', 'éa b'), /resource_id contains 'é' at byte 0/);
  assert.throws(() => validateSegment('resource_id', 'ab😀'), /resource_id contains '😀' at byte 2/);
  assert.throws(() => validateSegment('resource_id', 'a\u0001'), /resource_id contains '\\u\{1\}' at byte 1/);
  assert.throws(() => validateSegment('resource_id', 'a:b'), /contains ':' at byte 1/);
});

test('stampLog adds a UUID v4 id and an ISO 8601 UTC millisecond timestamp only where missing', () => {
  const { stampLog, utcTimestamp } = require('../lib/stamp.js');
  const at = Date.UTC(2026, 11, 1, 10, 0, 0, 123);
  assert.equal(utcTimestamp(at), '2026-12-01T10:00:00.123Z');
  const input = { message: 'm' };
  const stamped = stampLog(input, at);
  assert.notEqual(stamped, input, 'a copy');
  assert.deepEqual(input, { message: 'm' }, 'the caller object is untouched');
  assert.equal(stamped.timestamp, '2026-12-01T10:00:00.123Z');
  assert.match(stamped.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const own = { id: 'x', timestamp: 't' };
  assert.equal(stampLog(own, at), own, 'nothing to add: the same object');
  assert.deepEqual(stampLog({ id: undefined, timestamp: null }, at).timestamp, '2026-12-01T10:00:00.123Z');
  assert.equal(typeof stampLog({ id: undefined }, at).id, 'string');
  assert.deepEqual(stampLog({ id: false, timestamp: 0 }, at), { id: false, timestamp: 0 });
  for (const value of ['text', 42, true, null, [1], new Date(at), new Map()]) {
    assert.equal(stampLog(value, at), value, `${String(value)} is sent as given`);
  }
  const bare = Object.create(null);
  bare.message = 'no prototype';
  assert.equal(typeof stampLog(bare, at).id, 'string');
  const ids = new Set(Array.from({ length: 1000 }, () => stampLog({}, at).id));
  assert.equal(ids.size, 1000);
});
