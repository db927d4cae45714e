// What the end-to-end tests share: the real gateway as a child process
// (serving the built demo app with --static-dir; stop/start on the same port
// for the reconnection test), headless Debian Chromium through playwright-core,
// a page instrumented before its scripts run (EventSource constructions,
// long tasks) and told how it may share its connection with other tabs,
// publishing, the gateway's stats, and reading a pane's state.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const EXAMPLES = path.resolve(here, '..');
export const ROOT = path.resolve(EXAMPLES, '..');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'e2e');
mkdirSync(ARTIFACTS, { recursive: true });

export const GATEWAY_BIN = process.env.GATEWAY_BIN ?? path.join(ROOT, 'target/debug/logs-sse-gateway');
export const APP_DIST = process.env.DEMO_APP_DIST ?? path.join(EXAMPLES, 'app/dist');
export const TOKENS = { etl: 'etl-e2e-token', faas: 'faas-e2e-token', function: 'function-e2e-token' };
export const ADMIN_TOKEN = 'admin-e2e-token';
/** The HS256 key of a `jwt` gateway (the gateway wants at least 32 bytes). */
export const JWT_SECRET = 'datashop-e2e-subscriber-jwt-secret-0123456789';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A workspace id no other test uses (gateway history and sessionStorage keys stay apart). */
export function uniqueWorkspace(prefix = 'ws') {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/** The gateway binary, started and stopped by the test; restarts keep the port. */
export class Gateway {
  /**
   * `staticDir` replaces the demo app; `serviceTokens` (`SERVICES=TOKEN`) replace TOKENS; `args` are more flags;
   * `jwt`: subscribers need a JWT signed with JWT_SECRET (`mintJwt`), in the URL or the cookie, instead of none.
   */
  constructor(name, { staticDir = APP_DIST, serviceTokens = null, args = [], jwt = false } = {}) {
    this.name = name;
    this.extraArgs = jwt ? ['--jwt-secret', JWT_SECRET, '--allow-query-token', '--jwt-leeway-secs', '0', ...args] : args;
    this.anonymous = !jwt;
    this.staticDir = staticDir;
    this.serviceTokens = serviceTokens ?? Object.entries(TOKENS).map(([service, token]) => `${service}=${token}`);
    this.port = 0;
    this.url = null;
    this.child = null;
    this.log = createWriteStream(path.join(ARTIFACTS, `gateway-${name}.log`));
  }

  async start() {
    const args = [
      '--listen', `127.0.0.1:${this.port}`,
      '--static-dir', this.staticDir,
      ...(this.anonymous ? ['--allow-anonymous'] : []),
      '--admin-token', ADMIN_TOKEN,
      ...this.serviceTokens.flatMap((grant) => ['--service-token', grant]),
      ...this.extraArgs,
    ];
    const child = spawn(GATEWAY_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.pipe(this.log, { end: false });
    this.url = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`gateway did not start within 20 s: ${out}`)), 20_000);
      child.stdout.on('data', (chunk) => {
        out += chunk;
        this.log.write(chunk);
        const match = /listening on (http:\/\/[0-9.:]+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited with ${code} before listening (log: ${this.log.path})`));
      });
    });
    this.port = Number(new URL(this.url).port);
    return this;
  }

  /** SIGTERM (graceful: streams get `close`), then waits for the exit. */
  async stop() {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const forced = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(forced);
    this.child = null;
  }

  async close() {
    await this.stop();
    this.log.end();
  }
}

/** A subscriber JWT for a `jwt` gateway: HS256 over `claims` (`sub`, `exp` in seconds, `workspaces`, `logs_channels`). */
export function mintJwt(claims) {
  const b64url = (text) => Buffer.from(text).toString('base64url');
  const signed = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signed}.${createHmac('sha256', JWT_SECRET).update(signed).digest('base64url')}`;
}

/**
 * What an app's backend does for the demo's `?token-url=`: on loopback,
 * `GET /token?ws=WS&ttl=SECONDS` answers a JWT granting workspace WS that
 * expires in SECONDS (CORS: any origin). `issued` counts the tokens handed out.
 */
export class TokenServer {
  constructor() {
    this.issued = 0;
    this.server = createServer((request, response) => {
      const query = new URL(request.url, 'http://token').searchParams;
      const ttl = Number(query.get('ttl') ?? '60');
      const ws = query.get('ws');
      if (request.method !== 'GET' || ws === null || !Number.isFinite(ttl)) {
        response.writeHead(400, { 'Access-Control-Allow-Origin': '*' }).end('GET /token?ws=WS&ttl=SECONDS');
        return;
      }
      this.issued += 1;
      const token = mintJwt({ sub: 'e2e-user', exp: Math.floor(Date.now() / 1000) + ttl, workspaces: [ws] });
      response.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' }).end(token);
    });
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  /** The demo's `token-url` for workspace `ws`, tokens living `ttl` seconds. */
  tokenUrl(ws, ttl) {
    return `${this.url}/token?ws=${encodeURIComponent(ws)}&ttl=${ttl}`;
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

export async function publish(gateway, service, workspace_id, resource_id, logDatas) {
  const body = logDatas.map((logData) => ({ service, workspace_id, resource_id, logData }));
  const response = await fetch(`${gateway.url}/api/logs/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKENS[service]}` },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (response.status !== 202 || answer.accepted !== logDatas.length) {
    throw new Error(`publish to ${service}:${workspace_id}:${resource_id} answered ${response.status} ${JSON.stringify(answer)}`);
  }
  return answer;
}

/** `count` logs {seq, tag, message, level, publishedAt} with seq from `from`. */
export function lines(tag, from, count) {
  return Array.from({ length: count }, (_, i) => ({
    seq: from + i,
    tag,
    level: (from + i) % 7 === 0 ? 'warn' : 'info',
    message: `${tag} line ${from + i}`,
    publishedAt: performance.timeOrigin + performance.now(),
  }));
}

/**
 * Publishes `rate` logs/s in total to `gateway`, round-robin over `targets`
 * (`{ service, resource, tag? }`) in workspace `ws`, each target's requests
 * in order (logData.seq counts from 1 per target; `tag`, by default the
 * service, names it and keys the counts), until stopped; `stop()` resolves
 * with the count per tag.
 */
export function startPublishing(gateway, ws, rate, targets) {
  const tagOf = (t) => t.tag ?? t.service;
  const published = Object.fromEntries(targets.map((t) => [tagOf(t), 0]));
  let stopping = false;
  const started = performance.now();
  const run = (async () => {
    while (!stopping) {
      const due = Math.floor(((performance.now() - started) / 1000) * (rate / targets.length));
      await Promise.all(targets.map(async (t) => {
        const tag = tagOf(t);
        const count = due - published[tag];
        if (count <= 0) return;
        await publish(gateway, t.service, ws, t.resource, lines(tag, published[tag] + 1, count));
        published[tag] += count;
      }));
      await sleep(20);
    }
  })();
  return {
    published,
    stop: async () => {
      stopping = true;
      await run;
      return { ...published };
    },
  };
}

export const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export async function stats(gateway) {
  const response = await fetch(`${gateway.url}/admin/logs/stats`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (!response.ok) throw new Error(`stats answered ${response.status}`);
  return response.json();
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Runs before any page script: counts EventSource constructions and open ones
 * (and the peak), records each stream opened and each channel change POSTed
 * to a stream's control endpoint in `__streamLog` (in the order sent, with
 * their answer's status), timestamps the first `log` event mentioning a
 * watched channel (`__watch`), records long tasks.
 */
const INSTRUMENT = `(() => {
  const Original = window.EventSource;
  const counter = { created: 0, open: 0, maxOpen: 0, urls: [] };
  window.__eventSources = counter;
  const streamLog = [];
  window.__streamLog = streamLog;
  window.__watch = null;
  class CountingEventSource extends Original {
    constructor(url, init) {
      super(url, init);
      counter.created += 1;
      counter.open += 1;
      counter.maxOpen = Math.max(counter.maxOpen, counter.open);
      counter.urls.push(String(url));
      streamLog.push({ kind: 'open', url: String(url), at: performance.now() });
      let closed = false;
      const close = this.close.bind(this);
      this.close = () => { if (!closed) { closed = true; counter.open -= 1; } close(); };
    }
    addEventListener(type, listener, options) {
      if (type === 'log') {
        const inner = listener;
        listener = function (event) {
          const w = window.__watch;
          if (w !== null && w.at === null && event.data.includes(w.channel)) w.at = performance.now();
          return inner.call(this, event);
        };
      }
      return super.addEventListener(type, listener, options);
    }
  }
  window.EventSource = CountingEventSource;
  const originalFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if ((init?.method ?? 'GET') !== 'POST' || !new URL(url, location.href).pathname.endsWith('/channels')) return originalFetch(input, init);
    const entry = { kind: 'change', url, body: JSON.parse(init.body), at: performance.now(), status: null, answeredAt: null };
    streamLog.push(entry);
    try {
      const response = await originalFetch(input, init);
      entry.status = response.status;
      return response;
    } catch (error) {
      entry.status = 0;
      throw error;
    } finally {
      entry.answeredAt = performance.now();
    }
  };
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
})();`;

const QUIET = /ERR_CONNECTION_REFUSED|Failed to load resource/; // the demo controls probing for a publisher that is not running

/**
 * How the page may share its connection with the context's other pages:
 * the package takes a SharedWorker where there is one, else a leader tab
 * elected with Web Locks, else a stream of the tab's own. Run before the
 * page's scripts, these take away what a mode must not use.
 */
const SHARE = {
  // Every page its own stream: what INSTRUMENT counts (EventSource, control POSTs) happens in the page.
  tab: `delete window.SharedWorker; delete Navigator.prototype.locks;`,
  // Tabs elect a leader (Web Locks) and relay over BroadcastChannel.
  leader: `delete window.SharedWorker;`,
  // A SharedWorker owns the stream: the page's EventSource and fetch stay unused.
  worker: '',
};

/**
 * Gives every page of `context` the `share` mode, the pages its pages open
 * themselves (`window.open`) too: those get no page init script.
 */
export function shareInContext(context, share) {
  if (!(share in SHARE)) throw new Error(`shareInContext: share must be one of ${Object.keys(SHARE).join(', ')}, not ${share}`);
  return SHARE[share] === '' ? Promise.resolve() : context.addInitScript(SHARE[share]);
}

/**
 * A page instrumented before its scripts run. `browserOrContext`: a browser
 * (the page gets a context of its own: another user) or a context (one more
 * tab of that user; give every tab of a context the same `share`). `share`
 * (`tab` by default, which the suites counting EventSources in the page
 * rely on): see SHARE.
 */
export async function newPage(browserOrContext, { viewport = { width: 1440, height: 860 }, share = 'tab' } = {}) {
  if (!(share in SHARE)) throw new Error(`newPage: share must be one of ${Object.keys(SHARE).join(', ')}, not ${share}`);
  const context = 'newContext' in browserOrContext ? await browserOrContext.newContext({ viewport }) : browserOrContext;
  const page = await context.newPage();
  if (SHARE[share] !== '') await page.addInitScript(SHARE[share]);
  await page.addInitScript(INSTRUMENT);
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  page.on('console', (message) => {
    if ((message.type() === 'error' || message.type() === 'warning') && !QUIET.test(message.text())) {
      console.error(`[page ${message.type()}] ${message.text()}`);
    }
  });
  return page;
}

export function eventSources(page) {
  return page.evaluate(() => window.__eventSources);
}

/** The stream's channel changes POSTed so far (see INSTRUMENT). */
export function channelChanges(page) {
  return page.evaluate(() => window.__streamLog.filter((e) => e.kind === 'change'));
}

/**
 * The channels the page's stream carries now, each with the `since` it
 * started from (null: live): the newest stream's URL, then every change
 * the gateway accepted after it.
 */
export async function streamState(page) {
  const log = await page.evaluate(() => window.__streamLog);
  let channels = new Map();
  for (const e of log) {
    if (e.kind === 'open') {
      const url = new URL(e.url);
      const since = new Map(
        (url.searchParams.get('since') ?? '').split(',').filter(Boolean).map((s) => [s.slice(0, s.indexOf('@')), s.slice(s.indexOf('@') + 1)]),
      );
      channels = new Map((url.searchParams.get('channels') ?? '').split(',').filter(Boolean).map((c) => [c, since.get(c) ?? null]));
    } else if (e.status >= 200 && e.status < 300) {
      for (const c of e.body.remove ?? []) channels.delete(c);
      for (const a of e.body.add ?? []) channels.set(a.channel, a.since ?? null);
    }
  }
  return channels;
}

/** A pane's state as the app exposes it on window.__datashopDemo (the list itself is virtualized). */
export function pane(page, id) {
  return page.evaluate((id) => {
    const p = window.__datashopDemo?.panes[id];
    if (!p) return null;
    const entries = p.entries();
    return {
      received: p.received,
      count: entries.length,
      seqs: entries.map((e) => e.logData.seq),
      tags: [...new Set(entries.map((e) => e.logData.tag))],
      order: entries.map((e) => `${e.logData.tag}:${e.logData.seq}`),
      channels: [...new Set(entries.map((e) => e.channel))],
      cursors: entries.map((e) => e.cursor),
    };
  }, id);
}

export function badge(page, id) {
  return page.locator(`[data-testid="pane-${id}"] [data-testid="connection-badge"]`).evaluate((el) => ({
    state: el.dataset.state,
    live: el.dataset.live === 'true',
    channelStatus: el.dataset.channelStatus,
    reason: el.dataset.reason,
    count: Number(el.dataset.count),
    sharing: el.dataset.sharing,
    text: el.textContent,
  }));
}

/** Polls `read()` until `done(value)`; fails with the last value after `timeoutMs` (a deadline, not a timing assertion). */
export async function eventually(read, done, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let value;
  for (;;) {
    value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)?.slice(0, 500)}`);
    await sleep(50);
  }
}

export function waitLive(page, id) {
  return eventually(() => badge(page, id).catch(() => null), (b) => b?.live === true, `pane ${id} to be LIVE`);
}

export function waitSeqs(page, id, expected, what = `pane ${id} to hold ${expected.length} logs`) {
  return eventually(() => pane(page, id), (p) => p !== null && p.count >= expected.length, what).then(() => pane(page, id));
}

export async function screenshot(page, name) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`screenshot ${path.relative(ROOT, file)}`);
  return file;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

export const fmt = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : 'n/a');
