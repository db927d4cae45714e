// The multi-tab suite (10.), one file per mode (tabs.test.mjs: worker,
// tabs-leader.test.mjs, tabs-tab.test.mjs: each its own gateway, browser and
// time budget): the
// tabs of one browser profile (pages of one Playwright context) share one
// stream to the gateway. The ways the package can share it (harness
// `newPage(context, { share })`):
//   worker  a SharedWorker owns the stream (Chromium as it is);
//   leader  no SharedWorker (removed by an init script): the tabs elect a
//           leader with Web Locks, which relays over BroadcastChannel;
//   tab     neither: every tab has a stream of its own, as before sharing
//           (the control: the figures the shared modes must beat).
// For each mode:
//   - three tabs on the three micro frontends' pages while logs are published
//     at 500/s: the gateway sees one stream (per tab: three); each tab shows
//     exactly its own channel's logs (not those of a fourth channel published
//     meanwhile), each once and in order, up to what was published; each tab
//     says how it reaches the stream (`data-sharing` on its badge);
//   - the leader tab (worker, tab: the oldest) is closed a few times, a new
//     tab opened in its place each time; then the leader (worker, tab: a
//     tab) is frozen mid-stream (CDP; headless Chromium does not freeze its
//     always-visible pages, so the tab hears `freeze` and its scripts stop:
//     see Tab.freeze): the others keep up while it is frozen, lose nothing
//     and repeat nothing; once active again it catches up the same way; then
//     a tab is duplicated (window.open: a copy of its sessionStorage, which
//     must not make it the same tab). The handover time (closed or frozen →
//     the first log published after that shown in a remaining tab) and the
//     JS heap of each tab (and of the SharedWorker) are printed as figures,
//     not asserted;
//   - six tabs over HTTP/1.1 (the gateway serves the app itself): a plain
//     fetch('/health') from every tab completes within 5 s; per tab, six
//     streams hold the browser's six connections to the origin, the 7th
//     request waits until a tab closes (so this test can fail);
//   - a gateway requiring JWTs: three tabs get 2-second tokens from a token
//     endpoint (the demo's `?token-url=`) while logs are published: they are
//     refreshed again and again, nothing is lost or repeated, never more
//     streams than the mode holds; with the token in the gateway's cookie
//     instead (`?credentials=include`, `withCredentials`): logs arrive, the
//     mode's number of streams.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  Gateway, TokenServer, badge, eventually, fmt, launchBrowser, mintJwt, newPage, pane, shareInContext, sleep, startPublishing, stats,
  summary, uniqueWorkspace, waitLive,
} from './harness.mjs';

/** Leaders closed (and replaced) per shared mode; per tab, closing one changes nothing for the others: once. */
const HANDOVERS = Number(process.env.E2E_HANDOVERS ?? 3);
const VIEWPORT = { width: 1280, height: 720 };

let gateway;
let secured;
let tokens;
let browser;

/** The demo pages' default resources, with the page and pane showing each; `decoy` is published to but shown nowhere. */
const TARGETS = [
  { tag: 'etl', service: 'etl', resource: 'wf-daily-sales', route: '/indata/logs', pane: 'indata' },
  { tag: 'faas', service: 'faas', resource: 'flow-enrich-orders', route: '/faas/logs', pane: 'faas' },
  { tag: 'function', service: 'function', resource: 'fn-geocode', route: '/functions/logs', pane: 'functions' },
  { tag: 'decoy', service: 'etl', resource: 'wf-customer-sync' },
];
const SHOWN = TARGETS.filter((t) => t.pane !== undefined);

const now = () => performance.timeOrigin + performance.now();


/** One browser tab showing one target's page. */
let tabsOpened = 0;

class Tab {
  constructor(page, target, ws, fromStart, how = 'opened') {
    this.page = page;
    this.target = target;
    /** For messages: `etl tab 4 (duplicated from 1)`. */
    this.name = `${target.tag} tab ${++tabsOpened}${how === 'opened' ? '' : ` (${how})`}`;
    this.channel = `logs:${target.service}:${ws}:${target.resource}`;
    /** Opened before the first log: it must hold every log from seq 1. */
    this.fromStart = fromStart;
  }

