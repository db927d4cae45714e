// A tab's side of a shared connection: the tab's own wasm client (its
// subscriptions, buffers, filters and sessionStorage) over a virtual stream
// that the owner (owner.ts) feeds.
//
// The wasm client's `transport` option replaces its EventSource and its
// `fetch`: `open` returns a VirtualStream, an EventTarget that dispatches
// the events the owner forwards for it, exactly as an EventSource would;
// the control calls of that stream (`POST …/{id}/channels`) become `change`
// messages the owner answers. The tab client's status is the owner's (the
// real stream's), with `sharing` saying how the tab reaches it.

import type { RawClient, RawStatusListener, RawSubscription } from '../registry.js';
import type { ConnectionStatus } from '../types.js';
import type { LogsClient } from '../wasm/logs_sse_client.js';
import type { OwnerMessage, SharingMode, TabMessage } from './messages.js';

/** What a tab's client talks to: the owner, wherever it runs. */
export interface OwnerLink {
  /** How this tab reaches the owner now. */
  readonly mode: SharingMode;
  send(message: TabMessage): void;
  /** Messages for this tab; the link calls `onReset` when the owner changed (handover) or dropped the tab. */
  listen(onMessage: (message: OwnerMessage) => void, onReset: () => void): void;
  /** Leaves the owner for good. */
  close(): void;
}

/** The `transport` of the tab's wasm client (client-wasm's `StreamTransport`). */
type Transport = NonNullable<NonNullable<ConstructorParameters<typeof LogsClient>[1]>['transport']>;

/** One virtual stream: what the tab's wasm client takes for its EventSource. */
class VirtualStream extends EventTarget {
  private opened = false;
  closed = false;

  constructor(
    readonly id: number,
    private readonly onClose: (stream: VirtualStream) => void,
  ) {
    super();
  }

  deliver(name: string, data: string): void {
    if (this.closed) return;
    if (!this.opened) {
      this.opened = true;
      this.dispatchEvent(new Event('open'));
    }
    this.dispatchEvent(new MessageEvent(name, { data }));
  }

  /** The owner went away: the client reconnects (to the next owner) from its cursors. */
  fail(): void {
    if (!this.closed) this.dispatchEvent(new Event('error'));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
  }
}

/** The tab's transport: virtual streams and their control calls, over the link. */
export class TabTransport {
  private current: VirtualStream | null = null;
  private nextStream = 1;
  private nextReq = 1;
  private readonly answers = new Map<number, (response: Response) => void>();

  constructor(
    private readonly tab: string,
    private readonly send: (message: TabMessage) => void,
  ) {}

  /** The object handed to the wasm client. */
  readonly transport: Transport = {
    open: (url: string) => this.open(url),
    fetch: (url: string, init: RequestInit) => this.fetch(url, init),
  };

  private open(url: string): VirtualStream {
    this.current?.close();
    const stream = new VirtualStream(this.nextStream++, (closed) => {
      if (this.current === closed) this.current = null;
      this.send({ t: 'close', tab: this.tab, stream: closed.id });
    });
    this.current = stream;
    this.send({ t: 'open', tab: this.tab, stream: stream.id, url });
    return stream;
  }

  private fetch(url: string, init: RequestInit): Promise<Response> {
    const stream = this.current;
    const method = (init.method ?? 'GET').toUpperCase();
    if (method !== 'POST' || !new URL(url, 'http://x/').pathname.endsWith('/channels')) {
      // The probe of a virtual stream that failed to open: there is no URL
      // behind it to ask, and the owner reports the real stream's state.
      return Promise.resolve(new Response(null, { status: 200 }));
    }
    if (stream === null) return Promise.resolve(jsonResponse(404, 'unknown_connection', 'no tab stream is open'));
    const req = this.nextReq++;
    return new Promise<Response>((resolve, reject) => {
      const signal = init.signal;
      if (signal?.aborted) {
        reject(new DOMException('the change was aborted', 'AbortError'));
        return;
      }
      signal?.addEventListener('abort', () => {
        this.answers.delete(req);
        reject(new DOMException('the change was aborted', 'AbortError'));
      });
      this.answers.set(req, resolve);
      this.send({ t: 'change', tab: this.tab, stream: stream.id, req, body: String(init.body ?? '') });
    });
  }

