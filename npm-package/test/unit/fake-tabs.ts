// Several browser tabs in one node process, for the leader-tab election
// (leader-link.ts): an in-memory BroadcastChannel, a Web Locks stand-in (one
// exclusive lock: a FIFO queue, `signal` aborts, `steal`), and one
// `document`/`window` whose visibility and listeners are those of the page
// whose code runs (each page's callbacks, and what they await, run as that
// page). A test file
// mocks the wasm module, then calls useFakeTabs(connectLeader).
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, beforeEach, vi } from 'vitest';
import type { OwnerConfig, OwnerMessage, TabMessage } from '../../src/share/messages.js';
import type { OwnerLink } from '../../src/share/tab.js';

export const GW = 'http://gateway.test/api/logs/stream';
export const CONFIG: OwnerConfig = { gatewayUrl: GW, withCredentials: false, tuning: {} };
const KEY = `${GW}|anonymous`;

type Connect = (key: string, tab: string, config: OwnerConfig) => OwnerLink;
let connect: Connect | null = null;

type Listener = (event: Event) => void;

/** One tab of the browser. */
export class Page {
  visible = true;
  readonly doc = new Map<string, Set<Listener>>();
  readonly win = new Map<string, Set<Listener>>();
  readonly received: OwnerMessage[] = [];
  resets = 0;
  link!: OwnerLink;
  private stream = 0;

  constructor(readonly id: string) {}

  /** Runs `fn` as this page's code (and what it awaits: connect.ts imports the leader's chunk first). */
  run<T>(fn: () => T): T {
    const before = current;
    current = this;
    try {
      return awaiting.run(this, fn);
    } finally {
      current = before;
    }
  }

  connect(): this {
    this.run(() => {
      stubNavigator(locks.facade(this));
      this.link = connect!(KEY, this.id, CONFIG);
      this.link.listen(
        (m) => this.received.push(m),
        () => {
          this.resets += 1;
        },
      );
    });
    return this;
  }

  get mode(): string {
    return this.link.mode;
  }

  send(message: TabMessage): void {
    this.run(() => this.link.send(message));
  }

  /** Opens a new stream of the tab's client on these channels; returns its number. */
  open(...channels: string[]): number {
    this.stream += 1;
    this.send({ t: 'open', tab: this.id, stream: this.stream, url: `${GW}?channels=${channels.join(',')}` });
    return this.stream;
  }

  /** The events of its streams: `hello 2`, `status A 2`, `log A 2`… */
  events(): string[] {
    return this.received.flatMap((m) => {
      if (m.t !== 'event') return [];
      if (m.name !== 'status' && m.name !== 'log') return [`${m.name} ${m.stream}`];
      return [`${m.name} ${String((JSON.parse(m.data) as { channel: string }).channel)} ${m.stream}`];
    });
  }

  fire(target: 'doc' | 'win', name: string, init: Record<string, unknown> = {}): void {
    const event = Object.assign(new Event(name), init);
    this.run(() => {
      for (const listener of [...(this[target].get(name) ?? [])]) listener(event);
    });
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    this.fire('doc', 'visibilitychange');
  }

  close(): void {
    this.run(() => this.link.close());
  }
}

let current: Page | null = null;
/** The page whose code, since resumed after an `await`, runs now (when no page's callback does). */
const awaiting = new AsyncLocalStorage<Page>();
const currentPage = (): Page | null => current ?? awaiting.getStore() ?? null;
export const pages: Page[] = [];
export function page(id: string, visible = true): Page {
  const p = new Page(id);
  p.visible = visible;
  pages.push(p);
  return p;
}

function listenerApi(target: 'doc' | 'win') {
  return {
    addEventListener(name: string, listener: Listener) {
      const page = currentPage();
      if (page === null) throw new Error('a listener added outside any page');
      const map = page[target];
      if (!map.has(name)) map.set(name, new Set());
      map.get(name)!.add(listener);
    },
    removeEventListener(name: string, listener: Listener) {
      for (const p of pages) p[target].get(name)?.delete(listener);
    },
  };
}

interface LockRequest {
  readonly page: Page;
  readonly callback: () => Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
  settled: boolean;
}

/** One exclusive lock (the tests use one name): a FIFO queue, abort by signal, steal. */
export class FakeLocks {
  holder: LockRequest | null = null;
  readonly queue: LockRequest[] = [];
  private readonly dead = new Set<Page>();

  facade(page: Page) {
    return {
      request: (_name: string, options: { signal?: AbortSignal; steal?: boolean }, callback: () => Promise<void>) =>
        this.request(page, options, callback),
    };
  }

  /** Pages waiting, in order. */
  waiting(): string[] {
    return this.queue.map((r) => r.page.id);
  }

