// Sharing without a SharedWorker: the tabs elect a leader with the Web Locks
// API, the leader runs the owner (owner.ts) in its own page, and every
// message travels over one BroadcastChannel.
//
// - Election: every tab queues for one exclusive lock; whoever holds it
//   leads, and announces itself (`leader`). When the leader closes or
//   crashes the browser releases the lock and the next tab in the queue
//   takes over; the others hear `leader` and reopen their streams there,
//   from their own cursors.
// - A hidden leader is a bad leader (background tabs are throttled): it says
//   so (`hidden`), and a visible tab takes the lock from it (`steal`).
// - A leader that is frozen or hidden for the back/forward cache gives the
//   lock up first; a tab in the queue leaves the queue while frozen.
//
// Only a tab that takes this mode loads this module and the owner
// (connect.ts imports it on demand: a chunk of its own).

import { ConnectionOwner } from './owner.js';
import { ALIVE_EVERY_MS, Inbox, SHARE_PROTOCOL, unstamped } from './messages.js';
import type { OwnerConfig, OwnerMessage, TabMessage } from './messages.js';
import { followLifecycle, onVisibility, pageVisible } from './lifecycle.js';
import type { Lifecycle } from './lifecycle.js';
import type { OwnerLink } from './tab.js';

/** Messages a follower holds while no leader is known. */
const MAX_QUEUED = 1_000;
/** Most random delay before a visible tab takes over from a hidden leader (spreads simultaneous takers). */
const STEAL_JITTER_MS = 100;

type Wire =
  | { readonly v: number; readonly k: 'tab'; readonly to: string; readonly m: TabMessage }
  | { readonly v: number; readonly k: 'owner'; readonly from: string; readonly m: OwnerMessage }
  /**
   * `term`: the leader's place in the succession (each new leader's is above
   * every term it has heard, and at least the time it took the lock), so a
   * later leader wins over a late announcement of an earlier one.
   */
  | { readonly v: number; readonly k: 'leader'; readonly id: string; readonly hidden: boolean; readonly term?: number }
  | { readonly v: number; readonly k: 'hidden'; readonly id: string; readonly hidden: boolean }
  | { readonly v: number; readonly k: 'who' };

interface Locks {
  request(name: string, options: { signal?: AbortSignal; steal?: boolean }, callback: () => Promise<void>): Promise<void>;
}

class LeaderLink implements OwnerLink {
  private channel: BroadcastChannel | null = null;
  private leaderId: string | null = null;
  /** The owner this tab's streams were opened on (itself when leading); null before the first. */
  private joined: string | null = null;
  private leaderHidden = false;
  /** The known leader's term (this tab's, when leading). */
  private leaderSince = -Infinity;
  /** The highest term this tab has heard. */
  private highestTerm = 0;
  private owner: ConnectionOwner | null = null;
  /** Ends the lock callback: resolving it gives the lock up. */
  private release: (() => void) | null = null;
  private queued: AbortController | null = null;
  private pending: TabMessage[] = [];
  private onMessage: ((message: OwnerMessage) => void) | null = null;
  private onReset: (() => void) | null = null;
  private suspended = false;
  private closed = false;
  private readonly name: string;
  private readonly lifecycle: Lifecycle;
  private readonly stopVisibility: () => void;
  private readonly alive: ReturnType<typeof setInterval>;
  private readonly inbox = new Inbox();

  constructor(
    key: string,
    private readonly tab: string,
    private readonly config: OwnerConfig,
    private readonly locks: Locks,
  ) {
    this.name = shareName(key);
    this.lifecycle = followLifecycle(
      () => this.suspend(),
      () => this.start(),
    );
    this.stopVisibility = onVisibility((visible) => this.visibilityChanged(visible));
    // The owner releases a tab it has not heard of for a while (a crashed one).
    this.alive = setInterval(() => this.send({ t: 'alive', tab, visible: pageVisible() }), ALIVE_EVERY_MS);
    this.start();
  }

  get mode(): 'leader' | 'follower' {
    return this.owner !== null ? 'leader' : 'follower';
  }

  send(message: TabMessage): void {
    if (this.closed || this.suspended) return;
    if (this.owner !== null) {
      this.owner.handle(message, (m) => this.toSelf(m));
    } else if (this.leaderId !== null) {
      this.post({ v: SHARE_PROTOCOL, k: 'tab', to: this.leaderId, m: message });
    } else if (this.pending.length < MAX_QUEUED) {
      this.pending.push(message);
    }
  }

