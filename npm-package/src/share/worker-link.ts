// A tab's link to the SharedWorker that owns the connection (worker.ts):
// one MessagePort. The worker is named and loaded from this package's own
// script URL, so every tab of the browser that loads the same build of the
// package shares it.

import { ALIVE_EVERY_MS, Inbox, SHARE_PROTOCOL, unstamped } from './messages.js';
import type { OwnerConfig, OwnerMessage, TabMessage } from './messages.js';
import { followLifecycle, onVisibility, pageVisible } from './lifecycle.js';
import type { Lifecycle } from './lifecycle.js';
import type { OwnerLink } from './tab.js';

/** How long the worker may take to answer (it loads the WebAssembly module first). */
export const WORKER_START_MS = 10_000;
export { ALIVE_EVERY_MS };
/** The worker's name: with the script URL, what makes tabs share one worker. */
export const WORKER_NAME = '@datashop/logs-sse-client';

class WorkerLink implements OwnerLink {
  readonly mode = 'worker' as const;
  private onMessage: ((message: OwnerMessage) => void) | null = null;
  private onReset: (() => void) | null = null;
  private early: OwnerMessage[] = [];
  private readonly alive: ReturnType<typeof setInterval>;
  private readonly lifecycle: Lifecycle;
  private readonly stopVisibility: () => void;
  private closed = false;
  private suspended = false;
  private readonly inbox = new Inbox();
  private answered: () => void = () => undefined;
  private failed: () => void = () => undefined;

  constructor(
    private readonly port: MessagePort,
    private readonly key: string,
    private readonly tab: string,
    private readonly config: OwnerConfig,
  ) {
    port.onmessage = (event: MessageEvent<OwnerMessage>) => this.received(event.data);
    port.start();
    this.post({ t: 'join', tab, config, j: this.inbox.join() });
    this.alive = setInterval(() => this.post({ t: 'alive', tab, visible: pageVisible() }), ALIVE_EVERY_MS);
    this.stopVisibility = onVisibility((visible) => this.post({ t: 'alive', tab, visible }));
    this.lifecycle = followLifecycle(
      () => {
        this.post({ t: 'leave', tab });
        // Frozen, cached or closing: say nothing more (the owner would
        // answer `dropped` and the tab would join again, holding its
        // channels until the owner notices its silence).
        this.suspended = true;
      },
      () => {
        this.suspended = false;
        this.rejoin();
      },
    );
  }

  /** Resolves on the worker's first answer (the status it sends on `join`). */
  started(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the shared worker did not answer')), WORKER_START_MS);
      this.answered = () => {
        clearTimeout(timer);
        resolve();
      };
      this.failed = () => {
        clearTimeout(timer);
        reject(new Error('the shared worker failed'));
      };
      if (this.early.length > 0) this.answered();
    });
  }

  send(message: TabMessage): void {
    this.post(message);
  }

  listen(onMessage: (message: OwnerMessage) => void, onReset: () => void): void {
    this.onMessage = onMessage;
    this.onReset = onReset;
    const early = this.early;
    this.early = [];
    for (const message of early) this.received(message);
  }

  close(): void {
    if (this.closed) return;
    this.post({ t: 'leave', tab: this.tab });
    this.fail();
  }

  /** The worker failed to start: nothing more is sent. */
  fail(): void {
    this.failed();
    this.closed = true;
    clearInterval(this.alive);
    this.stopVisibility();
    this.lifecycle.stop();
    this.port.close();
  }

  private received(message: OwnerMessage): void {
    if (message.tab !== this.tab) return;
    const verdict = this.inbox.accept(message);
    if (verdict === 'stale') return;
    if (verdict === 'gap') {
      if (!this.suspended) this.rejoin();
      return;
    }
    if (this.onMessage === null) {
      this.early.push(unstamped(message));
      this.answered();
      return;
    }
    if (message.t === 'dropped') {
      if (!this.suspended) this.rejoin();
    } else {
      this.onMessage(unstamped(message));
    }
  }

  private rejoin(): void {
    this.post({ t: 'join', tab: this.tab, config: this.config, j: this.inbox.join() });
    this.onReset?.();
  }

  private post(m: TabMessage): void {
    if (!this.closed && !this.suspended) this.port.postMessage({ v: SHARE_PROTOCOL, key: this.key, m });
  }
}

/** Connects to the package's SharedWorker; rejects when it cannot be used (then the caller falls back). */
export async function connectWorker(key: string, tab: string, config: OwnerConfig): Promise<OwnerLink> {
  const worker = new SharedWorker(new URL('./worker.js', import.meta.url), { type: 'module', name: WORKER_NAME });
  const link = new WorkerLink(worker.port, key, tab, config);
  worker.addEventListener('error', () => link.fail());
  try {
    await link.started();
  } catch (error) {
    link.fail();
    throw error;
  }
  return link;
}
