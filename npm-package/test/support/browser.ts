// Headless Debian Chromium through playwright-core (it cannot download its
// own browser here), and page helpers: a page of its own context or one more
// tab of a context, each counting its EventSource constructions.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

export interface Profile {
  /** The browser's own (default) context: one profile, its tabs share workers, locks and channels. */
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/**
 * A headless Chromium of its own, attached over CDP without Playwright's
 * defaults (`noDefaults`): its tabs get no focus emulation, so they behave
 * as in a window (only the front tab is visible; `page.bringToFront()`
 * switches) and `Page.setWebLifecycleState` really freezes one (with focus
 * emulation a page stays visible and the freeze does nothing).
 */
export async function launchProfile(): Promise<Profile> {
  const dir = mkdtempSync(path.join(tmpdir(), 'logs-sse-profile-'));
  // A process group of its own, so stopping it stops Chromium's helper processes too.
  const child = spawn(CHROMIUM, [...ARGS, '--headless', '--remote-debugging-port=0', `--user-data-dir=${dir}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
    await exited;
    child.stderr?.destroy();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let output = '';
      let found = false;
      const timer = setTimeout(() => reject(new Error(`Chromium did not say where DevTools listen within 20 s: ${output}`)), 20_000);
      child.once('exit', (code) => reject(new Error(`Chromium exited early (code ${code}): ${output}`)));
      // Read to the end (a full pipe would stall Chromium), keep only what comes before the address.
      child.stderr!.on('data', (chunk: Buffer) => {
        if (found) return;
        output += chunk.toString();
        const match = /DevTools listening on (ws:\/\/\S+)/.exec(output);
        if (match) {
          found = true;
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    const browser = await chromium.connectOverCDP(endpoint, { noDefaults: true });
    return {
      context: browser.contexts()[0]!,
      close: async () => {
        await browser.close().catch(() => undefined);
        await stop('SIGTERM');
      },
    };
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
}

/**
 * Wraps window.EventSource before any page script runs, counting the
 * constructor calls, the open instances and the most ever open at once.
 */
export const COUNT_EVENT_SOURCES = `(() => {
  const Original = window.EventSource;
  const counter = { created: 0, open: 0, maxOpen: 0, urls: [] };
  window.__eventSources = counter;
  class CountingEventSource extends Original {
    constructor(url, init) {
      super(url, init);
      counter.created += 1;
      counter.open += 1;
      counter.maxOpen = Math.max(counter.maxOpen, counter.open);
      counter.urls.push(String(url));
      let closed = false;
      const close = this.close.bind(this);
      this.close = () => { if (!closed) { closed = true; counter.open -= 1; } close(); };
    }
  }
  window.EventSource = CountingEventSource;
})();`;

export interface EventSourceCount {
  created: number;
  open: number;
  /** Most instances open at the same time. */
  maxOpen: number;
  urls: string[];
}

/**
 * Removes what sharing the connection across tabs needs (SharedWorker, Web
 * Locks), so the page keeps its own stream and its EventSource can be
 * counted in the page: most suites test the page's one connection; the
 * tabs' sharing is tested by sharing.test.ts and examples/e2e.
 */
export const PER_TAB = `(() => {
  delete window.SharedWorker;
  Object.defineProperty(Navigator.prototype, 'locks', { value: undefined, configurable: true });
})();`;

/**
 * How a page may share its connection with the other pages of its context:
 * `tab` keeps a stream of its own (PER_TAB), `leader` takes away only the
 * SharedWorker (the tabs elect a leader with Web Locks), `worker` leaves
 * everything (a SharedWorker owns the stream).
 */
export type ShareMode = 'tab' | 'leader' | 'worker';

const SHARE_SCRIPTS: Record<ShareMode, string> = {
  tab: PER_TAB,
  leader: `(() => { delete window.SharedWorker; })();`,
  worker: '',
};

/** A page in a context of its own (another browser profile); `share: true` leaves sharing on. */
export async function newPage(browser: Browser, { share = false }: { share?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext();
  return newTab(context, { share: share ? 'worker' : 'tab' });
}

/**
 * One more tab of `context` (the same browser profile: it shares the
 * context's SharedWorker, Web Locks, BroadcastChannel). Give every tab of a
 * context the same `share`. Counts the page's EventSources (eventSources()).
 */
export async function newTab(context: BrowserContext, { share = 'tab' }: { share?: ShareMode } = {}): Promise<Page> {
  const page = await context.newPage();
  if (SHARE_SCRIPTS[share] !== '') await page.addInitScript(SHARE_SCRIPTS[share]);
  await page.addInitScript(COUNT_EVENT_SOURCES);
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') console.error(`[page ${message.type()}] ${message.text()}`);
  });
  return page;
}

export function eventSources(page: Page): Promise<EventSourceCount> {
  return page.evaluate(() => (window as unknown as { __eventSources: EventSourceCount }).__eventSources);
}
