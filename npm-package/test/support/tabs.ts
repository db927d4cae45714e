// Drives the framework-free client of the test app (test/fixtures/app, any
// of its builds) in one tab: one client per page, named subscriptions, and
// what each one holds and heard, read back in one call. The driver is
// installed before the page's scripts (a reloaded tab gets it again, with
// nothing in it), with a record of the SharedWorker scripts the page asked
// for.
import type { BrowserContext, Page } from 'playwright-core';
import type { Bundle } from './app.js';
import { newTab, type ShareMode } from './browser.js';

/** Options of one subscription, as `client.subscribe` takes them (JSON). */
export interface SubOptions {
  maxLogs?: number;
  history?: number;
  persist?: boolean;
  persistKey?: string;
}

export interface SubState {
  channel: string;
  /** `logData.g` of each log in the snapshot, oldest first. */
  g: number[];
  /** The resource channel of each log in the snapshot. */
  channels: string[];
  statuses: { status: string; replayed: number; cursor?: string; at: number }[];
  gaps: unknown[];
  errors: { code: string; message: string }[];
}

export interface TabState {
  status: { state: string; sharing?: string; reason?: string; connectionId?: string };
  visibility: string;
  eventSources: { created: number; open: number };
  subs: Record<string, SubState>;
  /** Script URLs of the SharedWorkers the page constructed. */
  sharedWorkers: string[];
}

/** Where a tab loads the test app from, and how its client connects. */
export interface TabOptions {
  share: ShareMode;
  /** The page's URL. */
  url: string;
  /** Which build's harness the page holds. Default `vite`. */
  bundle?: Bundle;
  /** Options of its `createLogsClient` (JSON). */
  client: Record<string, unknown>;
}

const DRIVER = `(() => {
  const subs = {};
  const sharedWorkers = [];
  let client = null;
  if (typeof window.SharedWorker === 'function') {
    const Original = window.SharedWorker;
    window.SharedWorker = class extends Original {
      constructor(url, options) {
        sharedWorkers.push(String(url));
        super(url, options);
      }
    };
  }
  window.__tab = {
    async start(bundle, options) {
      client = window.harnesses[bundle].createLogsClient(options);
      await client.ready();
    },
    subscribe(id, channel, options) {
      const record = { channel, statuses: [], gaps: [], errors: [], sub: null };
      subs[id] = record;
      record.sub = client.subscribe(channel, options, (u) => {
        if (u.type === 'status') record.statuses.push({ status: u.status, replayed: u.replayed, cursor: u.cursor, at: Date.now() });
        else if (u.type === 'gap') record.gaps.push({ from: u.from, to: u.to, reason: u.reason });
        else if (u.type === 'error') record.errors.push({ code: u.error.code, message: u.error.message });
      });
    },
    unsubscribe(id) {
      subs[id].sub.unsubscribe();
      delete subs[id];
    },
    read() {
      const out = {};
      for (const [id, r] of Object.entries(subs)) {
        const snapshot = r.sub.snapshot();
        out[id] = {
          channel: r.channel,
          g: snapshot.map((e) => e.logData.g),
          channels: snapshot.map((e) => e.channel),
          statuses: r.statuses,
          gaps: r.gaps,
          errors: r.errors,
        };
      }
      const s = client.status;
      const es = window.__eventSources;
      return {
        status: { state: s.state, sharing: s.sharing, reason: s.reason, connectionId: s.connectionId },
        visibility: document.visibilityState,
        eventSources: { created: es.created, open: es.open },
        subs: out,
        sharedWorkers: [...sharedWorkers],
      };
    },
  };
})();`;

/** One tab of the test app driven by DRIVER. */
export class Tab {
  private constructor(
    readonly name: string,
    readonly page: Page,
    private readonly options: TabOptions,
  ) {}

  /** Opens a tab of `context` on the test app and starts its client. */
  static async open(context: BrowserContext, name: string, options: TabOptions): Promise<Tab> {
    const page = await newTab(context, { share: options.share });
    await page.addInitScript(DRIVER);
    const tab = new Tab(name, page, options);
    await tab.page.goto(options.url);
    await tab.started();
    return tab;
  }

  /** Reloads the page (persisted subscriptions are for the caller to subscribe again). */
  async reload(): Promise<void> {
    await this.page.reload();
    await this.started();
  }

  subscribe(id: string, channel: string, options: SubOptions): Promise<void> {
    return this.page.evaluate(([i, c, o]) => (window as any).__tab.subscribe(i, c, o), [id, channel, options] as const);
  }

  unsubscribe(id: string): Promise<void> {
    return this.page.evaluate((i) => (window as any).__tab.unsubscribe(i), id);
  }

  read(): Promise<TabState> {
    return this.page.evaluate(() => (window as any).__tab.read());
  }

  /** Freezes or resumes the page (the Page Lifecycle `freeze` / `resume`), through CDP. */
  async setLifecycle(state: 'frozen' | 'active'): Promise<void> {
    const cdp = await this.page.context().newCDPSession(this.page);
    try {
      await cdp.send('Page.setWebLifecycleState', { state });
    } finally {
      await cdp.detach();
    }
  }

  /** Makes this the visible tab (the one in front is hidden). */
  focus(): Promise<void> {
    return this.page.bringToFront();
  }

  close(): Promise<void> {
    return this.page.close();
  }

  private async started(): Promise<void> {
    const bundle = this.options.bundle ?? 'vite';
    await this.page.waitForFunction((b) => (window as any).harnesses?.[b] !== undefined && (window as any).__tab !== undefined, bundle);
    await this.page.evaluate(([b, o]) => (window as any).__tab.start(b, o), [bundle, this.options.client] as const);
  }
}
