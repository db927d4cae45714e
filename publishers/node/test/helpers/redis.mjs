// A real redis-server for the SDK tests: a free loopback port, its own
// temporary folder, an append-only file fsynced on every write (so a restart
// keeps history); stop() kills it, start() brings it back on the same port.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function answersPing(port) {
  return new Promise((done) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (reply) => {
      socket.destroy();
      done(reply.toString().startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
  });
}

export class RedisServer {
  static async start() {
    const server = new RedisServer(await freePort());
    await server.start();
    return server;
  }

  constructor(port) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'logs-sse-sdk-redis-'));
    this.child = null;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}/`;
  }

  async start(timeoutMs = 20000) {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir];
    args.push('--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--logfile', 'redis.log');
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    const deadline = Date.now() + timeoutMs;
    while (!(await answersPing(this.port))) {
      if (Date.now() > deadline) {
        let log = '';
        try {
          log = readFileSync(join(this.dir, 'redis.log'), 'utf8').split('\n').slice(-15).join('\n');
        } catch {
          // no log yet
        }
        throw new Error(`redis-server on ${this.port} did not answer PING; its log ends:\n${log}`);
      }
      await delay(20);
    }
  }

  /** SIGKILL: nothing is flushed on the way out; the AOF already holds every write. */
  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;
  }

  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