  /** A new tab of `context` on `target`'s page of `gw` in workspace `ws` (`query`: more of the address), once LIVE. */
  static async open(context, mode, gw, target, ws, { query = '', fromStart = false } = {}) {
    const page = await newPage(context, { share: mode });
    await page.goto(`${gw.url}${target.route}?ws=${ws}${query}`);
    const tab = new Tab(page, target, ws, fromStart);
    await waitLive(page, target.pane);
    return tab;
  }

  /**
   * The tab duplicated the way a browser does (window.open of its address:
   * the new tab starts with a copy of its sessionStorage, persisted logs and
   * whatever the package keeps there), once LIVE. The context must have its
   * share mode for every page (shareInContext).
   */
  async duplicate(ws) {
    const [page] = await Promise.all([this.page.context().waitForEvent('page'), this.page.evaluate(() => { window.open(location.href); })]);
    const tab = new Tab(page, this.target, ws, this.fromStart, `duplicated from ${this.name.split(' (')[0]}`);
    await waitLive(page, this.target.pane);
    return tab;
  }

  badge() {
    return badge(this.page, this.target.pane);
  }

  /**
   * Waits until the tab holds its target's logs up to `upTo` (default: what
   * was published when called), and checks on every read that they are
   * exactly its own channel's, each once and in order (from seq 1 when it
   * was opened before publishing).
   */
  async check(publisher, what, { upTo = publisher.published[this.target.tag], exact = false, timeoutMs = 15_000 } = {}) {
    const { tag, pane: id } = this.target;
    // A deadline in Node too: a tab whose scripts stopped does not answer at all.
    const read = () => Promise.race([pane(this.page, id), sleep(5_000).then(() => null)]);
    const state = await eventually(
      read,
      (p) => {
        if (p === null) return false;
        assert.ok(p.tags.every((t) => t === tag), `${what}: only ${tag} logs, not ${p.tags}`);
        for (let i = 1; i < p.seqs.length; i += 1) {
          if (p.seqs[i] !== p.seqs[i - 1] + 1) {
            assert.fail(`${what}: ${tag} logs not once and in order at ${i}: … ${p.seqs.slice(Math.max(0, i - 3), i + 3).join(', ')} …`);
          }
        }
        if (this.fromStart && p.seqs.length > 0) assert.equal(p.seqs[0], 1, `${what}: ${tag} from its first log`);
        return p.seqs.length > 0 && p.seqs.at(-1) >= upTo;
      },
      `${what}: ${tag} up to ${upTo}`,
      timeoutMs,
    );
    if (exact) assert.equal(state.seqs.at(-1), upTo, `${what}: ${tag} ends with the last published`);
    assert.equal(new Set(state.cursors).size, state.cursors.length, `${what}: no cursor twice`);
    assert.ok(state.channels.every((c) => c === this.channel), `${what}: its own channel only: ${state.channels}`);
    return state;
  }

  /**
   * Freezes the tab mid-stream; resolves with the wall clock of the freeze.
   * CDP `Page.setWebLifecycleState` frozen first; headless Chromium leaves a
   * visible page running with it (no `freeze` event, timers keep firing),
   * and headless pages are always visible, so then the page gets what a
   * freeze does to it: the `freeze` event, then no script runs (CDP
   * `Debugger.pause`) until `thaw()`, which sends `resume`.
   */
  async freeze() {
    await this.page.evaluate(() => {
      window.__lifecycle = [];
      for (const type of ['freeze', 'resume']) document.addEventListener(type, () => window.__lifecycle.push(type));
      window.__ticks = [];
      setInterval(() => window.__ticks.push(performance.timeOrigin + performance.now()), 50);
    });
    this.cdp = await this.page.context().newCDPSession(this.page);
    let at = now();
    await this.cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
    const running = await Promise.race([this.page.evaluate(() => window.__lifecycle.length), sleep(1_000).then(() => null)]);
    this.how = running === null ? 'frozen' : 'paused';
    if (this.how === 'paused') {
      await this.cdp.send('Page.setWebLifecycleState', { state: 'active' });
      await this.cdp.send('Debugger.enable');
      this.paused = new Promise((resolve) => this.cdp.once('Debugger.paused', resolve));
      at = now();
      await this.page.evaluate(() => document.dispatchEvent(new Event('freeze')));
      await this.cdp.send('Debugger.pause');
      // Pauses at the next script to run: the tab's ticker runs every 50 ms.
      const paused = await Promise.race([this.paused.then(() => true), sleep(2_000).then(() => false)]);
      assert.ok(paused, 'the frozen tab\'s scripts stopped (Debugger.paused)');
    }
    this.frozenAt = at;
    return at;
  }

