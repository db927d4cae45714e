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

/** The options' `transport` (client-wasm's StreamTransport). */
type Transport = { open(url: string, withCredentials: boolean): EventTarget & { close(): void } };

/**
 * Node has no EventSource: a stand-in the owner's transport opens, on which
 * the fake client's pushed logs appear as `log` events, as on a real stream.
 */
class FakeEventSource extends EventTarget {
  constructor(readonly url: string) {
    super();
  }
  close(): void {}
}
const scope = globalThis as { EventSource?: unknown };
if (scope.EventSource === undefined) scope.EventSource = FakeEventSource;

export class FakeSubscription implements RawSubscription {
  channelStatus: RawSubscription['channelStatus'] = undefined;
  ended = false;
  freed = false;
  private buffer: RawEntries = frozen([]);

  constructor(
    readonly channel: string,
    readonly options: RawSubscribeOptions,
    readonly onUpdate: OnUpdate,
    /** The client's stream, when it was given a transport: pushed logs are its events. */
    private readonly stream: EventTarget | null = null,
  ) {}

  /** Logs handed over as the subscription is made (parked, backfilled): only its filter sees them. */
  give(...logData: unknown[]): void {
    this.add(logData, false);
  }

  snapshot(): RawEntries {
    return this.buffer;
  }

  /** Appends logs like the wasm client: filter, bound by maxLogs, new frozen array, one update. */
  push(...logData: unknown[]): void {
    this.add(logData, true);
  }

  private add(logData: unknown[], onStream: boolean): void {
    const filter = this.options.filter;
    const entries = logData.map((data) => ({ channel: this.channel, cursor: `e-${(nextCursor += 1)}`, ts: Date.now(), logData: data }));
    if (onStream) for (const entry of entries) this.stream?.dispatchEvent(new MessageEvent('log', { data: JSON.stringify(entry) }));
    const added = entries.filter((entry) => filter === undefined || filter(entry));
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
  /** Called inside `subscribe`, before it returns: what a join hands over (`sub.give(…)`), or a status. */
  atJoin: ((subscription: FakeSubscription) => void) | null = null;
  /** The stream the transport opened (the owner's real stream, tapped), if one was given. */
  readonly stream: (EventTarget & { close(): void }) | null;

  constructor(transport?: unknown) {
    this.stream = transport === undefined || transport === null ? null : (transport as Transport).open('fake://stream', false);
  }

  subscribe(channel: string, options: RawSubscribeOptions | null | undefined, onUpdate: OnUpdate): FakeSubscription {
    if (this.failSubscribe) throw Object.assign(new Error(this.failSubscribe.message), { code: this.failSubscribe.code });
    const subscription = new FakeSubscription(channel, options ?? {}, onUpdate, this.stream);
    this.subscriptions.push(subscription);
    this.atJoin?.(subscription);
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
