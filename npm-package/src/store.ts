// The per-hook store: one channel subscription turned into immutable
// snapshots for `useSyncExternalStore`, framework-free (zustand style).
//
// Updates from the wasm client only mark the store dirty; the snapshot is
// rebuilt and listeners are notified in the next animation frame, so a hook
// renders at most once per frame whatever the log rate. A snapshot object is
// replaced only when something in it changed, and its `logs` array only
// when the buffer changed, so memoised children stay put.
//
// Stopping is deferred by a macrotask: StrictMode's unsubscribe/resubscribe
// (and a quick remount) find the subscription, its buffer and its place on
// the stream still there.

import { LogsSSEError } from './errors.js';
import { frames, type FrameBatcher } from './frame.js';
import type { LogsSSEClient } from './client.js';
import type {
  ChannelStatusKind,
  ConnectionState,
  ConnectionStatus,
  GapInfo,
  LogData,
  LogEntry,
  SubscribeOptions,
  Subscription,
  SubscriptionUpdate,
} from './types.js';

/** What a hook returns (besides `clear`); one frozen object per change. */
export interface ChannelState<T = LogData> {
  /** The publishers' `logData`, oldest first (publish order). */
  readonly logs: readonly T[];
  /** The full entries `{channel, cursor, ts, logData}`, same order as `logs`. */
  readonly entries: readonly LogEntry<T>[];
  /** The newest log, or null. */
  readonly lastLog: T | null;
  /** The connection state as this hook sees it (see README, "Status values"). */
  readonly connectionStatus: ConnectionState;
  /** True when the stream is open and the gateway granted this channel. */
  readonly isConnected: boolean;
  /** What went wrong, or null: channel refused, connection failing, bad options. */
  readonly error: LogsSSEError | null;
  /** The full connection status (reason, HTTP status, retry delay…). */
  readonly status: ConnectionStatus;
  /** The subscribed channel, or null while waiting for ids. */
  readonly channel: string | null;
  /** The gateway's answer for the channel, or null before it answered. */
  readonly channelStatus: ChannelStatusKind | null;
  /** The last gap reported for the channel (logs may be missing), or null. */
  readonly gap: GapInfo | null;
}

export interface ChannelStoreOptions<T> {
  maxLogs?: number;
  persist?: boolean;
  persistKey?: string;
  history?: number;
  /** Returns the current filter (read per log, so a new closure needs no resubscribe). */
  filter?: () => ((log: T) => boolean) | undefined;
}

const EMPTY: readonly never[] = Object.freeze([]);
const IDLE: ConnectionStatus = Object.freeze({ state: 'idle', attempt: 0 });
const GRANTED: ReadonlySet<string> = new Set(['subscribed', 'resumed', 'gap']);

export class ChannelStore<T = LogData> {
  private state: ChannelState<T>;
  private readonly listeners = new Set<() => void>();
  private readonly subscribeOptions: SubscribeOptions<T>;
  private subscription: Subscription<T> | null = null;
  private stopStatus: (() => void) | null = null;
  private stopTimer: ReturnType<typeof setTimeout> | undefined;
  private subscriptionError: LogsSSEError | null = null;
  private deniedReason: string | undefined;
  private gap: GapInfo | null = null;
  private statusError: { status: ConnectionStatus; error: LogsSSEError | null } = { status: IDLE, error: null };
  private deniedError: LogsSSEError | null = null;
  /** Cursors cleared by `clear()` that the buffer may still hold. */
  private hidden: Set<string> | null = null;
  /** The wasm snapshot the current `entries` were derived from. */
  private lastRaw: readonly LogEntry<T>[] = EMPTY;

  constructor(
    private readonly client: LogsSSEClient | null,
    readonly channel: string | null,
    private readonly options: ChannelStoreOptions<T> = {},
    initialError: LogsSSEError | null = null,
    private readonly batcher: FrameBatcher = frames,
  ) {
    this.subscriptionError = initialError;
    const getFilter = options.filter;
    this.subscribeOptions = {
      maxLogs: options.maxLogs,
      persist: options.persist,
      persistKey: options.persistKey,
      history: options.history,
      filter:
        getFilter === undefined
          ? undefined
          : (entry: LogEntry<T>): boolean => {
              const filter = getFilter();
              return filter === undefined ? true : filter(entry.logData);
            },
    };
    this.state = Object.freeze({
      logs: EMPTY,
      entries: EMPTY,
      lastLog: null,
      connectionStatus: 'idle',
      isConnected: false,
      error: initialError,
      status: client?.status ?? IDLE,
      channel,
      channelStatus: null,
      gap: null,
    });
  }

  /** For useSyncExternalStore: the first listener starts the subscription, the last stops it. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
      this.stopTimer = setTimeout(() => this.stop(), 0);
    };
  };

  readonly getSnapshot = (): ChannelState<T> => this.state;

  /**
   * Empties this hook's logs; logs published afterwards still arrive. The
   * wasm client's buffer has no "clear", so the cursors held now are hidden
   * from this store (and, when persisted, remembered next to the persisted
   * logs so a remount does not bring them back).
   */
  readonly clear = (): void => {
    const raw = this.subscription?.snapshot() ?? this.lastRaw;
    this.hidden = new Set(raw.map((entry) => entry.cursor));
    this.saveHidden();
    this.gap = null;
    this.batcher.cancel(this.flush);
    this.flush(true);
  };

