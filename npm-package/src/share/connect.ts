// Where a tab's connection lives: the choice of sharing mode and the
// tab's client for it.
//
// - `worker`: a SharedWorker (worker.ts) owns the one stream of the browser;
// - `leader` / `follower`: the tabs elect a leader with Web Locks, which owns
//   it and relays over a BroadcastChannel (leader-link.ts);
// - `tab`: this tab's own stream, as without sharing (opted out with
//   `shareAcrossTabs: false`, or a browser with neither mechanism).
//
// A SharedWorker that cannot start (a strict CSP, a bundler that did not
// emit the worker, an error while it loads) falls back to the election.

import type { RawClient } from '../registry.js';
import type { ClientTuning, Diagnostic } from '../types.js';
import { createRawClient } from '../wasm.js';
import { canElect, connectLeader } from './leader-link.js';
import { newTabId } from './messages.js';
import type { OwnerConfig } from './messages.js';
import { SharedTabClient, TabTransport } from './tab.js';
import type { OwnerLink } from './tab.js';
import { connectWorker } from './worker-link.js';

/** The sharing this browser allows: `worker`, `leader` (an election), or `tab` (none). */
export function availableSharing(share: boolean): 'worker' | 'leader' | 'tab' {
  if (!share || typeof (globalThis as { document?: unknown }).document === 'undefined') return 'tab';
  if (typeof SharedWorker === 'function') return 'worker';
  return canElect() ? 'leader' : 'tab';
}

export interface TabClientOptions {
  readonly key: string;
  readonly gatewayUrl: string;
  readonly withCredentials: boolean;
  readonly tuning: ClientTuning;
  readonly wasmUrl?: string | URL;
  readonly getToken: () => Promise<string | null>;
  readonly shareAcrossTabs: boolean;
}

/** The page's raw client: shared with the other tabs when the browser allows, else its own. */
export async function createTabClient(options: TabClientOptions): Promise<RawClient> {
  const { key, gatewayUrl, withCredentials, tuning, wasmUrl, getToken } = options;
  const available = availableSharing(options.shareAcrossTabs);
  if (available === 'tab') return createRawClient(gatewayUrl, withCredentials, tuning, wasmUrl, getToken);
  const { onDiagnostic, ...plainTuning } = tuning;
  const config: OwnerConfig = {
    gatewayUrl,
    withCredentials,
    tuning: plainTuning,
    ...(wasmUrl !== undefined ? { wasmUrl: String(wasmUrl) } : {}),
  };
  const tab = newTabId();
  let link: OwnerLink | null = null;
  if (available === 'worker') {
    try {
      link = await connectWorker(key, tab, config);
    } catch {
      link = null; // falls back below
    }
  }
  if (link === null) {
    if (!canElect()) return createRawClient(gatewayUrl, withCredentials, tuning, wasmUrl, getToken);
    link = connectLeader(key, tab, config);
  }
  const transport = new TabTransport(tab, (m) => link.send(m));
  let inner: RawClient;
  try {
    // No token here: the owner's stream carries it.
    inner = await createRawClient(gatewayUrl, withCredentials, plainTuning, wasmUrl, undefined, transport.transport);
  } catch (error) {
    link.close();
    throw error;
  }
  const report = (kind: string, message: string): void => {
    if (onDiagnostic !== undefined) onDiagnostic({ kind, message } as Diagnostic);
    else console.warn(`logs-sse-client (shared connection): ${message}`);
  };
  return new SharedTabClient(inner, link, tab, transport, getToken, report);
}
