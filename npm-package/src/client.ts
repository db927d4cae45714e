// The framework-free client: a handle on the page's shared wasm client.
//
// A handle is cheap and inert until used: it takes a reference on the
// page's shared client (registry.ts) while anything holds it — its own
// `createLogsClient()` reference, a subscription, a status listener, or a
// mounted provider — and lets go when the last one ends. That is what makes
// it safe to create in a React render and to use from children whose
// effects run before the provider's own.
//
// Loading the WebAssembly module is asynchronous, so `subscribe()` returns
// at once and connects as soon as the shared client exists; failures arrive
// as `{type: "error"}` updates instead of exceptions.

import { LogsSSEError } from './errors.js';
import { acquireShared, registryKey, resolveUrl } from './registry.js';
import type { RawClient, RawStatusListener, RawSubscribeOptions, RawSubscription, SharedEntry } from './registry.js';
import type {
  ChannelStatusKind,
  ClientStats,
  ClientTuning,
  ConnectionStatus,
  LogData,
  LogEntry,
  LogsClientOptions,
  SubscribeOptions,
  Subscription,
  SubscriptionUpdate,
  TokenSource,
} from './types.js';
import { VERSION } from './version.js';
import { createTabClient } from './share/connect.js';

/** The default stream URL of the gateway, relative to the page. */
export const DEFAULT_GATEWAY_URL = '/api/logs/stream';
/** Default delay between the last release and closing the shared client. */
export const DEFAULT_RELEASE_DELAY_MS = 1000;

const IDLE: ConnectionStatus = Object.freeze({ state: 'idle', attempt: 0 });
const EMPTY: readonly LogEntry<never>[] = Object.freeze([]);

/** A client of the gateway; shares the page's one connection. */
export interface LogsSSEClient {
  /** The gateway's stream URL, resolved against the page. */
  readonly gatewayUrl: string;
  readonly withCredentials: boolean;
  /** The connection's status; the same object until it changes. */
  readonly status: ConnectionStatus;
  /**
   * Subscribes to a channel (`logs:{service}:{workspace}[:{resource}]`).
   * `onUpdate` is called when logs arrive (read `snapshot()`), when the
   * gateway answers for the channel, on a gap, and on an error.
   */
  subscribe<T = LogData>(
    channel: string,
    options?: SubscribeOptions<T>,
    onUpdate?: (update: SubscriptionUpdate) => void,
  ): Subscription<T>;
  /** Calls `listener` with every status change; returns the function that stops it. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void;
  /** Resolves once the WebAssembly module is loaded and the shared client exists. */
  ready(): Promise<void>;
  /** Retries at once (after `failed`, during a backoff, or after the module failed to load). */
  reconnect(): void;
  /** Counters of the shared client, or null before it exists. */
  stats(): ClientStats | null;
  /**
   * The token from this client's `token` option (the value, or what the
   * getter returns now), or null. The page's connection calls it itself
   * when it needs a token.
   */
  getToken(): Promise<string | null>;
  /**
   * Ends this handle: its subscriptions and status listeners stop and its
   * reference on the page's connection is released. The connection itself
   * closes when no other user on the page holds it.
   */
  close(): void;
}

/** Creates a client that holds a reference on the page's shared connection until `close()`. */
export function createLogsClient(options: LogsClientOptions = {}): LogsSSEClient {
  const handle = new ClientHandle(options);
  handle.retain();
  handle.ownsSelfReference = true;
  return handle;
}

/** Internal: a handle that only holds references while it is used (the provider's). */
export class ClientHandle implements LogsSSEClient {
  readonly gatewayUrl: string;
  readonly withCredentials: boolean;
  ownsSelfReference = false;

  private readonly key: string;
  private readonly tuning: ClientTuning;
  private readonly wasmUrl: string | URL | undefined;
  private readonly releaseDelayMs: number;
  private readonly shareAcrossTabs: boolean;
  private token: TokenSource;
  /** A token arrived after the connection may have been refused without it. */
  private tokenArrived = false;
  private users = 0;
  private entry: SharedEntry | null = null;
  private rawListener: RawStatusListener | null = null;
  private failure: ConnectionStatus | null = null;
  /** The last status of an unshared client, and that status with `sharing: 'tab'`. */
  private unshared: [ConnectionStatus, ConnectionStatus] | null = null;
  private closed = false;
  /** Status listeners, each with the function that removes it (and releases its reference). */
  private readonly statusListeners = new Map<(status: ConnectionStatus) => void, () => void>();
  private readonly subscriptions = new Set<HandleSubscription<unknown>>();