  listen(onMessage: (message: OwnerMessage) => void, onReset: () => void): void {
    this.onMessage = onMessage;
    this.onReset = onReset;
  }

  close(): void {
    if (this.closed) return;
    this.send({ t: 'leave', tab: this.tab });
    this.suspend();
    this.closed = true;
    clearInterval(this.alive);
    this.lifecycle.stop();
    this.stopVisibility();
  }

  private start(): void {
    if (this.closed) return;
    this.suspended = false;
    const channel = new BroadcastChannel(this.name);
    channel.onmessage = (event: MessageEvent<Wire>) => this.received(event.data);
    this.channel = channel;
    this.leaderId = null;
    // Back from a freeze or the cache: the owner forgot this tab's streams.
    if (this.joined !== null) this.joined = '';
    this.queue();
    this.post({ v: SHARE_PROTOCOL, k: 'who' });
  }

  /** Frozen, cached or closed: give up the lead and the queue, stop listening. */
  private suspend(): void {
    if (this.suspended) return;
    if (this.owner === null && this.leaderId !== null) {
      this.post({ v: SHARE_PROTOCOL, k: 'tab', to: this.leaderId, m: { t: 'leave', tab: this.tab } });
    }
    this.suspended = true;
    this.stopLeading();
    this.queued?.abort();
    this.queued = null;
    this.channel?.close();
    this.channel = null;
    this.leaderId = null;
    this.leaderSince = -Infinity;
    // What it queued for its first owner is dropped: on resume it reopens.
    if (this.joined === null && this.pending.length > 0) this.joined = '';
    this.pending = [];
  }

  /** Waits in the lock's queue; the callback runs once this tab leads. */
  private queue(): void {
    const controller = new AbortController();
    this.queued = controller;
    const ended = (): void => this.lost(controller);
    this.locks.request(this.name, { signal: controller.signal }, () => this.lead()).then(ended, ended);
  }

  /** Takes the lock from a hidden leader. */
  private steal(): void {
    this.queued?.abort();
    const controller = new AbortController();
    this.queued = controller;
    const ended = (): void => this.lost(controller);
    this.locks.request(this.name, { steal: true }, () => this.lead()).then(ended, ended);
  }

  /** The lock request ended: given up, stolen, aborted. Queue again unless leaving. */
  private lost(controller: AbortController): void {
    if (this.queued !== controller) return;
    if (this.owner !== null) {
      // Stolen: whoever took the lock announces itself; ask in case that
      // announcement came first and was ignored.
      this.stopLeading();
      this.post({ v: SHARE_PROTOCOL, k: 'who' });
    }
    if (!this.suspended && !this.closed) this.queue();
  }

  private lead(): Promise<void> {
    if (this.suspended || this.closed) return Promise.resolve();
    const owner = new ConnectionOwner(this.config, () => undefined, undefined, this.tab);
    const before = this.joined;
    this.owner = owner;
    this.leaderId = this.tab;
    this.leaderSince = Math.max(Date.now(), this.highestTerm + 1);
    this.highestTerm = this.leaderSince;
    this.joined = this.tab;
    this.announce();
    // This tab is a tab of its own owner, joined without a broadcast.
    owner.handle({ t: 'join', tab: this.tab, config: this.config, j: this.inbox.join() }, (m) => this.toSelf(m));
    const pending = this.pending;
    this.pending = [];
    if (before === null) for (const message of pending) this.send(message);
    else this.onReset?.();
    return new Promise<void>((resolve) => {
      this.release = resolve;
    });
  }

  private stopLeading(): void {
    const owner = this.owner;
    if (owner === null) return;
    this.owner = null;
    this.leaderId = null;
    this.leaderSince = -Infinity;
    owner.close();
    const release = this.release;
    this.release = null;
    release?.();
  }

