#!/usr/bin/env node
// Load generator: publishes N logs/s for T seconds to the given channels of a
// gateway with raw `fetch` batches (so every refusal is seen and counted, not
// retried away), then prints the achieved rate and the errors.
//
//   node loadgen/loadgen.mjs --gateway http://127.0.0.1:3002 \
//     --channel function:ws-demo:fn-clickstream-parser --rate 1000 --seconds 10
//
//   --gateway URL        gateway base URL (default http://127.0.0.1:3002)
//   --channel S:W:R      service:workspace:resource to publish to; repeatable
//                        (logs are spread round-robin over the channels)
//   --token S=T          service token; repeatable (default: scripts/demo.sh's
//                        dev tokens, `{service}-dev-token`)
//   --rate N             logs per second in total (default 1000)
//   --seconds T          how long (default 10)
//   --tick MS            how often a batch is sent per channel (default 20)
//   --payload BYTES      pad each message to about this size (default 0)
//   --json               print the summary as one JSON line too
//
// Each logData is {seq, level, message, publishedAt, loadgen}: `seq` counts
// from 1 per channel, `publishedAt` is the send time (ms since the epoch,
// sub-ms), which the demo app turns into publish → on-screen latency.
// Requests to one channel are sequential, so its logs arrive in `seq` order.
// Exit code: 0 when every log was accepted, 1 otherwise.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export async function generateLoad({
  gateway = 'http://127.0.0.1:3002',
  channels,
  tokens = {},
  rate = 1000,
  seconds = 10,
  tickMs = 20,
  payload = 0,
  onTick,
} = {}) {
  if (!channels?.length) throw new Error('at least one channel (service:workspace:resource) is needed');
  const url = new URL('/api/logs/publish', gateway).href;
  const targets = channels.map((spec) => {
    const [service, workspace_id, resource_id, extra] = spec.split(':');
    if (!service || !workspace_id || !resource_id || extra !== undefined) throw new Error(`channel must be service:workspace:resource, not ${spec}`);
    return { service, workspace_id, resource_id, token: tokens[service] ?? `${service}-dev-token`, seq: 0, due: 0, busy: null };
  });
  const total = Math.round(rate * seconds);
  const pad = payload > 0 ? ' ' + 'x'.repeat(payload) : '';
  const stats = { target: total, sent: 0, accepted: 0, rejected: 0, requests: 0, errors: {}, maxRequestMs: 0 };
  const countError = (key, n) => { stats.errors[key] = (stats.errors[key] ?? 0) + n; };

  async function send(t, count) {
    const publishedAt = performance.timeOrigin + performance.now();
    const items = [];
    for (let i = 0; i < count; i += 1) {
      t.seq += 1;
      items.push({
        service: t.service, workspace_id: t.workspace_id, resource_id: t.resource_id,
        logData: { seq: t.seq, level: t.seq % 50 === 0 ? 'warn' : 'info', message: `loadgen line ${t.seq} to ${t.resource_id}${pad}`, publishedAt, loadgen: true },
      });
    }
    stats.sent += count;
    stats.requests += 1;
    const started = performance.now();
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${t.token}` },
        body: JSON.stringify(items),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 202) {
        stats.accepted += body.accepted ?? 0;
        stats.rejected += body.rejected ?? 0;
        for (const e of body.errors ?? []) countError(`${e.status} ${e.code}`, 1);
      } else {
        stats.rejected += count;
        countError(`${response.status} ${body.error?.code ?? 'error'}`, count);
      }
    } catch (error) {
      stats.rejected += count;
      countError(`network ${error.cause?.code ?? error.message}`, count);
    }
    stats.maxRequestMs = Math.max(stats.maxRequestMs, performance.now() - started);
  }

  const started = performance.now();
  let generated = 0;
  while (generated < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; generated < due; generated += 1) targets[generated % targets.length].due += 1;
    for (const t of targets) {
      if (t.busy !== null || t.due === 0) continue;
      const count = Math.min(t.due, 1000); // the gateway's default --max-batch
      t.due -= count;
      t.busy = send(t, count).finally(() => { t.busy = null; });
    }
    onTick?.(stats);
    await new Promise((resolve) => setTimeout(resolve, tickMs));
  }
  // Drain: what is still due once the in-flight requests finish.
  for (;;) {
    await Promise.all(targets.map((t) => t.busy));
    const left = targets.filter((t) => t.due > 0);
    if (left.length === 0) break;
    for (const t of left) {
      const count = Math.min(t.due, 1000);
      t.due -= count;
      t.busy = send(t, count).finally(() => { t.busy = null; });
    }
  }
  const elapsed = (performance.now() - started) / 1000;
  return { ...stats, seconds: Number(elapsed.toFixed(3)), rate: Math.round(stats.accepted / elapsed), channels: targets.map((t) => `logs:${t.service}:${t.workspace_id}:${t.resource_id}`) };
}

function main() {
  const { values } = parseArgs({
    options: {
      gateway: { type: 'string', default: 'http://127.0.0.1:3002' },
      channel: { type: 'string', multiple: true },
      token: { type: 'string', multiple: true },
      rate: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '10' },
      tick: { type: 'string', default: '20' },
      payload: { type: 'string', default: '0' },
      json: { type: 'boolean', default: false },
    },
  });
  const tokens = Object.fromEntries((values.token ?? []).map((t) => t.split(/=(.*)/s).slice(0, 2)));
  const channels = values.channel ?? ['function:ws-demo:fn-clickstream-parser'];
  console.log(`loadgen: ${values.rate} logs/s for ${values.seconds} s to ${channels.join(', ')} via ${values.gateway}`);
  return generateLoad({
    gateway: values.gateway, channels, tokens,
    rate: Number(values.rate), seconds: Number(values.seconds), tickMs: Number(values.tick), payload: Number(values.payload),
  }).then((result) => {
    const errors = Object.entries(result.errors).map(([k, n]) => `${k} ×${n}`).join(', ') || 'none';
    console.log(`loadgen: accepted ${result.accepted}/${result.target} in ${result.seconds} s = ${result.rate} logs/s; ${result.requests} requests (slowest ${result.maxRequestMs.toFixed(1)} ms); rejected ${result.rejected}; errors: ${errors}`);
    if (values.json) console.log(JSON.stringify(result));
    process.exitCode = result.accepted === result.target ? 0 : 1;
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
