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
//
// The election and the owner a leader runs are loaded only when a tab
// takes that mode: a plain relative `import()`, which Vite and webpack 5
// turn into a chunk of its own without configuration, so the tabs of a
// browser with a SharedWorker never load that code. A chunk that cannot be
// loaded leaves the tab on a stream of its own, with a diagnostic.

import type { RawClient } from '../registry.js';
import type { ClientTuning, Diagnostic } from '../types.js';
import { createRawClient } from '../wasm.js';
import { newTabId } from './messages.js';
import type { OwnerConfig } from './messages.js';
import { SharedTabClient, TabTransport } from './tab.js';
import type { OwnerLink } from './tab.js';
import { connectWorker } from './worker-link.js';

/** How long the leader mode's chunk may take to load before the tab takes a stream of its own. */
export const LEADER_LOAD_MS = 10_000;

/** Whether this browser can elect a leader tab (Web Locks and BroadcastChannel). */
export function canElect(): boolean {
  const nav = (globalThis as { navigator?: { locks?: { request?: unknown } } }).navigator;
  return typeof BroadcastChannel === 'function' && typeof nav?.locks?.request === 'function';
}

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
  const ownStream = (): Promise<RawClient> => createRawClient(gatewayUrl, withCredentials, tuning, wasmUrl, getToken);
  const available = availableSharing(options.shareAcrossTabs);
  if (available === 'tab') return ownStream();
  const { onDiagnostic, ...plainTuning } = tuning;
  const report = (kind: Diagnostic['kind'], message: string): void => {
    try {
      if (onDiagnostic !== undefined) {
        onDiagnostic({ kind, message });
        return;
      }
    } catch {
      // A throwing callback must not fail the tab's connection: the console gets it.
    }
    console.warn(`logs-sse-client (shared connection): ${message}`);
  };
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
    if (!canElect()) return ownStream();
    let leader: LeaderModule;
    try {
      leader = await loadLeader();
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      report('sharing', `the code of the leader tab mode did not load (${detail}): this tab opens a stream of its own`);
      return ownStream();
    }
    link = leader.connectLeader(key, tab, config);
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
  return new SharedTabClient(inner, link, tab, transport, getToken, (kind, message) => report(kind as Diagnostic['kind'], message));
}

type LeaderModule = typeof import('./leader-link.js');

/** The leader mode's chunk (election and owner), within LEADER_LOAD_MS. */
function loadLeader(): Promise<LeaderModule> {
  return new Promise<LeaderModule>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not loaded within ${LEADER_LOAD_MS / 1000} s`)), LEADER_LOAD_MS);
    // The comment names the chunk in a webpack build (`leader-link`, as Vite names it).
    import(/* webpackChunkName: "leader-link" */ './leader-link.js').then(
      (module) => {
        clearTimeout(timer);
        resolve(module);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