  private received(wire: Wire): void {
    if (wire.v !== SHARE_PROTOCOL || this.suspended) return;
    switch (wire.k) {
      case 'tab':
        if (this.owner !== null && wire.to === this.tab) {
          const from = wire.m.tab;
          this.owner.handle(wire.m, (m) => this.post({ v: SHARE_PROTOCOL, k: 'owner', from: this.tab, m: { ...m, tab: from } }));
        }
        break;
      case 'owner':
        if (wire.from === this.leaderId && wire.m.tab === this.tab) this.fromOwner(wire.m);
        break;
      case 'leader': {
        const since = wire.term ?? -Infinity;
        this.highestTerm = Math.max(this.highestTerm, since);
        if (wire.id === this.tab) break;
        if (this.owner !== null) {
          // This tab holds the lock: an announcement of an earlier leader is
          // late (say who leads now); only a later one (a steal whose lock
          // failure has not arrived yet) takes the lead away.
          if (since > this.leaderSince) this.follow(wire.id, since, wire.hidden);
          else this.announce();
        } else if (wire.id === this.leaderId) {
          this.leaderHidden = wire.hidden;
        } else if (this.leaderId === null || since > this.leaderSince) {
          this.follow(wire.id, since, wire.hidden);
        }
        if (this.leaderId === wire.id && wire.hidden) this.considerSteal();
        break;
      }
      case 'hidden':
        if (wire.id === this.leaderId) {
          this.leaderHidden = wire.hidden;
          if (wire.hidden) this.considerSteal();
        }
        break;
      case 'who':
        if (this.owner !== null) this.announce();
        break;
    }
  }

  /** Another tab leads (a new leader, or the one this tab just learnt of): join it. */
  private follow(id: string, since: number, hidden: boolean): void {
    // A leader displaced by a steal hears the new leader first, or its lock
    // request fails first: either way it stops leading.
    if (this.owner !== null) this.stopLeading();
    const before = this.joined;
    this.leaderId = id;
    this.leaderSince = since;
    this.leaderHidden = hidden;
    this.joined = id;
    this.post({ v: SHARE_PROTOCOL, k: 'tab', to: id, m: { t: 'join', tab: this.tab, config: this.config, j: this.inbox.join() } });
    const pending = this.pending;
    this.pending = [];
    if (before === null) {
      // The first owner this tab meets: what it sent meanwhile was for it.
      for (const message of pending) this.send(message);
    } else {
      // Its streams lived on another owner: reopen them here, from their cursors.
      this.onReset?.();
    }
  }

  private fromOwner(message: OwnerMessage): void {
    const verdict = this.inbox.accept(message);
    if (verdict === 'stale') return;
    if (message.t === 'dropped' || verdict === 'gap') {
      // Forgotten by the owner, or a message of it lost on the way: join
      // again and reopen from the cursors.
      if (this.owner !== null) {
        this.owner.handle({ t: 'join', tab: this.tab, config: this.config, j: this.inbox.join() }, (m) => this.toSelf(m));
        this.onReset?.();
      } else if (this.leaderId !== null) {
        this.follow(this.leaderId, this.leaderSince, this.leaderHidden);
      }
      return;
    }
    this.onMessage?.(unstamped(message));
  }

  private toSelf(message: OwnerMessage): void {
    // Delivered after the current call, as a port would: the owner may be
    // inside the tab client's own call.
    queueMicrotask(() => {
      if (this.owner !== null && message.tab === this.tab) this.fromOwner(message);
    });
  }

  private visibilityChanged(visible: boolean): void {
    if (this.suspended || this.closed) return;
    // The owner asks visible tabs for tokens first.
    this.send({ t: 'alive', tab: this.tab, visible });
    if (this.owner !== null) {
      this.post({ v: SHARE_PROTOCOL, k: 'hidden', id: this.tab, hidden: !visible });
    } else if (visible && this.leaderHidden) {
      this.considerSteal();
    }
  }

  private announce(): void {
    this.post({ v: SHARE_PROTOCOL, k: 'leader', id: this.tab, hidden: !pageVisible(), term: this.leaderSince });
  }

  private considerSteal(): void {
    if (!pageVisible() || this.owner !== null) return;
    const leader = this.leaderId;
    setTimeout(() => {
      if (this.leaderId === leader && this.leaderHidden && pageVisible() && this.owner === null && !this.suspended) this.steal();
    }, Math.random() * STEAL_JITTER_MS);
  }

  private post(wire: Wire): void {
    this.channel?.postMessage(wire);
  }
}

/** The name of the lock and the broadcast channel of one connection key. */
function shareName(key: string): string {
  return `@datashop/logs-sse-client:v${SHARE_PROTOCOL}:${key}`;
}

/** Joins (or starts) the election of `key`'s tabs (the browser can elect: connect.ts's `canElect`). */
export function connectLeader(key: string, tab: string, config: OwnerConfig): OwnerLink {
  const locks = (globalThis as unknown as { navigator: { locks: Locks } }).navigator.locks;
  return new LeaderLink(key, tab, config, locks);
}
