#!/usr/bin/env node
// The demo publisher: plays the scenarios of scenarios.mjs against a gateway
// through the real Node SDK, on a loop and on demand.
//
//   node publisher/demo-publisher.mjs [options]
//
//   --gateway URL          gateway base URL (default http://127.0.0.1:3002)
//   --workspace ID         workspace the scenarios log to (default ws-demo)
//   --etl-token T, --faas-token T, --function-token T
//                          service tokens (default: scripts/demo.sh's dev tokens)
//   --control HOST:PORT    control endpoint, loopback only (default 127.0.0.1:3003;
//                          port 0 picks one; "off" disables it)
//   --allow-origin ORIGIN  browser origin allowed to call the control endpoint
//                          (repeatable; default: the gateway's origin, and the same
//                          port on localhost / 127.0.0.1)
//   --no-loop              play nothing until asked
//   --pause SECONDS        pause between two pipeline runs of the loop (default 20)
//   --burst-every N        the loop plays a burst after every N-th run (default 5, 0 = never)
//   --burst-rate R, --burst-seconds S   the loop's burst (default 1000 logs/s for 10 s)
//   --once pipeline|burst  play one scenario, deliver it, exit
//
// Control endpoint (JSON; CORS for the allowed origins only; POST needs
// Content-Type: application/json, so a foreign page cannot trigger it):
//   GET  /status
//   POST /scenarios/pipeline   {}                    start a pipeline run now
//   POST /scenarios/burst      {"rate":1000,"seconds":10}   (rate 1–5000, seconds 1–60)
import http from 'node:http';
import { parseArgs } from 'node:util';
import LogsSSEPublisher from '@datashop/logs-sse-publisher';
import { BURST_FUNCTION, PIPELINES, WORKSPACE, runBurst, runPipeline, sleep } from './scenarios.mjs';

const { values: args } = parseArgs({
  options: {
    gateway: { type: 'string', default: process.env.LOGS_SSE_GATEWAY_URL ?? 'http://127.0.0.1:3002' },
    workspace: { type: 'string', default: WORKSPACE },
    'etl-token': { type: 'string', default: process.env.DEMO_ETL_TOKEN ?? 'etl-dev-token' },
    'faas-token': { type: 'string', default: process.env.DEMO_FAAS_TOKEN ?? 'faas-dev-token' },
    'function-token': { type: 'string', default: process.env.DEMO_FUNCTION_TOKEN ?? 'function-dev-token' },
    control: { type: 'string', default: '127.0.0.1:3003' },
    'allow-origin': { type: 'string', multiple: true },
    'no-loop': { type: 'boolean', default: false },
    pause: { type: 'string', default: '20' },
    'burst-every': { type: 'string', default: '5' },
    'burst-rate': { type: 'string', default: '1000' },
    'burst-seconds': { type: 'string', default: '10' },
    once: { type: 'string' },
  },
});

const gateway = new URL(args.gateway);
const publisherOptions = (serviceName, serviceToken) => ({
  gatewayUrl: gateway.origin,
  serviceName,
  serviceToken,
  maxQueueSize: 100_000,
  flushIntervalMs: 50,
  logger: { warn: (m) => console.warn(`[publisher ${serviceName}] ${m}`), error: (m) => console.error(`[publisher ${serviceName}] ${m}`), info: (m) => console.log(`[publisher ${serviceName}] ${m}`) },
});
const pubs = {
  etl: new LogsSSEPublisher(publisherOptions('etl', args['etl-token'])),
  faas: new LogsSSEPublisher(publisherOptions('faas', args['faas-token'])),
  function: new LogsSSEPublisher(publisherOptions('function', args['function-token'])),
};

const state = {
  pipeline: { running: false, runs: 0, current: null },
  burst: { running: false, published: 0, target: 0, rate: 0, runs: 0 },
};
const stopping = new AbortController();
let wakeLoop = new AbortController();

async function playPipeline() {
  state.pipeline.running = true;
  state.pipeline.runs += 1;
  const n = state.pipeline.runs;
  const pipeline = PIPELINES[(n - 1) % 3 === 2 ? 1 : 0];
  state.pipeline.current = `${pipeline.workflow} run-${String(n).padStart(4, '0')}`;
  console.log(`pipeline: ${state.pipeline.current} → ${pipeline.flow} → ${pipeline.functions.join(', ')}`);
  try {
    await runPipeline(pubs, { workspace: args.workspace, n, pipeline, signal: stopping.signal });
  } finally {
    state.pipeline.running = false;
    state.pipeline.current = null;
  }
}

async function playBurst(rate, seconds) {
  state.burst = { running: true, published: 0, target: Math.round(rate * seconds), rate, runs: state.burst.runs + 1 };
  console.log(`burst: ${BURST_FUNCTION}, ${rate} logs/s for ${seconds} s`);
  const started = performance.now();
  try {
    await runBurst(pubs.function, {
      workspace: args.workspace, n: state.burst.runs, rate, seconds, signal: stopping.signal,
      onProgress: (published) => { state.burst.published = published; },
    });
    await pubs.function.flush(30_000);
    const s = pubs.function.stats();
    console.log(`burst: ${state.burst.published} logs in ${((performance.now() - started) / 1000).toFixed(1)} s (function publisher: sent ${s.sent}, dropped ${s.dropped}, failed ${s.failed}, retries ${s.retries})`);
  } finally {
    state.burst.running = false;
  }
}

