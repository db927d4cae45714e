// The owner of a shared connection: one real wasm client (one EventSource,
// real control calls) serving every tab of the browser that uses the same
// gateway. It runs in the SharedWorker, or in the leader tab.
//
// Each tab runs its own wasm client over a virtual stream (see tab.ts). For
// every channel a tab's stream carries, the owner holds one subscription of
// its own on the real client (a relay), started where the tab's stream
// asked (the tab's cursor, `last:N`, earliest, live). So the union of the
// tabs' channels is reference counted by the real client (a channel leaves
// the real stream when the last tab's subscription ends), and the real
// stream carries each channel from the oldest point any tab needs (a tab
// joining behind makes the real client fetch what it missed).
//
// What a tab's stream carries: each relay's status (the gateway's, or the
// one the real client gives a subscription joining a channel it already
// streams), then what that join handed over (parked or backfilled logs);
// and every log of the real stream whose channel one of the tab's channels
// covers, once, in the real stream's order. A tab's stream is thus what a
// stream of its own would carry (cursor order per family, a channel's
// replay after its status), plus replays made for other tabs, which the
// tab's client drops by cursor.

import type { RawClient, RawStatusListener, RawSubscribeOptions, RawSubscription } from '../registry.js';
import type { ConnectionStatus, Diagnostic } from '../types.js';
import { createRawClient } from '../wasm.js';
import type { OwnerConfig, OwnerMessage, TabMessage } from './messages.js';
import { TokenRequests } from './tokens.js';
import { covers, logChannel, parseChange } from './wire.js';

/**
 * The heartbeat a virtual stream announces (a tab's watchdog reopens after
 * 2.5 of them): long, because a hidden leader's and a hidden tab's timers
 * may run only once a minute; pings go every PING_EVERY_MS.
 */
export const VIRTUAL_HEARTBEAT_MS = 60_000;
export const PING_EVERY_MS = 15_000;
/** A tab that sent nothing this long (crashed without `pagehide`) is released; tabs report every 20 s. */
export const TAB_SILENCE_MS = 180_000;
/** How long one tab may take to answer a token request before the next tab is asked. */
export const TOKEN_ASK_MS = 5_000;
/** Logs the owner keeps per tab subscription: what a `last:N` joiner is backfilled from. */
export const OWNER_KEEP = 1_000;
/** The owner's limits: one real client serves every tab. */
const OWNER_MAX_SUBSCRIPTIONS = 4_096;
/** Tab messages waiting for the owner's wasm module. */
const MAX_WAITING = 10_000;

type Send = (message: OwnerMessage) => void;
/** What a subscription's `onUpdate` receives from the wasm client. */
type RawUpdate = Parameters<Parameters<RawClient['subscribe']>[2]>[0];

/**
 * One tab's subscription on the real client: it holds the channel on the
 * real stream from where that tab asked, and gives the tab the channel's
 * status and the logs the real client hands it when it joins (parked or
 * backfilled logs, which the real stream does not carry again).
 */
interface Relay {
  readonly channel: string;
  readonly stream: number;
  raw: RawSubscription | null;
  /** Inside its `subscribe`: the logs the filter sees are the join's own. */
  joining: boolean;
  /** The join's logs wait until the channel's status went to the tab (the tab takes none before it). */
  statusSent: boolean;
  pending: string[];
}

interface Tab {
  readonly id: string;
  send: Send;
  stream: number | null;
  relays: Map<string, Relay>;
  lastSeen: number;
  visible: boolean;
}

export class ConnectionOwner {
  private client: RawClient | null = null;
  private statusListener: RawStatusListener | null = null;
  private failure: ConnectionStatus | null = null;
  private readonly tabs = new Map<string, Tab>();
  private waiting: { message: TabMessage; send: Send }[] = [];
  private readonly tokens = new TokenRequests(TOKEN_ASK_MS);
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly ready: Promise<void>;

