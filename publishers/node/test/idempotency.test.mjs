// Idempotency-Key on the wire: every batch carries a fresh random key, a
// retry resends the batch byte for byte under the same key, a batch split
// after a 413 gets new keys. Seen by a small recording server; the same
// behaviour against the real gateway is in answer-lost.test.mjs.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { uniqueWorkspace } from './helpers/gateway.mjs';
import { retryingPublisher } from './helpers/retrying.mjs';
import { ScriptedServer } from './helpers/scripted.mjs';

const cleanup = [];
after(async () => {
  for (const item of cleanup.reverse()) await item();
});

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const publisher = (gatewayUrl, options) => retryingPublisher(gatewayUrl, cleanup, options);

async function scripted(answer) {
  const server = await ScriptedServer.start(answer);
  cleanup.push(() => server.close());
  return server;
}

const seqs = (request) => JSON.parse(request.body.toString('utf8')).map((item) => item.logData.seq);
const accepted = (count, extra = {}) => ({ status: 202, json: { accepted: count, rejected: 0, errors: [], ...extra } });

test('a retried batch is sent byte for byte under the same key; logs queued meanwhile wait for a batch of their own', async () => {
  let releaseFirst;
  const firstHeld = new Promise((release) => {
    releaseFirst = release;
  });
  const server = await scripted(async (index, request) => {
    if (index === 0) {
      await firstHeld;
      return { status: 503, json: { error: { code: 'unavailable', message: 'try again' } } };
    }
    const count = seqs(request).length;
    // The retry is answered as by the gateway that had stored it; the next
    // batch as by a gateway that predates idempotency (no `duplicates`).
    return index === 1 ? accepted(count, { duplicates: count }) : accepted(count);
  });
  const ws = uniqueWorkspace();
  const logsPublisher = publisher(server.url);
  for (let seq = 0; seq < 3; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
  const flushed = logsPublisher.flush(5000);
  await server.received(1);
  // Published while the first attempt is on the wire: not part of its retry.
  for (let seq = 3; seq < 5; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
  releaseFirst();
  assert.equal(await flushed, true);

  const [first, retry, next] = server.requests;
  assert.equal(server.requests.length, 3);
  assert.match(first.headers['idempotency-key'], UUID_V4);
  assert.equal(retry.headers['idempotency-key'], first.headers['idempotency-key']);
  assert.ok(retry.body.equals(first.body), 'the retry has the same bytes');
  assert.deepEqual(seqs(first), [0, 1, 2]);
  assert.deepEqual(seqs(next), [3, 4]);
  assert.match(next.headers['idempotency-key'], UUID_V4);
  assert.notEqual(next.headers['idempotency-key'], first.headers['idempotency-key']);
  const stats = logsPublisher.stats();
  assert.deepEqual(
    [stats.sent, stats.duplicates, stats.requests, stats.retries, stats.failed, stats.dropped],
    [5, 3, 3, 1, 0, 0],
  );
});

test('every batch gets a fresh random key', async () => {
  const server = await scripted((index, request) => accepted(seqs(request).length));
  const logsPublisher = publisher(server.url);
  const ws = uniqueWorkspace();
  for (let round = 0; round < 50; round += 1) {
    logsPublisher.publishWorkflowLog(ws, 'wf1', { seq: round });
    assert.equal(await logsPublisher.flush(5000), true);
  }
  const keys = server.requests.map((request) => request.headers['idempotency-key']);
  assert.equal(keys.length, 50);
  for (const key of keys) assert.match(key, UUID_V4);
  assert.equal(new Set(keys).size, 50);
  // Random, not a counter or a clock: the 122 random bits of a UUID v4 are
  // spread over the hex digits; across 50 keys every hex digit appears in
  // the first 8 characters (a pattern such as a timestamp prefix would not).
  assert.equal(new Set(keys.flatMap((key) => [...key.slice(0, 8)])).size, 16);
  assert.equal(logsPublisher.stats().duplicates, 0);
});

test('a batch answered 413 is split into batches with new keys', async () => {
  const server = await scripted((index, request) =>
    index === 0
      ? { status: 413, json: { error: { code: 'payload_too_large', message: 'body too large' } } }
      : accepted(seqs(request).length),
  );
  const logsPublisher = publisher(server.url);
  const ws = uniqueWorkspace();
  for (let seq = 0; seq < 8; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq, pad: 'p'.repeat(100) });
  assert.equal(await logsPublisher.flush(5000), true);
  const [whole, ...halves] = server.requests;
  assert.deepEqual(seqs(whole), [...Array(8).keys()]);
  assert.ok(halves.length >= 2, `${halves.length} requests after the 413`);
  assert.deepEqual(halves.flatMap(seqs), [...Array(8).keys()]);
  const keys = server.requests.map((request) => request.headers['idempotency-key']);
  assert.equal(new Set(keys).size, keys.length, 'every request after the 413 has a key of its own');
  const stats = logsPublisher.stats();
  assert.deepEqual([stats.sent, stats.duplicates, stats.retries], [8, 0, 0]);
});

test('close() gives up a batch waiting for its retry and counts it as dropped, once', async () => {
  const server = await scripted(() => ({ status: 503, json: { error: { code: 'unavailable', message: 'down' } } }));
  const logsPublisher = publisher(server.url, { retryBackoffMinMs: 50, retryBackoffMaxMs: 50 });
  const ws = uniqueWorkspace();
  for (let seq = 0; seq < 5; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
  assert.equal(await logsPublisher.flush(0), false);
  await server.received(2);
  // Queued behind the batch being retried.
  for (let seq = 5; seq < 8; seq += 1) logsPublisher.publishWorkflowLog(ws, 'wf1', { seq });
  const waiting = logsPublisher.stats();
  assert.deepEqual([waiting.inFlight, waiting.queueSize], [5, 3]);
  assert.equal(await logsPublisher.close(0), false);
  await new Promise((wake) => setTimeout(wake, 100)); // an aborted request would be counted by now
  const stats = logsPublisher.stats();
  assert.deepEqual(
    [stats.queued, stats.sent, stats.dropped, stats.failed, stats.inFlight, stats.queueSize],
    [8, 0, 8, 0, 0, 0],
  );
  const keys = new Set(server.requests.map((request) => request.headers['idempotency-key']));
  assert.equal(keys.size, 1, 'only the first batch was ever sent, always under its key');
});
