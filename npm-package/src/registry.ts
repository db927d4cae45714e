// The page-wide registry of shared wasm clients: one client, hence one
// EventSource, per gateway per page, however many copies of this package the
// page's separately bundled micro frontends carry.
//
// The registry lives on `globalThis` under a versioned `Symbol.for` key, so
// every copy finds the same one. Its entries are keyed by the resolved
// gateway URL and the credentials mode, and reference counted: the client is
// closed a short delay after its last user releases it (the delay lets a
// StrictMode remount or a route change reuse it instead of reconnecting).
//
// The shape of an entry (SharedEntry) and the raw client it holds (the
// members of client-wasm's generated `LogsClient` this layer uses) are the
// contract between copies: a copy may call into a client created by another
// copy's WebAssembly module, so only add optional members here and bump the
// key's version for anything incompatible (a copy with another version then
// keeps its own client).
//
// The subscriber token is not part of the key: a page has one connection per
// gateway, so the token source of whoever created the client is the one it
// uses ("first one wins"). A later user with a different token source is
// warned once on the console (see `acquireShared`).

// The raw types are picked from the declarations wasm-bindgen generates for
// client-wasm (copied next to the glue by build.sh), never restated here: a
// member renamed or retyped there fails this package's type check.
import type { LogsClient, LogsSubscription, StatusListener } from './wasm/logs_sse_client.js';

/** A subscription of the wasm client: the members of its `LogsSubscription` this layer uses. */
export type RawSubscription = Pick<LogsSubscription, 'channel' | 'channelStatus' | 'snapshot' | 'unsubscribe' | 'free'>;

/** A status listener handle of the wasm client (its `StatusListener`). */
export type RawStatusListener = Pick<StatusListener, 'unsubscribe' | 'free'>;

/** The options of a wasm subscription (client-wasm's `SubscribeOptions`). */
export type RawSubscribeOptions = NonNullable<Parameters<LogsClient['subscribe']>[1]>;

/** The wasm client: the members of its `LogsClient` this layer uses. */
export interface RawClient extends Pick<LogsClient, 'status' | 'reconnect' | 'stats' | 'close' | 'free'> {
  subscribe(...args: Parameters<LogsClient['subscribe']>): RawSubscription;
  onStatus(...args: Parameters<LogsClient['onStatus']>): RawStatusListener;
}

/** One shared client (protocol 1). Read by every copy of the package on the page. */
export interface SharedEntry {
  readonly protocol: 1;
  /** Resolved gateway URL and credentials mode. */
  readonly key: string;
  /** Version of the package copy that created the client. */
  readonly createdBy: string;
  /** Settles once the client exists (or its creation failed). */
  readonly ready: Promise<RawClient>;
  /** The client once ready, null before and after. */
  readonly client: RawClient | null;
  /** Users currently holding the entry. */
  readonly refs: number;
  /**
   * The token source (`token` or `getToken`) the client was created with;
   * undefined when it has none (or was created by a copy that predates it).
   */
  readonly tokenSource?: unknown;
  /** Who created the client (this copy's handle), to tell its return from a conflict. */
  readonly owner?: object;
  acquire(): void;
  release(): void;
}

export interface PageRegistry {
  readonly protocol: 1;
  readonly entries: Map<string, SharedEntry>;
}

const REGISTRY_KEY = Symbol.for('@datashop/logs-sse-client:registry:v1');

/** The registry of this page (created by whichever copy comes first). */
export function pageRegistry(): PageRegistry {
  const holder = globalThis as unknown as Record<symbol, PageRegistry | undefined>;
  let registry = holder[REGISTRY_KEY];
  if (registry === undefined) {
    registry = { protocol: 1, entries: new Map() };
    Object.defineProperty(globalThis, REGISTRY_KEY, { value: registry, configurable: true });
  }
  return registry;
}

/** Registry key of a gateway: the URL resolved against the page, and the credentials mode. */
export function registryKey(gatewayUrl: string, withCredentials: boolean): string {
  return `${resolveUrl(gatewayUrl)} ${withCredentials ? 'with-credentials' : 'anonymous'}`;
}

