// Headless Debian Chromium through playwright-core (it cannot download its
// own browser here), and a page helper that counts EventSource constructions.
import { chromium, type Browser, type Page } from 'playwright-core';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
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
 * counted in the page: these suites test the page's one connection; the
 * tabs' sharing is tested by examples/e2e/tabs.test.mjs.
 */
export const PER_TAB = `(() => {
  delete window.SharedWorker;
  Object.defineProperty(Navigator.prototype, 'locks', { value: undefined, configurable: true });
})();`;

export async function newPage(browser: Browser, { share = false }: { share?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (!share) await page.addInitScript(PER_TAB);
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