  constructor(
    readonly config: OwnerConfig,
    /** Called once no tab is left for `idleMs`: the caller closes the owner. */
    private readonly onIdle: () => void,
    private readonly idleMs = 1_000,
    /** The tab this owner runs in (the leader), asked for tokens first: no message hop. */
    private readonly homeTab?: string,
  ) {
    const tuning = { ...config.tuning, maxSubscriptions: OWNER_MAX_SUBSCRIPTIONS };
    const onDiagnostic = (d: Diagnostic): void => this.broadcast((tab) => ({ t: 'diagnostic', tab, kind: d.kind, message: d.message }));
    // The real stream, tapped: every log it carries goes, as it comes, to
    // every tab whose stream covers its channel (see `relayLog`).
    const transport = {
      open: (url: string, withCredentials: boolean) => {
        const source = new EventSource(url, { withCredentials });
        source.addEventListener('log', (event) => this.relayLog((event as MessageEvent<string>).data));
        return source;
      },
      fetch: (url: string, init: RequestInit) => globalThis.fetch(url, init),
    };
    this.ready = createRawClient(
      config.gatewayUrl,
      config.withCredentials,
      { ...tuning, onDiagnostic },
      config.wasmUrl,
      () => this.askToken(),
      transport,
    ).then(
      (client) => {
        if (this.closed) {
          client.close();
          client.free();
          return;
        }
        this.client = client;
        // Held: a listener handle that is garbage collected frees itself
        // (and stops listening).
        this.statusListener = client.onStatus((status) => this.broadcastStatus(status as ConnectionStatus));
        const waiting = this.waiting;
        this.waiting = [];
        for (const { message, send } of waiting) this.handle(message, send);
      },
      (error: unknown) => {
        const detail = error instanceof Error ? error.message : String(error);
        this.failure = Object.freeze({
          state: 'failed',
          reason: 'wasm_unavailable',
          message: `the shared logs connection could not load its WebAssembly module: ${detail}`,
          attempt: 0,
        });
        for (const { message, send } of this.waiting) {
          if (message.t === 'join') send({ t: 'status', tab: message.tab, status: this.failure });
        }
        this.waiting = [];
      },
    );
    this.heartbeat = setInterval(() => this.tick(), PING_EVERY_MS);
  }

  /** Resolves once the real client exists (or failed to). */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Handles one tab message; `send` reaches that tab. */
  handle(message: TabMessage, send: Send): void {
    if (this.closed) return;
    if (this.client === null) {
      if (this.failure !== null) {
        send({ t: 'status', tab: message.tab, status: this.failure });
      } else if (this.waiting.length < MAX_WAITING) {
        this.waiting.push({ message, send });
      }
      return;
    }
    if (message.t === 'join') {
      this.join(message.tab, send, message.j);
      return;
    }
    const tab = this.tabs.get(message.tab);
    if (tab === undefined) {
      // A tab this owner does not know (it was dropped, or spoke to the
      // previous owner): it must join first.
      if (message.t !== 'leave' && message.t !== 'token' && message.t !== 'close') send({ t: 'dropped', tab: message.tab });
      return;
    }
    tab.lastSeen = Date.now();
    switch (message.t) {
      case 'open':
        this.open(tab, message.stream, message.url);
        break;
      case 'close':
        if (tab.stream === message.stream) this.releaseRelays(tab);
        break;
      case 'change':
        this.change(tab, message.stream, message.req, message.body);
        break;
      case 'token':
        this.tokens.answer(message.req, message.token, message.error);
        break;
      case 'reconnect':
        this.client.reconnect();
        break;
      case 'alive':
        tab.visible = message.visible;
        break;
      case 'leave':
        this.leave(tab);
        break;
    }
  }

  /** Tabs currently served. */
  get tabCount(): number {
    return this.tabs.size;
  }

