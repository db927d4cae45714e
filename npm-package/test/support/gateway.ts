// Starts the real gateway binary on a free port for the browser tests, and
// talks to it: publish logs as a service, read the admin stats. With
// `{ jwt: true }` the gateway requires subscriber JWTs in `access_token`
// (see jwt.ts) instead of allowing anonymous subscribers.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { JWT_SECRET } from './jwt.js';

export const ADMIN_TOKEN = 'admin-test-token';
export const SERVICE_TOKENS: Record<string, string> = {
  etl: 'etl-test-token',
  faas: 'faas-test-token',
  function: 'function-test-token',
};

export interface RunningGateway {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export function gatewayBinary(): string {
  return process.env.GATEWAY_BIN ?? path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../target/debug/logs-sse-gateway');
}

export async function startGateway(options: { jwt?: boolean } = {}): Promise<RunningGateway> {
  const auth = options.jwt
    ? ['--jwt-secret', JWT_SECRET, '--allow-query-token', '--jwt-leeway-secs', '0']
    : ['--allow-anonymous'];
  const args = ['--listen', '127.0.0.1:0', ...auth, '--admin-token', ADMIN_TOKEN, '--cors-origin', '*'];
  for (const [service, token] of Object.entries(SERVICE_TOKENS)) args.push('--service-token', `${service}=${token}`);
  const child = spawn(gatewayBinary(), args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the gateway did not print its address within 20 s')), 20_000);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the gateway exited early (code ${code})`)));
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
  });
  return {
    url,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface PublishTarget {
  service: string;
  workspace_id: string;
  workflow_id?: string;
}

/** Publishes logs (one request, up to 1000) and returns their cursors. */
export async function publish(gateway: string, target: PublishTarget, logs: unknown[]): Promise<string[]> {
  const token = SERVICE_TOKENS[target.service];
  if (token === undefined) throw new Error(`no test token for service ${target.service}`);
  const body = logs.map((logData) => ({ ...target, logData }));
  const response = await fetch(`${gateway}/api/logs/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as { accepted: number; cursors: { cursor: string }[] };
  if (response.status !== 202 || answer.accepted !== logs.length) {
    throw new Error(`publish answered ${response.status}: ${JSON.stringify(answer)}`);
  }
  return answer.cursors.map((c) => c.cursor);
}

/** Publishes a batch whose items may target different resources of one service. */
export async function publishItems(gateway: string, service: string, items: (PublishTarget & { logData: unknown })[]): Promise<void> {
  const response = await fetch(`${gateway}/api/logs/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SERVICE_TOKENS[service]}`, 'content-type': 'application/json' },
    body: JSON.stringify(items),
  });
  const answer = (await response.json()) as { accepted: number };
  if (response.status !== 202 || answer.accepted !== items.length) {
    throw new Error(`publish answered ${response.status}: ${JSON.stringify(answer)}`);
  }
}

export interface GatewayStats {
  connections: number;
  subscriptions: Record<string, number>;
  streamsOpened: number;
}

export async function stats(gateway: string): Promise<GatewayStats> {
  const response = await fetch(`${gateway}/admin/logs/stats`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (!response.ok) throw new Error(`stats answered ${response.status}`);
  return (await response.json()) as GatewayStats;
}