  constructor(options: LogsClientOptions) {
    const { gatewayUrl = DEFAULT_GATEWAY_URL, withCredentials = false, token, wasmUrl, releaseDelayMs, shareAcrossTabs, ...tuning } = options;
    this.gatewayUrl = resolveUrl(gatewayUrl);
    this.withCredentials = withCredentials;
    this.key = registryKey(gatewayUrl, withCredentials);
    this.tuning = tuning;
    this.wasmUrl = wasmUrl;
    this.releaseDelayMs = releaseDelayMs ?? DEFAULT_RELEASE_DELAY_MS;
    this.shareAcrossTabs = shareAcrossTabs ?? true;
    this.token = token;
  }

  get status(): ConnectionStatus {
    if (this.failure !== null) return this.failure;
    const raw = this.entry?.client?.status as ConnectionStatus | undefined;
    if (raw === undefined) return IDLE;
    // A client of this tab alone says nothing of sharing: say `tab`.
    if (raw.sharing !== undefined) return raw;
    if (this.unshared?.[0] !== raw) this.unshared = [raw, Object.freeze({ ...raw, sharing: 'tab' })];
    return this.unshared[1];
  }

  /** Takes a reference: the first one joins (or creates) the page's shared client. */
  retain(): void {
    this.assertOpen();
    this.users += 1;
    if (this.users === 1) this.attach();
  }

  /** Drops a reference: the last one releases the page's shared client. */
  release(): void {
    if (this.users === 0) return;
    this.users -= 1;
    if (this.users === 0) this.detach();
  }

  /**
   * Replaces the token source (the provider's `token` prop may change). The
   * connection asks for the current one the next time it needs a token
   * (first stream, expiry); the token it holds stays in use until then.
   */
  setToken(token: TokenSource): void {
    const before = this.token;
    this.token = token;
    // A token that arrives late (the session loaded after the first render)
    // or a new fixed token: if the connection failed for want of one, retry.
    // A getter's identity changing (an inline function) means nothing.
    const arrived = (isNone(before) && !isNone(token)) || (typeof before === 'string' && typeof token === 'string' && before !== token);
    if (arrived && this.entry?.owner === this) {
      this.tokenArrived = true;
      this.retryAuth();
    }
  }

  subscribe<T = LogData>(
    channel: string,
    options: SubscribeOptions<T> = {},
    onUpdate: (update: SubscriptionUpdate) => void = () => undefined,
  ): Subscription<T> {
    this.retain();
    const subscription = new HandleSubscription<T>(channel, rawOptions(options), onUpdate, (sub) => {
      this.subscriptions.delete(sub as HandleSubscription<unknown>);
      this.release();
    });
    this.subscriptions.add(subscription as HandleSubscription<unknown>);
    const client = this.entry?.client;
    if (client) subscription.connect(client);
    else if (this.failure !== null) subscription.fail(wasmError(this.failure));
    return subscription;
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.retain();
    // A wrapper per registration, so the same function may be registered twice.
    const registered = (status: ConnectionStatus): void => listener(status);
    const off = (): void => {
      if (!this.statusListeners.delete(registered)) return;
      this.release();
    };
    this.statusListeners.set(registered, off);
    return off;
  }

  ready(): Promise<void> {
    const entry = this.entry;
    if (entry === null) {
      return Promise.reject(new LogsSSEError('closed', 'the client holds no connection (closed or not in use)'));
    }
    return entry.ready.then(
      () => undefined,
      (error: unknown) => {
        throw wasmError(this.failure ?? failureStatus(error));
      },
    );
  }

  reconnect(): void {
    if (this.failure !== null && this.users > 0) {
      // The module failed to load: start over with a fresh shared entry.
      this.detach();
      this.attach();
      return;
    }
    this.entry?.client?.reconnect();
  }

  stats(): ClientStats | null {
    return this.entry?.client?.stats() ?? null;
  }

  async getToken(): Promise<string | null> {
    const token = this.token;
    const value = typeof token === 'function' ? await token() : token;
    return value ?? null;
  }

  close(): void {
    if (this.closed) return;
    for (const subscription of [...this.subscriptions]) subscription.unsubscribe();
    for (const off of [...this.statusListeners.values()]) off();
    if (this.ownsSelfReference) {
      this.ownsSelfReference = false;
      this.release();
    }
    this.closed = true;
  }

  private attach(): void {
    const tokenSource = this.token ?? undefined;
    // Always a getter, reading this handle's current source: a `token` prop
    // that is set later, or changes, is used the next time a token is needed
    // (a getter answering null means "no token": cookies or anonymous).
    const getToken = (): Promise<string | null> => this.getToken();
    const entry = acquireShared(
      this.key,
      () =>
        createTabClient({
          key: this.key,
          gatewayUrl: this.gatewayUrl,
          withCredentials: this.withCredentials,
          tuning: this.tuning,
          wasmUrl: this.wasmUrl,
          getToken,
          shareAcrossTabs: this.shareAcrossTabs,
        }),
      { releaseDelayMs: this.releaseDelayMs, createdBy: VERSION, tokenSource, owner: this },
    );
    this.entry = entry;
    this.failure = null;
    const client = entry.client;
    if (client !== null) {
      this.connected(client);
      return;
    }
    entry.ready.then(
      (ready) => {
        if (this.entry === entry) this.connected(ready);
      },
      (error: unknown) => {
        if (this.entry !== entry) return;
        this.failure = failureStatus(error);
        const failure = wasmError(this.failure);
        for (const subscription of this.subscriptions) subscription.fail(failure);
        this.emitStatus();
      },
    );
  }