  /** An owner message for this tab. */
  receive(message: OwnerMessage): void {
    if (message.t === 'event') {
      if (this.current?.id === message.stream) this.current.deliver(message.name, message.data);
    } else if (message.t === 'answer') {
      const resolve = this.answers.get(message.req);
      this.answers.delete(message.req);
      resolve?.(new Response(message.body, { status: message.status, headers: { 'Content-Type': 'application/json' } }));
    }
  }

  /** The owner changed or forgot this tab: the open stream fails and answers never come. */
  reset(): void {
    for (const resolve of this.answers.values()) resolve(jsonResponse(404, 'unknown_connection', 'the shared connection moved'));
    this.answers.clear();
    this.current?.fail();
  }
}

function jsonResponse(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: { 'Content-Type': 'application/json' } });
}

type StatusCallback = Parameters<RawClient['onStatus']>[0];

/**
 * The RawClient of a tab that shares the connection: the tab's wasm client,
 * with the owner's status. What the rest of the package sees is unchanged.
 */
export class SharedTabClient implements RawClient {
  private ownerStatus: ConnectionStatus | null = null;
  private merged: ConnectionStatus | null = null;
  private readonly listeners = new Set<StatusCallback>();
  private readonly innerListener: RawStatusListener;

  constructor(
    private readonly inner: RawClient,
    private readonly link: OwnerLink,
    private readonly tab: string,
    private readonly transport: TabTransport,
    getToken: () => Promise<string | null>,
    onDiagnostic: (kind: string, message: string) => void,
  ) {
    this.innerListener = inner.onStatus(() => this.emit());
    link.listen(
      (message) => {
        switch (message.t) {
          case 'status':
            this.ownerStatus = message.status;
            this.emit();
            break;
          case 'token?':
            getToken().then(
              (token) => link.send({ t: 'token', tab, req: message.req, token }),
              (error: unknown) => link.send({ t: 'token', tab, req: message.req, error: error instanceof Error ? error.message : String(error) }),
            );
            break;
          case 'diagnostic':
            onDiagnostic(message.kind, message.message);
            break;
          default:
            transport.receive(message);
        }
      },
      () => {
        // A new owner (handover) or a forgotten tab: reopen there at once,
        // from this tab's cursors.
        this.ownerStatus = null;
        transport.reset();
        this.emit();
        inner.reconnect();
      },
    );
  }

  get status(): RawClient['status'] {
    // The owner's status may say `wasm_unavailable`, a reason this package
    // adds to the wasm client's (read back as ConnectionStatus by client.ts).
    return this.merge() as RawClient['status'];
  }

  private merge(): ConnectionStatus {
    const base = this.ownerStatus ?? (this.inner.status as ConnectionStatus);
    const mode = this.link.mode;
    if (this.merged === null || this.merged !== base && !sameStatus(this.merged, base, mode)) {
      this.merged = Object.freeze({ ...base, sharing: mode });
    }
    return this.merged;
  }

  subscribe(...args: Parameters<RawClient['subscribe']>): RawSubscription {
    return this.inner.subscribe(...args);
  }

  onStatus(callback: StatusCallback): RawStatusListener {
    this.listeners.add(callback);
    const off = (): void => {
      this.listeners.delete(callback);
    };
    return { unsubscribe: off, free: off } as RawStatusListener;
  }

  stats(): ReturnType<RawClient['stats']> {
    return this.inner.stats();
  }

  reconnect(): void {
    this.link.send({ t: 'reconnect', tab: this.tab });
    this.inner.reconnect();
  }

  close(): void {
    this.inner.close();
    this.link.close();
  }

  free(): void {
    this.innerListener.free();
    this.inner.free();
  }

  private emit(): void {
    const before = this.merged;
    const status = this.status;
    if (status === before) return;
    for (const listener of [...this.listeners]) listener(status);
  }
}

/** Whether `merged` already shows `base` in `mode` (same fields, same values). */
function sameStatus(merged: ConnectionStatus, base: ConnectionStatus, mode: SharingMode): boolean {
  if (merged.sharing !== mode) return false;
  const a = merged as unknown as Record<string, unknown>;
  const b = base as unknown as Record<string, unknown>;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  keys.delete('sharing');
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}