/** The loop: a pipeline run, a pause (cut short by POST /scenarios/pipeline), now and then a burst. */
async function loop({ auto }) {
  const pause = Number(args.pause) * 1000;
  const burstEvery = Number(args['burst-every']);
  while (!stopping.signal.aborted) {
    if (auto || wakeLoop.signal.aborted) {
      wakeLoop = new AbortController();
      await playPipeline();
      if (auto && burstEvery > 0 && state.pipeline.runs % burstEvery === 0 && !state.burst.running) {
        void playBurst(Number(args['burst-rate']), Number(args['burst-seconds']));
      }
    }
    await sleep(auto ? pause : 3_600_000, AbortSignal.any([stopping.signal, wakeLoop.signal]));
  }
}

// ---- control endpoint -------------------------------------------------------

function allowedOrigins() {
  if (args['allow-origin']?.length) return new Set(args['allow-origin']);
  const port = gateway.port ? `:${gateway.port}` : '';
  return new Set([gateway.origin, `${gateway.protocol}//127.0.0.1${port}`, `${gateway.protocol}//localhost${port}`]);
}

function startControl(hostPort) {
  const origins = allowedOrigins();
  const [host, port] = hostPort.includes(':') ? hostPort.split(':') : ['127.0.0.1', hostPort];
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) throw new Error(`--control must be a loopback address, not ${host}`);
  const server = http.createServer(async (req, res) => {
    const origin = req.headers.origin;
    const send = (status, body) => {
      const headers = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' };
      if (origin && origins.has(origin)) Object.assign(headers, { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' });
      res.writeHead(status, headers).end(JSON.stringify(body));
    };
    if (origin && !origins.has(origin)) return send(403, { error: `origin ${origin} may not use the demo controls` });
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Origin': origin ?? '',
        'Access-Control-Allow-Methods': 'GET, POST',
        'Access-Control-Allow-Headers': 'Content-Type',
        'Access-Control-Max-Age': '600',
        Vary: 'Origin',
      }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://control');
    if (req.method === 'GET' && url.pathname === '/status') {
      return send(200, { ...state, workspace: args.workspace, publishers: Object.fromEntries(Object.entries(pubs).map(([k, p]) => [k, p.stats()])) });
    }
    if (req.method !== 'POST' || !url.pathname.startsWith('/scenarios/')) return send(404, { error: 'not found' });
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return send(415, { error: 'send Content-Type: application/json' });
    let body;
    try {
      body = JSON.parse((await readBody(req, 4096)) || '{}');
    } catch (error) {
      return send(400, { error: `invalid body: ${error.message}` });
    }
    if (url.pathname === '/scenarios/pipeline') {
      if (state.pipeline.running) return send(409, { error: `${state.pipeline.current} is still running` });
      wakeLoop.abort();
      return send(202, { message: `pipeline run ${state.pipeline.runs + 1} starting` });
    }
    if (url.pathname === '/scenarios/burst') {
      const rate = Number(body.rate ?? 1000);
      const seconds = Number(body.seconds ?? 10);
      if (!(rate >= 1 && rate <= 5000) || !(seconds >= 1 && seconds <= 60)) return send(400, { error: 'rate must be 1–5000 and seconds 1–60' });
      if (state.burst.running) return send(409, { error: 'a burst is already running' });
      void playBurst(rate, seconds);
      return send(202, { message: `burst of ${rate} logs/s for ${seconds} s started` });
    }
    return send(404, { error: 'unknown scenario' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), host, () => {
      const address = server.address();
      console.log(`control listening on http://${host}:${address.port} (GET /status, POST /scenarios/pipeline, POST /scenarios/burst)`);
      resolve(server);
    });
  });
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function shutdown(server) {
  stopping.abort();
  server?.close();
  await Promise.all(Object.values(pubs).map((p) => p.close(5_000)));
}

if (args.once) {
  if (args.once === 'pipeline') await playPipeline();
  else if (args.once === 'burst') await playBurst(Number(args['burst-rate']), Number(args['burst-seconds']));
  else throw new Error(`--once takes pipeline or burst, not ${args.once}`);
  await shutdown(null);
  const total = Object.values(pubs).reduce((sum, p) => sum + p.stats().sent, 0);
  console.log(`delivered ${total} logs to ${gateway.origin}`);
} else {
  const server = args.control === 'off' ? null : await startControl(args.control);
  console.log(`publishing to ${gateway.origin}, workspace ${args.workspace}${args['no-loop'] ? ' (no loop: waiting for the control endpoint)' : ''}`);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => void shutdown(server).then(() => process.exit(0)));
  }
  await loop({ auto: !args['no-loop'] });
}