  /** Retries a connection refused for auth once a new token is there (see setToken). */
  private retryAuth(): void {
    const client = this.entry?.client;
    if (!this.tokenArrived || !client) return;
    const { state, reason } = client.status;
    if (state === 'failed' && (reason === 'unauthorized' || reason === 'forbidden')) {
      this.tokenArrived = false;
      client.reconnect(); // fetches a fresh token first
    } else if (state === 'open') {
      this.tokenArrived = false; // it will be used when a token is next needed
    }
  }

  private connected(client: RawClient): void {
    this.rawListener = client.onStatus(() => {
      this.retryAuth();
      this.emitStatus();
    });
    for (const subscription of this.subscriptions) subscription.connect(client);
    this.emitStatus();
  }

  private detach(): void {
    if (this.rawListener !== null) {
      this.rawListener.unsubscribe();
      this.rawListener.free();
      this.rawListener = null;
    }
    this.entry?.release();
    this.entry = null;
  }

  private emitStatus(): void {
    const status = this.status;
    for (const listener of [...this.statusListeners.keys()]) listener(status);
  }

  private assertOpen(): void {
    if (this.closed) throw new LogsSSEError('closed', 'this logs client was closed');
  }
}

class HandleSubscription<T> implements Subscription<T> {
  private raw: RawSubscription | null = null;
  private done = false;

  constructor(
    readonly channel: string,
    private readonly options: RawSubscribeOptions,
    private readonly onUpdate: (update: SubscriptionUpdate) => void,
    private readonly onEnd: (subscription: HandleSubscription<T>) => void,
  ) {}

  get channelStatus(): ChannelStatusKind | undefined {
    return this.raw?.channelStatus ?? undefined;
  }

  snapshot(): readonly LogEntry<T>[] {
    return (this.raw?.snapshot() ?? EMPTY) as readonly LogEntry<T>[];
  }

  /** Subscribes on the shared client once it exists. */
  connect(client: RawClient): void {
    if (this.done || this.raw !== null) return;
    try {
      this.raw = client.subscribe(this.channel, this.options, (update) => {
        if (!this.done) this.onUpdate(update);
      });
    } catch (error) {
      this.fail(LogsSSEError.from(error, 'invalid_options'));
      return;
    }
    // Logs restored from sessionStorage are there before any update says so.
    const restored = this.raw.snapshot().length;
    if (restored > 0) this.onUpdate({ type: 'logs', added: restored });
  }

  fail(error: LogsSSEError): void {
    if (!this.done) this.onUpdate({ type: 'error', error });
  }

  unsubscribe(): void {
    if (this.done) return;
    this.done = true;
    const raw = this.raw;
    this.raw = null;
    if (raw !== null) {
      raw.unsubscribe();
      raw.free();
    }
    this.onEnd(this);
  }
}

function isNone(token: TokenSource): boolean {
  return token === undefined || token === null || token === '';
}

/** The wasm client's subscribe options: only those that are set (it rejects unknown ones). */
function rawOptions<T>(options: SubscribeOptions<T>): RawSubscribeOptions {
  const raw: RawSubscribeOptions = {};
  if (options.maxLogs !== undefined) raw.maxLogs = options.maxLogs;
  if (options.persist !== undefined) raw.persist = options.persist;
  if (options.persistKey !== undefined) raw.persistKey = options.persistKey;
  if (options.resumeFrom !== undefined) raw.resumeFrom = options.resumeFrom;
  if (options.history !== undefined) raw.history = options.history;
  // The wasm client hands the filter the entries it snapshots, whose
  // `logData` is what the caller's `T` says it is.
  if (options.filter !== undefined) raw.filter = options.filter as RawSubscribeOptions['filter'];
  return raw;
}

function failureStatus(error: unknown): ConnectionStatus {
  const detail = error instanceof Error ? error.message : String(error);
  return Object.freeze({
    state: 'failed',
    reason: 'wasm_unavailable',
    message: `the logs client could not load its WebAssembly module: ${detail}`,
    attempt: 0,
  });
}

function wasmError(status: ConnectionStatus): LogsSSEError {
  return new LogsSSEError('wasm_unavailable', status.message ?? 'the WebAssembly module is unavailable');
}