  /** Closes the real stream; every tab's stream ends with it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.idleTimer);
    for (const tab of this.tabs.values()) this.releaseRelays(tab);
    this.tabs.clear();
    this.tokens.close();
    this.statusListener?.free();
    this.statusListener = null;
    if (this.client !== null) {
      this.client.close();
      this.client.free();
      this.client = null;
    }
  }

  private join(id: string, send: Send, j: number | undefined): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const known = this.tabs.get(id);
    if (known !== undefined) this.releaseRelays(known);
    // Every message to the tab numbered, so it can tell one was lost.
    let n = 0;
    const stamped: Send = j === undefined ? send : (message) => send({ ...message, j, n: (n += 1) });
    this.tabs.set(id, { id, send: stamped, stream: null, relays: new Map(), lastSeen: Date.now(), visible: true });
    if (this.client !== null) stamped({ t: 'status', tab: id, status: this.client.status as ConnectionStatus });
  }

  private leave(tab: Tab): void {
    this.releaseRelays(tab);
    this.tabs.delete(tab.id);
    if (this.tabs.size === 0 && this.idleTimer === undefined) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        if (this.tabs.size === 0) this.onIdle();
      }, this.idleMs);
    }
  }

  /** A new stream of the tab: its channels start over from where it asks. */
  private open(tab: Tab, stream: number, url: string): void {
    this.releaseRelays(tab);
    tab.stream = stream;
    let channels: string[] = [];
    const since = new Map<string, string>();
    try {
      const params = new URL(url).searchParams;
      channels = (params.get('channels') ?? '').split(',').filter((c) => c !== '');
      for (const item of (params.get('since') ?? '').split(',')) {
        const at = item.lastIndexOf('@');
        if (at > 0) since.set(item.slice(0, at), item.slice(at + 1));
      }
    } catch {
      // The tab's own client built the URL; nothing to open if it is not one.
    }
    const hello = { connectionId: `${tab.id}.${stream}`, epoch: '0', heartbeatMs: VIRTUAL_HEARTBEAT_MS, controlSecret: 'shared' };
    tab.send({ t: 'event', tab: tab.id, stream, name: 'hello', data: JSON.stringify(hello) });
    for (const channel of channels) this.relay(tab, stream, channel, since.get(channel));
  }

  /** A control call of the tab's stream, applied to the tab's relays. */
  private change(tab: Tab, stream: number, req: number, body: string): void {
    const answer = (status: number, text: string): void => tab.send({ t: 'answer', tab: tab.id, req, status, body: text });
    if (tab.stream !== stream) {
      answer(404, JSON.stringify({ error: { code: 'unknown_connection', message: 'the tab stream is gone' } }));
      return;
    }
    const parsed = parseChange(body);
    if (parsed === null) {
      answer(400, JSON.stringify({ error: { code: 'invalid_body', message: 'expected {"add":[{"channel","since"?}],"remove":[channel]}' } }));
      return;
    }
    // Removals first: a channel removed and added back starts from its new point.
    for (const channel of parsed.remove) this.unrelay(tab, channel);
    for (const { channel, since } of parsed.add) {
      this.unrelay(tab, channel);
      this.relay(tab, stream, channel, since);
    }
    answer(200, '{}');
  }

  private relay(tab: Tab, stream: number, channel: string, since: string | undefined): void {
    const client = this.client;
    if (client === null) return;
    const relay: Relay = { channel, stream, raw: null, joining: true, statusSent: false, pending: [] };
    tab.relays.set(channel, relay);
    const options: RawSubscribeOptions = {
      maxLogs: OWNER_KEEP,
      // Called for each log the subscription takes (it must not call the
      // client). The stream's own logs reach the tab through `relayLog`;
      // only what the join hands over is forwarded from here. Kept, so a
      // later `last:N` joiner of the channel can be backfilled from it.
      filter: (entry) => {
        if (relay.joining) this.forwardJoined(tab, relay, JSON.stringify(entry));
        return true;
      },
    };
    if (since === 'earliest') options.resumeFrom = 'earliest';
    else if (since !== undefined && since.startsWith('last:')) {
      const n = Number(since.slice('last:'.length));
      options.history = n;
      options.maxLogs = Math.min(100_000, Math.max(OWNER_KEEP, n));
    } else if (since !== undefined) options.resumeFrom = since;
    try {
      relay.raw = client.subscribe(channel, options, (update) => this.onUpdate(tab, relay, update));
      relay.joining = false;
    } catch (error) {
      // The owner's limits (the tab's client checked the channel itself).
      const reason = error instanceof Error && 'code' in error ? String((error as { code: unknown }).code) : 'owner_refused';
      tab.relays.delete(channel);
      this.sendStatus(tab, relay, { channel, status: 'denied', reason, replayed: 0 });
    }
  }