/** Resolves a gateway URL against the page, so `/api/x` and `https://host/api/x` meet. */
export function resolveUrl(gatewayUrl: string): string {
  const doc = (globalThis as { document?: { baseURI?: string } }).document;
  const base = doc?.baseURI ?? (globalThis as { location?: { href?: string } }).location?.href;
  try {
    return base === undefined ? new URL(gatewayUrl).href : new URL(gatewayUrl, base).href;
  } catch {
    return gatewayUrl; // not a URL we can resolve: the wasm client will report it
  }
}

/**
 * Returns the page's shared client for `key`, creating it with `create` if
 * there is none, and acquires one reference for the caller. `tokenSource` is
 * the caller's `token`/`getToken`: a new client is created with it; joining
 * a client created with another one keeps that one and warns.
 */
export function acquireShared(
  key: string,
  create: () => Promise<RawClient>,
  options: { releaseDelayMs: number; createdBy: string; tokenSource?: unknown; owner?: object },
): SharedEntry {
  const registry = pageRegistry();
  let entry = registry.entries.get(key);
  if (entry === undefined) {
    entry = new Entry(registry, key, create, options.releaseDelayMs, options.createdBy, options.tokenSource, options.owner);
    registry.entries.set(key, entry);
  } else if (entry.owner === undefined || entry.owner !== options.owner) {
    // (The creator coming back after a remount is not a conflict, even if
    // its getter is a new function by now.)
    warnOnTokenConflict(entry, options.tokenSource);
  }
  entry.acquire();
  return entry;
}

const warned = new WeakSet<SharedEntry>();

/** First one wins: a joiner's different token source is not used; say so once per client. */
function warnOnTokenConflict(entry: SharedEntry, tokenSource: unknown): void {
  if (tokenSource === undefined || tokenSource === null || entry.tokenSource === tokenSource || warned.has(entry)) {
    return;
  }
  warned.add(entry);
  const had = entry.tokenSource === undefined || entry.tokenSource === null ? 'no token' : 'another token source';
  console.warn(
    `@datashop/logs-sse-client: the page's connection to ${entry.key.split(' ')[0]} was created with ${had}; ` +
      'it keeps using that one and ignores this token/getToken (one connection per gateway per page: the first ' +
      'provider or client wins). Give every provider on the page the same getToken function.',
  );
}

class Entry implements SharedEntry {
  readonly protocol = 1 as const;
  readonly ready: Promise<RawClient>;
  client: RawClient | null = null;
  refs = 0;
  private disposed = false;
  private closeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly registry: PageRegistry,
    readonly key: string,
    create: () => Promise<RawClient>,
    private readonly releaseDelayMs: number,
    readonly createdBy: string,
    readonly tokenSource: unknown,
    readonly owner: object | undefined,
  ) {
    this.ready = create().then(
      (client) => {
        if (this.disposed) {
          // Everyone left while the module was loading.
          closeRaw(client);
          throw new Error('the logs client was released before it was ready');
        }
        this.client = client;
        return client;
      },
      (error: unknown) => {
        // Forget the failed entry so the next user tries again.
        this.disposed = true;
        this.forget();
        throw error;
      },
    );
    // Users handle the rejection; this keeps an unused failure from being
    // reported as unhandled.
    this.ready.catch(() => undefined);
  }

  acquire(): void {
    this.refs += 1;
    if (this.closeTimer !== undefined) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
  }

  release(): void {
    if (this.refs === 0) return;
    this.refs -= 1;
    if (this.refs === 0 && !this.disposed) {
      this.closeTimer = setTimeout(() => this.dispose(), this.releaseDelayMs);
    }
  }

  private dispose(): void {
    this.closeTimer = undefined;
    if (this.refs > 0 || this.disposed) return;
    this.disposed = true;
    this.forget();
    if (this.client !== null) {
      closeRaw(this.client);
      this.client = null;
    }
  }

  private forget(): void {
    if (this.registry.entries.get(this.key) === this) this.registry.entries.delete(this.key);
  }
}

function closeRaw(client: RawClient): void {
  try {
    client.close();
  } finally {
    client.free();
  }
}
