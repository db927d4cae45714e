// Drives the framework-free client of the test app (test/fixtures/app, Vite
// build) in one tab: one client per page, named subscriptions, and what
// each one holds and heard, read back in one call. The driver is installed
// before the page's scripts (it survives a reload: a reloaded tab gets it
// again, with nothing in it).
import type { BrowserContext, Page } from 'playwright-core';
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
}

const DRIVER = `(() => {
  const subs = {};
  let client = null;
  window.__tab = {
    async start(options) {
      client = window.harnesses.vite.createLogsClient(options);
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
      };
    },
  };
})();`;

/** One tab of the test app driven by DRIVER. */
export class Tab {
  private constructor(
    readonly name: string,
    readonly page: Page,
    private readonly baseUrl: string,
    private readonly clientOptions: Record<string, unknown>,
  ) {}

  /** Opens a tab of `context` on the Vite build and starts its client. */
  static async open(
    context: BrowserContext,
    name: string,
    share: ShareMode,
    baseUrl: string,
    clientOptions: Record<string, unknown>,
  ): Promise<Tab> {
    const page = await newTab(context, { share });
    await page.addInitScript(DRIVER);
    const tab = new Tab(name, page, baseUrl, clientOptions);
    await tab.load();
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

  private async load(): Promise<void> {
    await this.page.goto(`${this.baseUrl}/vite/`);
    await this.started();
  }

  private async started(): Promise<void> {
    await this.page.waitForFunction(() => (window as any).harnesses?.vite !== undefined && (window as any).__tab !== undefined);
    await this.page.evaluate((o) => (window as any).__tab.start(o), this.clientOptions);
  }
}
