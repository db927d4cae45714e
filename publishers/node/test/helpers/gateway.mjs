// Test helpers: run the real gateway binary and read its SSE stream over HTTP.
// Nothing here imitates the gateway; it is started as a process and spoken to.

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import http from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '../../../..');
export const GATEWAY_BIN = process.env.GATEWAY_BIN || resolve(REPO_ROOT, 'target/debug/logs-sse-gateway');

export const TOKENS = { etl: 'etl-test-token', faas: 'faas-test-token' };
/** A token granted two services, as a FAAS backend's is (workflows and functions). */
export const FAAS_FUNCTION_TOKEN = 'faas-function-test-token';
export const ADMIN_TOKEN = 'admin-test-token';

/** One gateway process; restart() brings it back on the same port. */
export class Gateway {
  constructor(extraArgs = []) {
    try {
      accessSync(GATEWAY_BIN, constants.X_OK);
    } catch {
      throw new Error(`gateway binary not found at ${GATEWAY_BIN}: build it with \`cargo build -p logs-sse-gateway\` or set GATEWAY_BIN`);
    }
    this.extraArgs = extraArgs;
    this.port = 0;
    this.child = null;
    this.output = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(extraArgs = []) {
    const gateway = new Gateway(extraArgs);
    await gateway.start();
    return gateway;
  }

  start(port = 0, timeoutMs = 20000) {
    const args = ['--listen', `127.0.0.1:${port}`, '--allow-anonymous', '--admin-token', ADMIN_TOKEN];
    for (const [service, token] of Object.entries(TOKENS)) args.push('--service-token', `${service}=${token}`);
    args.push('--service-token', `faas+function=${FAAS_FUNCTION_TOKEN}`);
    args.push(...this.extraArgs);
    const child = spawn(GATEWAY_BIN, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
    });
    this.child = child;
    return new Promise((resolvePort, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`gateway did not report its port in ${timeoutMs} ms: ${this.output}`));
      }, timeoutMs);
      const onData = (chunk) => {
        this.output += chunk;
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(this.output);
        if (match) {
          clearTimeout(timer);
          this.port = Number(match[1]);
          resolvePort(this);
        }
      };
      child.stdout.setEncoding('utf8').on('data', onData);
      child.stderr.setEncoding('utf8').on('data', (chunk) => {
        this.output += chunk;
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited (${code}) before listening: ${this.output}`));
      });
    });
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(killer);
  }

  /** Starts again on the same port, retrying while the port is released. */
  async restart() {
    const port = this.port;
    for (let attempt = 0; ; attempt += 1) {
      try {
        this.output = '';
        await this.start(port);
        return;
      } catch (error) {
        if (attempt >= 50) throw error;
        await delay(100);
      }
    }
  }

  async adminStats() {
    const response = await fetch(`${this.url}/admin/logs/stats`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    if (!response.ok) throw new Error(`admin stats answered ${response.status}`);
    return response.json();
  }
}

/** Reads GET /api/logs/stream and queues the parsed events. */
export class SSEStream {
  static open(gatewayUrl, channels, since) {
    let path = `/api/logs/stream?channels=${channels.join(',')}`;
    if (since) path += `&since=${since}`;
    return new Promise((resolveStream, reject) => {
      const request = http.get(`${gatewayUrl}${path}`, { headers: { accept: 'text/event-stream' } }, (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`stream answered ${response.statusCode}`));
          response.resume();
          return;
        }
        resolveStream(new SSEStream(request, response));
      });
      request.on('error', reject);
    });
  }

  constructor(request, response) {
    this.request = request;
    this.events = [];
    this.waiter = null;
    let buffer = '';
    let event = 'message';
    let data = [];
    response.setEncoding('utf8');
    response.on('data', (chunk) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const raw of lines) {
        const line = raw.replace(/\r$/, '');
        if (line === '') {
          if (data.length) this.push([event, JSON.parse(data.join('\n'))]);
          event = 'message';
          data = [];
        } else if (line.startsWith(':')) {
          // keep-alive comment
        } else if (line.startsWith('event:')) {
          event = line.slice(6).trim();
        } else if (line.startsWith('data:')) {
          data.push(line.slice(5).replace(/^ /, ''));
        }
      }
    });
    const end = () => this.push(['eof', null]);
    response.on('end', end);
    response.on('error', end);
  }

  push(item) {
    this.events.push(item);
    if (this.waiter) {
      const wake = this.waiter;
      this.waiter = null;
      wake();
    }
  }

  async next(timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length === 0) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return null;
      await new Promise((wake) => {
        const timer = setTimeout(wake, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          wake();
        };
      });
    }
    return this.events.shift();
  }

  /** Waits for the status event of every channel (the subscription is live). */
  async waitStatuses(count, timeoutMs = 10000) {
    const statuses = [];
    while (statuses.length < count) {
      const item = await this.next(timeoutMs);
      if (!item) throw new Error(`got ${statuses.length} of ${count} statuses`);
      const [event, data] = item;
      if (event === 'status') statuses.push(data);
      else if (event !== 'hello') throw new Error(`unexpected ${event} before all statuses`);
    }
    return statuses;
  }

  /** Collects `count` log events (throws with what arrived on timeout). */
  async logs(count, timeoutMs = 15000) {
    const logs = [];
    const deadline = Date.now() + timeoutMs;
    while (logs.length < count) {
      const item = await this.next(Math.max(1, deadline - Date.now()));
      if (!item) throw new Error(`got ${logs.length} of ${count} logs within ${timeoutMs} ms`);
      const [event, data] = item;
      if (event === 'log') logs.push(data);
      else if (event === 'eof' || event === 'close') throw new Error(`stream ended after ${logs.length} of ${count} logs`);
    }
    return logs;
  }

  /** Collects log events until the gateway ends the stream. */
  async logsUntilEnd(timeoutMs = 15000) {
    const logs = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const item = await this.next(Math.max(1, deadline - Date.now()));
      if (!item) throw new Error(`stream did not end within ${timeoutMs} ms`);
      const [event, data] = item;
      if (event === 'log') logs.push(data);
      else if (event === 'eof' || event === 'close') return logs;
    }
  }

  close() {
    this.request.destroy();
  }
}

let counter = 0;
/** A workspace id no other test uses. */
export function uniqueWorkspace() {
  counter += 1;
  return `ws-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
