// A stand-in for the wasm LogsClient, implementing the members of its
// generated type that registry.ts picks (RawClient), so the TypeScript logic
// can be unit tested in node. The real wasm client is exercised by the
// browser tests.
import type { RawClient, RawStatusListener, RawSubscribeOptions, RawSubscription } from '../../src/registry.js';
import type { LogEntry } from '../../src/types.js';

type RawEntries = ReturnType<RawSubscription['snapshot']>;
type RawStatus = RawClient['status'];
type OnUpdate = Parameters<RawClient['subscribe']>[2];
type OnStatus = Parameters<RawClient['onStatus']>[0];

export class FakeSubscription implements RawSubscription {
  channelStatus: RawSubscription['channelStatus'] = undefined;
  ended = false;
  freed = false;
  private buffer: RawEntries = frozen([]);

  constructor(
    readonly channel: string,
    readonly options: RawSubscribeOptions,
    readonly onUpdate: OnUpdate,
  ) {}

  snapshot(): RawEntries {
    return this.buffer;
  }

  /** Appends logs like the wasm client: filter, bound by maxLogs, new frozen array, one update. */
  push(...logData: unknown[]): void {
    const filter = this.options.filter;
    const added = logData
      .map((data) => ({ channel: this.channel, cursor: `e-${(nextCursor += 1)}`, ts: Date.now(), logData: data }))
      .filter((entry) => filter === undefined || filter(entry));
    const max = this.options.maxLogs ?? 1000;
    this.buffer = frozen([...this.buffer, ...added].slice(-max));
    this.onUpdate({ type: 'logs', added: added.length });
  }

  setBuffer(entries: LogEntry<unknown>[]): void {
    this.buffer = frozen(entries);
  }

  unsubscribe(): void {
    this.ended = true;
  }

  free(): void {
    this.freed = true;
  }
}

let nextCursor = 0;

/** Freezes in place, like the wasm client's snapshots (typed as its generated `LogEntry[]`). */
function frozen(entries: RawEntries): RawEntries {
  Object.freeze(entries);
  return entries;
}

export class FakeClient implements RawClient {
  status: RawStatus = Object.freeze({ state: 'idle', attempt: 0 });
  readonly subscriptions: FakeSubscription[] = [];
  readonly statusListeners = new Set<OnStatus>();
  closed = false;
  freed = false;
  reconnects = 0;
  /** When set, subscribe throws it (like a LogsClientError). */
  failSubscribe: { code: string; message: string } | null = null;

  subscribe(channel: string, options: RawSubscribeOptions | null | undefined, onUpdate: OnUpdate): FakeSubscription {
    if (this.failSubscribe) throw Object.assign(new Error(this.failSubscribe.message), { code: this.failSubscribe.code });
    const subscription = new FakeSubscription(channel, options ?? {}, onUpdate);
    this.subscriptions.push(subscription);
    return subscription;
  }

  onStatus(callback: OnStatus): RawStatusListener {
    this.statusListeners.add(callback);
    return {
      unsubscribe: () => this.statusListeners.delete(callback),
      free: () => undefined,
    };
  }

  setStatus(status: Omit<RawStatus, 'attempt'> & { attempt?: number }): void {
    this.status = Object.freeze({ attempt: 0, ...status });
    for (const listener of [...this.statusListeners]) listener(this.status);
  }

  /** Calls the status listeners without changing the status object. */
  repeatStatus(): void {
    for (const listener of [...this.statusListeners]) listener(this.status);
  }

  live(): FakeSubscription[] {
    return this.subscriptions.filter((s) => !s.ended);
  }

  reconnect(): void {
    this.reconnects += 1;
  }

  stats() {
    return {
      events: 0, logs: 0, delivered: 0, duplicates: 0, filtered: 0, malformed: 0, opens: 0, gaps: 0,
      channelChanges: { mode: 'reconnect' as const, live: 0, reopened: 0 },
    };
  }

  close(): void {
    this.closed = true;
  }

  free(): void {
    this.freed = true;
  }
}

/** A frame batcher whose frames the test runs by hand. */
export function manualFrames() {
  const callbacks: (() => void)[] = [];
  return {
    request: () => (callback: () => void) => {
      callbacks.push(callback);
    },
    pending: () => callbacks.length,
    run(): void {
      const due = callbacks.splice(0);
      for (const callback of due) callback();
    },
  };
}