  private onUpdate(tab: Tab, relay: Relay, update: RawUpdate): void {
    if (update.type !== 'status' || tab.relays.get(relay.channel) !== relay) return;
    const status: Record<string, unknown> = { channel: relay.channel, status: update.status, replayed: update.replayed };
    if (update.cursor !== undefined) status.cursor = update.cursor;
    if (update.reason !== undefined) status.reason = update.reason;
    this.sendStatus(tab, relay, status);
  }

  private sendStatus(tab: Tab, relay: Relay, status: Record<string, unknown>): void {
    tab.send({ t: 'event', tab: tab.id, stream: relay.stream, name: 'status', data: JSON.stringify(status) });
    relay.statusSent = true;
    const pending = relay.pending;
    relay.pending = [];
    for (const data of pending) tab.send({ t: 'event', tab: tab.id, stream: relay.stream, name: 'log', data });
  }

  private forwardJoined(tab: Tab, relay: Relay, data: string): void {
    if (tab.relays.get(relay.channel) !== relay) return;
    if (!relay.statusSent) {
      relay.pending.push(data);
      return;
    }
    tab.send({ t: 'event', tab: tab.id, stream: relay.stream, name: 'log', data });
  }

  /**
   * A log of the real stream: once to every tab whose stream holds a channel
   * covering it (and has had that channel's status), in the real stream's
   * order. So each tab's stream carries
   * what a stream of its own would (in cursor order per family, replays
   * before what follows them), plus what other tabs' channels made the real
   * stream replay, which the tab's client drops by cursor.
   */
  private relayLog(data: string): void {
    const channel = logChannel(data);
    if (channel === null) return;
    for (const tab of this.tabs.values()) {
      if (tab.stream === null) continue;
      for (const relay of tab.relays.values()) {
        // Only after the relay's status: a stream brings a channel's status
        // and replay before its live logs, and the tab's client counts on
        // it (what came before the status is in the replay that follows it).
        if (relay.statusSent && covers(relay.channel, channel)) {
          tab.send({ t: 'event', tab: tab.id, stream: tab.stream, name: 'log', data });
          break;
        }
      }
    }
  }

  private unrelay(tab: Tab, channel: string): void {
    const relay = tab.relays.get(channel);
    if (relay === undefined) return;
    tab.relays.delete(channel);
    endRelay(relay);
  }

  private releaseRelays(tab: Tab): void {
    const relays = [...tab.relays.values()];
    tab.relays.clear();
    tab.stream = null;
    for (const relay of relays) endRelay(relay);
  }

  private broadcast(make: (tab: string) => OwnerMessage): void {
    for (const tab of this.tabs.values()) tab.send(make(tab.id));
  }

  private broadcastStatus(status: ConnectionStatus): void {
    this.broadcast((tab) => ({ t: 'status', tab, status }));
  }

  /** The heartbeat of every tab's stream, and the release of tabs gone silent. */
  private tick(): void {
    const now = Date.now();
    for (const tab of [...this.tabs.values()]) {
      if (now - tab.lastSeen > TAB_SILENCE_MS && tab.id !== this.homeTab) {
        tab.send({ t: 'dropped', tab: tab.id });
        this.leave(tab);
      } else if (tab.stream !== null) {
        tab.send({ t: 'event', tab: tab.id, stream: tab.stream, name: 'ping', data: '{}' });
      }
    }
  }

  /** The real client's token getter: a tab asks its own `token` source (the owner's own tab, then visible ones). */
  private askToken(): Promise<string | null> {
    const rank = (tab: Tab): number => (tab.id === this.homeTab ? 2 : tab.visible ? 1 : 0);
    const tabs = [...this.tabs.values()].sort((a, b) => rank(b) - rank(a) || b.lastSeen - a.lastSeen);
    return this.tokens.ask(
      tabs.map((tab) => ({
        present: () => this.tabs.has(tab.id),
        // Through the tab's current join (a tab that joined again ignores the old one's).
        ask: (req: number) => this.tabs.get(tab.id)?.send({ t: 'token?', tab: tab.id, req }),
      })),
    );
  }
}

function endRelay(relay: Relay): void {
  const raw = relay.raw;
  relay.raw = null;
  relay.pending = [];
  if (raw !== null) {
    raw.unsubscribe();
    raw.free();
  }
}