  private request(page: Page, options: { signal?: AbortSignal; steal?: boolean }, callback: () => Promise<void>): Promise<void> {
    if (this.dead.has(page)) return new Promise<void>(() => undefined); // a crashed page asks nothing
    return new Promise<void>((resolve, reject) => {
      const request: LockRequest = { page, callback, resolve, reject, settled: false };
      if (options.steal) {
        const stolen = this.holder;
        this.holder = null;
        if (stolen !== null) settle(stolen, new DOMException('the lock was stolen', 'AbortError'));
        this.grant(request);
        return;
      }
      const signal = options.signal;
      if (signal?.aborted) {
        reject(new DOMException('aborted', 'AbortError'));
        return;
      }
      signal?.addEventListener('abort', () => {
        const at = this.queue.indexOf(request);
        if (at < 0) return; // granted already: an abort no longer matters
        this.queue.splice(at, 1);
        settle(request, new DOMException('aborted', 'AbortError'));
      });
      this.queue.push(request);
      this.next();
    });
  }

  private next(): void {
    if (this.holder === null && this.queue.length > 0) this.grant(this.queue.shift()!);
  }

  private grant(request: LockRequest): void {
    this.holder = request;
    // A task, as the browser's lock manager answers through the event loop
    // (as microtasks, grants would always outrun the broadcast messages).
    task(() => {
      if (this.holder !== request) return;
      const held = request.page.run(() => request.callback());
      void held.then(() => {
        if (this.holder === request) {
          this.holder = null;
          this.next();
        }
        settle(request);
      });
    });
  }

  /** The page is gone (closed or crashed): the browser drops its requests and releases its lock. */
  crash(page: Page): void {
    this.dead.add(page);
    for (const request of this.queue.filter((r) => r.page === page)) this.queue.splice(this.queue.indexOf(request), 1);
    if (this.holder?.page === page) {
      this.holder = null;
      this.next();
    }
  }
}

function settle(request: LockRequest, error?: unknown): void {
  if (request.settled) return;
  request.settled = true;
  if (error === undefined) request.resolve();
  else request.reject(error);
}

/** BroadcastChannel in memory: every other open channel of the name gets a clone, as a task, as its page. */
export class FakeBroadcastChannel {
  static readonly open = new Set<FakeBroadcastChannel>();
  static readonly posted: { from: string; data: unknown }[] = [];
  onmessage: ((event: MessageEvent) => void) | null = null;
  private closed = false;
  private dead = false;
  readonly page: Page;

  constructor(readonly name: string) {
    const page = currentPage();
    if (page === null) throw new Error('a channel opened outside any page');
    this.page = page;
    FakeBroadcastChannel.open.add(this);
  }

  postMessage(data: unknown): void {
    if (this.dead) return; // a crashed page's code that still runs reaches nobody
    if (this.closed) throw new DOMException('closed', 'InvalidStateError');
    FakeBroadcastChannel.posted.push({ from: this.page.id, data });
    for (const other of FakeBroadcastChannel.open) {
      if (other === this || other.name !== this.name) continue;
      const copy = structuredClone(data);
      task(() => {
        if (!other.closed) other.page.run(() => other.onmessage?.(new MessageEvent('message', { data: copy })));
      });
    }
  }

  close(): void {
    this.closed = true;
    FakeBroadcastChannel.open.delete(this);
  }

  /** The page is gone: its channels stop hearing. */
  static crash(page: Page): void {
    for (const channel of [...FakeBroadcastChannel.open]) {
      if (channel.page !== page) continue;
      channel.close();
      channel.dead = true;
    }
  }
}

export let locks = new FakeLocks();

function stubNavigator(facade: ReturnType<FakeLocks['facade']>): void {
  vi.stubGlobal('navigator', { locks: facade });
}

/** Lets every message, lock grant and owner start run. */
/** Tasks scheduled and not yet run. */
let pendingTasks = 0;
let generation = 0;

/** Runs `fn` as a task of its own (setImmediate: not faked, unlike the owner's timers). */
function task(fn: () => void): void {
  const of = generation;
  pendingTasks += 1;
  setImmediate(() => {
    if (of !== generation) return; // left over from an earlier test
    pendingTasks -= 1;
    fn();
  });
}

/** Lets every message, lock grant and owner start run (timers due now included), until nothing is left. */
export async function settleAll(): Promise<void> {
  let quiet = 0;
  for (let i = 0; i < 500 && quiet < 3; i += 1) {
    await vi.advanceTimersByTimeAsync(0);
    await new Promise((resolve) => setImmediate(resolve));
    quiet = pendingTasks === 0 ? quiet + 1 : 0;
  }
  if (quiet < 3) throw new Error('the tabs never settled');
}

/** Installs the fakes around each test of the calling file. */
export function useFakeTabs(connectLeader: Connect): void {
  connect = connectLeader;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    pages.length = 0;
    pendingTasks = 0;
    generation += 1;
    locks = new FakeLocks();
    FakeBroadcastChannel.open.clear();
    FakeBroadcastChannel.posted.length = 0;
    const doc = {
      ...listenerApi('doc'),
      get visibilityState() {
        return currentPage()?.visible === false ? 'hidden' : 'visible';
      },
    };
    vi.stubGlobal('document', doc);
    const win = listenerApi('win');
    vi.stubGlobal('addEventListener', win.addEventListener);
    vi.stubGlobal('removeEventListener', win.removeEventListener);
    vi.stubGlobal('BroadcastChannel', FakeBroadcastChannel);
  });
  afterEach(() => {
    for (const p of pages) {
      try {
        p.close();
      } catch {
        // a page the test crashed
      }
    }
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });
}