  /** Ends `freeze()`; checks no script of the tab ran meanwhile; resolves with how it was frozen. */
  async thaw() {
    const thawedAt = now();
    if (this.how === 'paused') {
      await this.cdp.send('Debugger.resume');
      await this.cdp.send('Debugger.disable');
      await this.page.evaluate(() => document.dispatchEvent(new Event('resume')));
    } else {
      await this.cdp.send('Page.setWebLifecycleState', { state: 'active' });
    }
    await this.cdp.detach();
    const { lifecycle, ticks } = await this.page.evaluate(() => ({ lifecycle: window.__lifecycle, ticks: window.__ticks }));
    assert.deepEqual(lifecycle, ['freeze', 'resume'], 'the tab heard freeze, then resume');
    const ran = ticks.filter((t) => t > this.frozenAt + 200 && t < thawedAt - 200);
    assert.equal(ran.length, 0, `no script of the frozen tab ran while it was frozen (${ran.length} timer ticks)`);
    return `${this.how} for ${((thawedAt - this.frozenAt) / 1000).toFixed(1)} s`;
  }

  /** When (wall clock) the tab shows a log published at or after `since`; null after `timeoutMs`. */
  shownAfter(since, timeoutMs = 15_000) {
    // The deadline also in Node: a tab whose scripts stopped does not answer at all.
    const late = sleep(timeoutMs + 2_000).then(() => null);
    return Promise.race([late, this.page.evaluate(({ id, since, timeoutMs }) => new Promise((resolve) => {
      const deadline = performance.now() + timeoutMs;
      const check = () => {
        const last = window.__datashopDemo?.panes[id]?.entries().at(-1);
        if (last !== undefined && last.logData.publishedAt >= since) resolve(performance.timeOrigin + performance.now());
        else if (performance.now() > deadline) resolve(null);
        else setTimeout(check, 2);
      };
      check();
    }), { id: this.target.pane, since, timeoutMs })]);
  }

  /** The tab's JS heap in use (CDP Runtime.getHeapUsage), bytes. */
  async heapUsed() {
    const cdp = await this.page.context().newCDPSession(this.page);
    try {
      return (await cdp.send('Runtime.getHeapUsage')).usedSize;
    } finally {
      await cdp.detach();
    }
  }
}

/**
 * The JS heap in use (bytes) of each SharedWorker the browser runs for
 * `origin`: through the browser's CDP session, attached to the worker's
 * target (a worker is no page of Playwright's).
 */
async function workerHeaps(origin) {
  const cdp = await browser.newBrowserCDPSession();
  try {
    const { targetInfos } = await cdp.send('Target.getTargets');
    const heaps = [];
    for (const target of targetInfos.filter((t) => t.type === 'shared_worker' && t.url.startsWith(origin))) {
      const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: target.targetId, flatten: false });
      const answer = new Promise((resolve) => {
        cdp.on('Target.receivedMessageFromTarget', (e) => {
          const message = JSON.parse(e.message);
          if (e.sessionId === sessionId && message.id === 1) resolve(message.result?.usedSize ?? NaN);
        });
      });
      await cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: 1, method: 'Runtime.getHeapUsage' }) });
      heaps.push(await answer);
      await cdp.send('Target.detachFromTarget', { sessionId });
    }
    return heaps;
  } finally {
    await cdp.detach();
  }
}

/** What each tab's badge must say of how it reaches the stream. */
async function checkSharing(mode, tabs, what) {
  const read = () => Promise.all(tabs.map((t) => t.badge().then((b) => b.sharing)));
  const ok = (sharing) => {
    if (mode === 'leader') return sharing.filter((s) => s === 'leader').length === 1 && sharing.filter((s) => s === 'follower').length === tabs.length - 1;
    return sharing.every((s) => s === mode);
  };
  return eventually(read, ok, `${what}: data-sharing as ${mode} mode wants`, 10_000);
}