  private start(): void {
    if (this.stopTimer !== undefined) {
      clearTimeout(this.stopTimer);
      this.stopTimer = undefined;
    }
    if (this.subscription !== null || this.client === null || this.channel === null) return;
    this.loadHidden();
    this.stopStatus = this.client.onStatus(this.onStatus);
    this.subscription = this.client.subscribe(this.channel, this.subscribeOptions, this.onUpdate);
    this.batcher.schedule(this.flush);
  }

  private stop(): void {
    this.stopTimer = undefined;
    if (this.listeners.size > 0) return;
    this.batcher.cancel(this.flush);
    this.subscription?.unsubscribe();
    this.subscription = null;
    this.stopStatus?.();
    this.stopStatus = null;
  }

  private readonly onUpdate = (update: SubscriptionUpdate): void => {
    switch (update.type) {
      case 'status':
        this.deniedReason = update.status === 'denied' ? update.reason : undefined;
        break;
      case 'gap':
        this.gap = Object.freeze({ from: update.from, to: update.to, reason: update.reason });
        break;
      case 'error':
        this.subscriptionError = LogsSSEError.from(update.error);
        break;
      case 'logs':
        break;
    }
    this.batcher.schedule(this.flush);
  };

  private readonly onStatus = (): void => {
    this.batcher.schedule(this.flush);
  };

  /** Rebuilds the snapshot and notifies listeners when something changed. */
  private readonly flush = (force = false): void => {
    const previous = this.state;
    const subscription = this.subscription;
    const raw = subscription === null ? this.lastRaw : subscription.snapshot();
    const entries = raw === this.lastRaw && !force ? previous.entries : this.visible(raw);
    this.lastRaw = raw;
    const status = this.client?.status ?? IDLE;
    const channelStatus = subscription?.channelStatus ?? (subscription === null ? previous.channelStatus : null);
    const active = subscription !== null;
    const connectionStatus: ConnectionState =
      active && (status.state === 'idle' || status.state === 'closed') ? 'connecting' : status.state;
    const isConnected = status.state === 'open' && channelStatus !== null && GRANTED.has(channelStatus);
    const error = this.subscriptionError ?? this.channelError(channelStatus) ?? this.connectionError(status);
    if (
      !force &&
      entries === previous.entries &&
      status === previous.status &&
      channelStatus === previous.channelStatus &&
      connectionStatus === previous.connectionStatus &&
      error === previous.error &&
      this.gap === previous.gap
    ) {
      return;
    }
    const logs = entries === previous.entries ? previous.logs : Object.freeze(entries.map((entry) => entry.logData));
    this.state = Object.freeze({
      logs,
      entries,
      lastLog: logs.length > 0 ? (logs[logs.length - 1] as T) : null,
      connectionStatus,
      isConnected,
      error,
      status,
      channel: this.channel,
      channelStatus,
      gap: this.gap,
    });
    for (const listener of [...this.listeners]) listener();
  };

  private channelError(channelStatus: ChannelStatusKind | null): LogsSSEError | null {
    if (channelStatus !== 'denied') return null;
    this.deniedError ??= new LogsSSEError(
      'denied',
      `the gateway refused channel ${this.channel ?? ''}${this.deniedReason ? `: ${this.deniedReason}` : ''}`,
    );
    return this.deniedError;
  }

  /** One error object per status object, so an unchanged status keeps the snapshot. */
  private connectionError(status: ConnectionStatus): LogsSSEError | null {
    if (this.statusError.status !== status) {
      this.statusError = { status, error: LogsSSEError.fromStatus(status) };
    }
    return this.statusError.error;
  }

  /** The entries of a wasm snapshot that `clear()` did not hide. */
  private visible(raw: readonly LogEntry<T>[]): readonly LogEntry<T>[] {
    const hidden = this.hidden;
    if (hidden === null) return raw;
    const visible = raw.filter((entry) => !hidden.has(entry.cursor));
    if (visible.length === raw.length && raw.length > 0) {
      // The buffer no longer holds any cleared log: nothing left to hide.
      this.hidden = null;
      this.saveHidden();
      return raw;
    }
    return Object.freeze(visible);
  }

  /** Where the cleared cursors are remembered: next to the persisted logs, when persisted. */
  private hiddenKey(): string | null {
    if (!this.options.persist || this.channel === null) return null;
    return `${this.options.persistKey ?? `datashop-logs-sse:v1:${this.channel}`}:cleared`;
  }

  private loadHidden(): void {
    const key = this.hiddenKey();
    if (key === null || this.hidden !== null) return;
    try {
      const stored: unknown = JSON.parse(storage()?.getItem(key) ?? 'null');
      if (Array.isArray(stored)) this.hidden = new Set(stored.filter((c): c is string => typeof c === 'string'));
    } catch {
      // Unreadable or corrupt: show everything rather than fail.
    }
  }

  private saveHidden(): void {
    const key = this.hiddenKey();
    if (key === null) return;
    try {
      if (this.hidden === null || this.hidden.size === 0) storage()?.removeItem(key);
      else storage()?.setItem(key, JSON.stringify([...this.hidden]));
    } catch {
      // Storage that throws (private mode, quota): the clear holds until reload.
    }
  }
}

function storage(): Storage | undefined {
  return (globalThis as { sessionStorage?: Storage }).sessionStorage;
}
