// Loading this copy's WebAssembly module, once, and making raw clients.
//
// The module is referenced with `new URL('./wasm/…_bg.wasm', import.meta.url)`:
// Vite and webpack 5 both turn that pattern into an emitted asset with the
// right public URL, so an app needs no wasm plugin or loader. Nothing is
// fetched until the first client is needed, and when another copy of this
// package on the page already runs a client for the same gateway, this copy
// never loads its own module at all (see registry.ts).

import init, { LogsClient, type ClientOptions } from './wasm/logs_sse_client.js';
import type { ClientTuning } from './types.js';
import type { RawClient } from './registry.js';

let loading: Promise<void> | undefined;

const TUNING_KEYS: readonly (keyof ClientTuning)[] = [
  'backoffMinMs',
  'backoffMaxMs',
  'healthyAfterMs',
  'lingerMs',
  'coalesceMs',
  'maxSubscriptions',
  'maxChannels',
  'persistThrottleMs',
  'persistMaxBytes',
  'onDiagnostic',
];

/** Loads and instantiates the module (once per copy; retried after a failure). */
export function loadWasm(wasmUrl?: string | URL): Promise<void> {
  if (loading === undefined) {
    const source = wasmUrl ?? new URL('./wasm/logs_sse_client_bg.wasm', import.meta.url);
    loading = init({ module_or_path: source }).then(
      () => undefined,
      (error: unknown) => {
        loading = undefined;
        throw error;
      },
    );
  }
  return loading;
}

/**
 * Creates a wasm client once the module is loaded. `getToken`, when given,
 * becomes the wasm client's token getter (it decides when to call it);
 * `transport`, when given, replaces its EventSource and fetch (a tab that
 * shares the connection, see share/tab.ts).
 */
export async function createRawClient(
  gatewayUrl: string,
  withCredentials: boolean,
  tuning: ClientTuning,
  wasmUrl?: string | URL,
  getToken?: () => Promise<string | null>,
  transport?: ClientOptions['transport'],
): Promise<RawClient> {
  await loadWasm(wasmUrl);
  // Only defined options are passed: the wasm client rejects unknown names and
  // the explicit `undefined`s of a spread would be noise to it.
  const options: ClientOptions = { withCredentials };
  if (getToken !== undefined) options.getToken = getToken;
  if (transport !== undefined) options.transport = transport;
  for (const name of TUNING_KEYS) copyDefined(options, tuning, name);
  return new LogsClient(gatewayUrl, options);
}

function copyDefined<K extends keyof ClientTuning>(to: ClientOptions, from: ClientTuning, name: K): void {
  const value = from[name];
  if (value !== undefined) to[name] = value;
}