/** The tab owning the stream: the leader; in the other modes the oldest. */
async function owner(mode, tabs) {
  if (mode !== 'leader') return tabs[0];
  const sharing = await Promise.all(tabs.map((t) => t.badge().then((b) => b.sharing)));
  assert.ok(sharing.includes('leader'), `a tab leads: ${sharing}`);
  return tabs[sharing.indexOf('leader')];
}

/** Waits until the gateway holds `count` open streams, and returns its stats. */
function streams(gw, count, what) {
  return eventually(() => stats(gw), (s) => s.connections === count, `${what}: ${count} open stream(s) on the gateway`, 10_000);
}

/** Samples the gateway's open streams every 50 ms until stopped; resolves with the most seen. */
function watchStreams(gw) {
  let most = 0;
  let stopping = false;
  const run = (async () => {
    while (!stopping) {
      most = Math.max(most, (await stats(gw)).connections);
      await sleep(50);
    }
  })();
  return { stop: async () => { stopping = true; await run; return most; } };
}

async function idle(gw) {
  await eventually(() => stats(gw), (s) => s.connections === 0, 'no stream left from the previous test', 10_000);
}

/** Registers the suite's tests for one sharing mode (`worker`, `leader`, `tab`) in the calling test file. */
export function tabsSuite(mode) {
  const shared = mode !== 'tab';
  /** Handover times (ms) and heaps (bytes), printed at the end. */
  const figures = { closed: [], closedAll: [], frozen: [], heap: [], worker: [] };

  before(async () => {
    // History deep enough for a tab frozen for seconds at 500 logs/s to resume from its cursor.
    gateway = await new Gateway(`tabs-${mode}`, { args: ['--history-size', '20000'] }).start();
    secured = await new Gateway(`tabs-${mode}-jwt`, { jwt: true }).start();
    tokens = await new TokenServer().start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await Promise.all([gateway?.close(), secured?.close(), tokens?.close()]);
    const f = figures;
    if (f.closed.length > 0) {
      const first = summary(f.closed);
      const all = summary(f.closedAll);
      const frozen = summary(f.frozen);
      const heap = summary(f.heap);
      const mib = (bytes) => (Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : 'n/a');
      const workers = f.worker.length === 0 ? 'no SharedWorker' : `SharedWorker ${f.worker.map(mib).join(', ')}`;
      console.log(
        `${mode}: tab closed -> first log published after it shown in a remaining tab, over ${first.n}: median ${fmt(first.median)}, max ${fmt(first.max)}; ` +
          `in every remaining tab: median ${fmt(all.median)}, max ${fmt(all.max)}; tab frozen -> shown in another: ${fmt(frozen.median)}; ` +
          `JS heap in use per tab: median ${mib(heap.median)}, max ${mib(heap.max)}; ${workers}`,
      );
    }
  });

  const handovers = shared ? HANDOVERS : 1;

  test(`${mode}: three tabs at 500 logs/s, the leader closed and replaced ${handovers} time(s), one frozen, a tab duplicated: ${shared ? 'one stream' : 'a stream per tab'}, every log once and in order`, async () => {
    await idle(gateway);
    const ws = uniqueWorkspace(`tabs-${mode}`);
    const context = await browser.newContext({ viewport: VIEWPORT });
    await shareInContext(context, mode);
    let publisher = null;
    try {
      const tabs = [];
      for (const t of SHOWN) tabs.push(await Tab.open(context, mode, gateway, t, ws, { fromStart: true }));
      await checkSharing(mode, tabs, 'three tabs');
      await streams(gateway, shared ? 1 : 3, 'three tabs');

      publisher = startPublishing(gateway, ws, 500, TARGETS);
      for (const tab of tabs) await tab.check(publisher, `three tabs, ${tab.name}`);
      assert.equal((await stats(gateway)).connections, shared ? 1 : 3, 'three tabs streaming');

      for (let i = 0; i < handovers; i += 1) {
        const leaving = await owner(mode, tabs);
        tabs.splice(tabs.indexOf(leaving), 1);
        const closedAt = now();
        await leaving.page.close();
        const shown = await Promise.all(tabs.map((t) => t.shownAfter(closedAt)));
        assert.ok(shown.every((at) => at !== null), `handover ${i + 1}: every remaining tab shows logs published after the close (${shown})`);
        figures.closed.push(Math.min(...shown) - closedAt);
        figures.closedAll.push(Math.max(...shown) - closedAt);
        for (const tab of tabs) await tab.check(publisher, `handover ${i + 1}, ${tab.name}`);
        // A tab in its place (a newcomer: it backfills, then streams).
        tabs.push(await Tab.open(context, mode, gateway, leaving.target, ws));
        await checkSharing(mode, tabs, `handover ${i + 1}, replaced`);
        for (const tab of tabs) await tab.check(publisher, `handover ${i + 1} replaced, ${tab.name}`);
        await streams(gateway, shared ? 1 : 3, `handover ${i + 1}`);
      }

      // Freeze the owner (a shared worker is not frozen with one of its tabs: freeze the second tab).
      const frozen = mode === 'leader' ? await owner(mode, tabs) : tabs[1];
      const others = tabs.filter((t) => t !== frozen);
      const frozenAt = await frozen.freeze();
      const shown = await Promise.all(others.map((t) => t.shownAfter(frozenAt)));
      assert.ok(shown.every((at) => at !== null), `frozen: the other tabs show logs published after the freeze (${shown})`);
      figures.frozen.push(Math.min(...shown) - frozenAt);
      for (const round of [1, 2]) {
        await sleep(1_000);
        for (const tab of others) await tab.check(publisher, `frozen ${round} s, ${tab.name}`);
      }
      if (mode === 'leader') {
        const sharing = await Promise.all(others.map((t) => t.badge().then((b) => b.sharing)));
        assert.ok(sharing.includes('leader'), `a tab took the lead from the frozen one: ${sharing}`);
      }
      const how = await frozen.thaw();
      console.log(`${mode}: ${frozen.name} was ${how}`);
      for (const tab of tabs) await tab.check(publisher, `frozen tab active again, ${tab.name}`);

      // A duplicated tab (its sessionStorage copied): a tab of its own, holding its logs once.
      tabs.push(await tabs[0].duplicate(ws));
      await checkSharing(mode, tabs, 'a tab duplicated');
      for (const tab of tabs) await tab.check(publisher, `a tab duplicated, ${tab.name}`);
      await streams(gateway, shared ? 1 : tabs.length, 'a tab duplicated');

      const published = await publisher.stop();
      for (const tab of tabs) await tab.check(publisher, `the end, ${tab.name}`, { upTo: published[tab.target.tag], exact: true });
      await checkSharing(mode, tabs, 'the end');
      await streams(gateway, shared ? 1 : tabs.length, 'the end');
      for (const tab of tabs) figures.heap.push(await tab.heapUsed());
      figures.worker.push(...(await workerHeaps(gateway.url)));
      if (mode === 'worker') assert.equal(figures.worker.length, 1, 'one SharedWorker for the three tabs');
      const s = await stats(gateway);
      console.log(
        `${mode}: published ${JSON.stringify(published)}; every tab holds its own once and in order; ` +
          `gateway: ${s.connections} stream(s) open, subscriptions ${JSON.stringify(Object.fromEntries(Object.entries(s.subscriptions).filter(([c]) => c.includes(ws))))}`,
      );
    } finally {
      await publisher?.stop();
      await context.close();
    }
  });

  test(`${mode}: six tabs over HTTP/1.1, a fetch to the same origin ${shared ? 'completes' : 'waits for a free connection'}`, async () => {
    await idle(gateway);
    const ws = uniqueWorkspace(`six-${mode}`);
    const context = await browser.newContext({ viewport: VIEWPORT });
    try {
      const tabs = [];
      for (let i = 0; i < 6; i += 1) {
        const t = SHOWN[i % SHOWN.length];
        tabs.push(await Tab.open(context, mode, gateway, t, ws));
      }
      await streams(gateway, shared ? 1 : 6, 'six tabs');
      // In the page: the fetch's outcome within 5 s, and the promise itself for later.
      const fetchHealth = (page) => page.evaluate(() => {
        window.__health = fetch('/health', { cache: 'no-store' }).then((r) => r.status, (e) => `failed: ${e.message}`);
        return Promise.race([window.__health, new Promise((resolve) => setTimeout(() => resolve('pending after 5 s'), 5_000))]);
      });
      if (shared) {
        const answers = await Promise.all(tabs.map((t) => fetchHealth(t.page)));
        console.log(`${mode}: six tabs, /health from each: ${answers.join(', ')}`);
        assert.deepEqual(answers, Array(6).fill(200), 'every tab reaches the origin at once');
      } else {
        const answer = await fetchHealth(tabs[0].page);
        console.log(`${mode}: six tabs, six streams, /health: ${answer}`);
        assert.equal(answer, 'pending after 5 s', 'six streams hold the six connections to the origin: the 7th request waits');
        await tabs.at(-1).page.close();
        const later = await tabs[0].page.evaluate(() => Promise.race([window.__health, new Promise((resolve) => setTimeout(() => resolve('still pending'), 5_000))]));
        assert.equal(later, 200, 'once a tab (and its stream) closed, the request completes');
      }
    } finally {
      await context.close();
    }
  });

  test(`${mode}: three tabs with 2-second tokens refreshed while logs stream, then a cookie: nothing lost or repeated, ${shared ? 'one stream' : 'a stream per tab'}`, async () => {
    await idle(secured);
    const ws = uniqueWorkspace(`jwt-${mode}`);
    const opened = (await stats(secured)).streamsOpened;
    const issued = tokens.issued;
    const context = await browser.newContext({ viewport: VIEWPORT });
    let publisher = null;
    let watch = null;
    try {
      const tokenUrl = encodeURIComponent(tokens.tokenUrl(ws, 2));
      const tabs = [];
      for (const t of SHOWN) tabs.push(await Tab.open(context, mode, secured, t, ws, { query: `&token-url=${tokenUrl}`, fromStart: true }));
      watch = watchStreams(secured);
      publisher = startPublishing(secured, ws, 300, TARGETS);
      // Long enough for the tokens to expire and be replaced at least twice.
      for (const round of [1, 2, 3, 4, 5]) {
        await sleep(1_500);
        for (const tab of tabs) await tab.check(publisher, `tokens, ${round * 1.5} s, ${tab.name}`);
      }
      const published = await publisher.stop();
      for (const tab of tabs) await tab.check(publisher, `tokens, the end, ${tab.name}`, { upTo: published[tab.target.tag], exact: true });
      const most = await watch.stop();
      const reopened = (await stats(secured)).streamsOpened - opened;
      console.log(`${mode}: tokens: ${tokens.issued - issued} issued, ${reopened} streams opened over the run, at most ${most} open at once`);
      assert.ok(most <= (shared ? 1 : 3), `never more than ${shared ? 'one stream' : 'a stream per tab'} (${most})`);
      // A 2-second token ends its stream 2-3 s after it was minted (`exp` is in whole seconds and the gateway
      // keeps it through that second), the run lasts 7.5 s and more: at least two refreshes per stream.
      const slots = shared ? 1 : 3;
      assert.ok(reopened >= 3 * slots, `the tokens expired and were replaced (streams opened: ${reopened})`);
      assert.ok(tokens.issued - issued >= 3 * slots, `fresh tokens were asked for (${tokens.issued - issued})`);
    } finally {
      await publisher?.stop();
      await watch?.stop();
      await context.close();
    }

    // The cookie: the gateway reads the JWT from `logs_sse_token`; the page sends it (withCredentials) and no token.
    await idle(secured);
    const cookieWs = uniqueWorkspace(`cookie-${mode}`);
    const cookies = await browser.newContext({ viewport: VIEWPORT });
    try {
      await cookies.addCookies([{
        name: 'logs_sse_token', value: mintJwt({ sub: 'e2e-cookie', exp: Math.floor(Date.now() / 1000) + 120, workspaces: [cookieWs] }),
        url: secured.url, httpOnly: true, sameSite: 'Strict',
      }]);
      const tabs = [];
      for (const t of SHOWN.slice(0, 2)) tabs.push(await Tab.open(cookies, mode, secured, t, cookieWs, { query: '&credentials=include', fromStart: true }));
      await checkSharing(mode, tabs, 'cookie');
      const cookiePublisher = startPublishing(secured, cookieWs, 200, TARGETS);
      await sleep(1_000);
      const published = await cookiePublisher.stop();
      for (const tab of tabs) await tab.check(cookiePublisher, `cookie, ${tab.name}`, { upTo: published[tab.target.tag], exact: true });
      await streams(secured, shared ? 1 : 2, 'cookie');
    } finally {
      await cookies.close();
    }
  });
}
