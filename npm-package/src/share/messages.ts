// The messages between a tab and the owner of the shared connection (a
// SharedWorker, or the leader tab), plain data that survives structured
// cloning. A tab runs its own wasm client over a virtual stream; the owner
// runs the one real stream and, per tab, forwards the events that tab's
// stream would have carried. Every message names the tab it concerns, so the
// same messages work over a MessagePort (one tab) and a BroadcastChannel
// (every tab hears everything and keeps its own).

import type { ClientTuning, ConnectionStatus } from '../types.js';

/** Bumped for any incompatible change: a tab and an owner of another version do not talk. */
export const SHARE_PROTOCOL = 1;

export type { SharingMode } from '../types.js';

/** What the owner needs to open the real stream: what the first tab was created with. */
export interface OwnerConfig {
  /** Resolved gateway stream URL. */
  readonly gatewayUrl: string;
  readonly withCredentials: boolean;
  /** The tuning without functions (`onDiagnostic` stays in the tab: diagnostics are forwarded). */
  readonly tuning: Omit<ClientTuning, 'onDiagnostic'>;
  readonly wasmUrl?: string;
}

/** From a tab to the owner. */
export type TabMessage =
  /**
   * A tab arrives (or comes back after a handover, a freeze or the
   * back/forward cache). `j` counts the tab's joins: the owner stamps what
   * it sends the tab with it (see Stamp).
   */
  | { readonly t: 'join'; readonly tab: string; readonly config: OwnerConfig; readonly j?: number }
  /** The tab's client opened stream `stream` with this URL (its query names channels and `since`). */
  | { readonly t: 'open'; readonly tab: string; readonly stream: number; readonly url: string }
  /** The tab's client closed stream `stream`. */
  | { readonly t: 'close'; readonly tab: string; readonly stream: number }
  /** A control call of the tab's stream: the JSON body of `POST …/{id}/channels`. */
  | { readonly t: 'change'; readonly tab: string; readonly stream: number; readonly req: number; readonly body: string }
  /** The tab's answer to a token request. */
  | { readonly t: 'token'; readonly tab: string; readonly req: number; readonly token?: string | null; readonly error?: string }
  /** Retry the real stream at once (the tab's `reconnect()`). */
  | { readonly t: 'reconnect'; readonly tab: string }
  /** The tab is still there (a worker cannot see a tab that crashed). */
  | { readonly t: 'alive'; readonly tab: string; readonly visible: boolean }
  /** The tab leaves: page hidden for the back/forward cache, frozen, closed. */
  | { readonly t: 'leave'; readonly tab: string };

/**
 * What the owner adds to every message it sends a joined tab: the tab's
 * join (`j`) and the message's number since it (`n`, from 1). A
 * BroadcastChannel may drop messages (Chromium does for a page busy
 * opening a window, for one): a tab that finds a number missing joins
 * again and reopens its stream from its cursors (see Inbox).
 */
export interface Stamp {
  readonly j?: number;
  readonly n?: number;
}

/** From the owner to a tab. */
export type OwnerMessage = Stamp & OwnerBody;

type OwnerBody =
  /** An event of the tab's stream `stream`, as an EventSource would dispatch it. */
  | { readonly t: 'event'; readonly tab: string; readonly stream: number; readonly name: string; readonly data: string }
  /** The answer to a control call. */
  | { readonly t: 'answer'; readonly tab: string; readonly req: number; readonly status: number; readonly body: string }
  /** The real stream's status (for every tab). */
  | { readonly t: 'status'; readonly tab: string; readonly status: ConnectionStatus }
  /** The owner needs a subscriber token: the tab asks its own `token` source. */
  | { readonly t: 'token?'; readonly tab: string; readonly req: number }
  /** A diagnostic of the real stream's client. */
  | { readonly t: 'diagnostic'; readonly tab: string; readonly kind: string; readonly message: string }
  /** The owner no longer knows the tab (it was silent too long): join again. */
  | { readonly t: 'dropped'; readonly tab: string };

/** The message without its stamp (what the tab's client is given). */
export function unstamped(message: OwnerMessage): OwnerMessage {
  if (message.j === undefined && message.n === undefined) return message;
  const { j: _j, n: _n, ...body } = message;
  return body as OwnerMessage;
}

/** A tab's side of the numbering (Stamp): what it accepts from its owner. */
export class Inbox {
  private j = 0;
  private next = 1;

  /** A new join: its number, for the `join` message. */
  join(): number {
    this.j += 1;
    this.next = 1;
    return this.j;
  }

  /**
   * `ok`: take it; `stale`: sent for an earlier join, ignore it; `gap`:
   * a message before it was lost, join again. Unstamped messages (an owner
   * that does not know the tab) are taken.
   */
  accept(message: Stamp): 'ok' | 'stale' | 'gap' {
    if (message.j === undefined || message.n === undefined) return 'ok';
    if (message.j !== this.j) return 'stale';
    if (message.n !== this.next) return 'gap';
    this.next += 1;
    return 'ok';
  }
}

/** How often a tab tells its owner it is still there (well below owner.ts's TAB_SILENCE_MS, throttled timers included). */
export const ALIVE_EVERY_MS = 20_000;

/** A new tab identity: random per page load, never stored (a duplicated tab gets its own). */
export function newTabId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}
