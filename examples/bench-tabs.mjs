#!/usr/bin/env node
// The tabs benchmark: what sharing one connection across a browser's tabs
// costs and how fast a handover is. One browser context (one user), N tabs
// of the built demo on its three log pages (round-robin), while logs are
// published at 500/s to the channels they show. Per sharing mode it prints
//
//   RESULT tabs mode=… tabs=… gateway_streams=… tab_heap_kib_median=… tab_heap_kib_max=… worker_heap_kib=… handover_ms_median=… handover_ms_max=…
//
// - gateway_streams: streams open on the gateway (`/admin/logs/stats` connections);
// - tab_heap_kib: each tab's used JS heap after a garbage collection (CDP
//   `Runtime.getHeapUsage`), median and max over the tabs, after 3 s of the
//   load (about 500 logs per tab), before any handover;
// - worker_heap_kib: the SharedWorker's, in `worker` mode;
// - handover_ms (`leader` mode): from closing the leader tab until a log
//   published after that is shown by the front tab, over BENCH_HANDOVERS
//   handovers (a new tab replaces each closed one). The front tab, because
//   the browser throttles a background tab's frames: its view shows the
//   same log up to a second later, which is rendering, not the handover.
// - BENCH_TRACE=1 also prints the BroadcastChannel messages of each
//   handover (ms after the close), logs left out.
//
// Every tab must show each of its logs once and in order; a run where one
// does not is reported and makes the exit code 1. Timing is printed, never
// asserted.
//
//   node bench-tabs.mjs                       (from examples/; after examples/build.sh)
//   BENCH_TABS=6 BENCH_HANDOVERS=10 node bench-tabs.mjs
//   BENCH_MODES=worker,leader,tab node bench-tabs.mjs   (the default)
import { Gateway, launchBrowser, newPage, pane, sleep, startPublishing, stats } from './e2e/harness.mjs';

const TABS = Number(process.env.BENCH_TABS ?? 3);
const HANDOVERS = Number(process.env.BENCH_HANDOVERS ?? 5);
const RATE = 500;
const MODES = (process.env.BENCH_MODES ?? 'worker,leader,tab').split(',');
const PAGES = [
  { path: '/indata/logs', pane: 'indata', service: 'etl', resource: 'wf-daily-sales' },
  { path: '/faas/logs', pane: 'faas', service: 'faas', resource: 'flow-enrich-orders' },
  { path: '/functions/logs', pane: 'functions', service: 'function', resource: 'fn-geocode' },
];
const WORKSPACE = 'ws-demo';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)];
};


async function heapKib(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  await cdp.detach();
  return usedSize / 1024;
}

async function workerHeapKib(browser) {
  const cdp = await browser.newBrowserCDPSession();
  const { targetInfos } = await cdp.send('Target.getTargets');
  const worker = targetInfos.find((t) => t.type === 'shared_worker');
  if (worker === undefined) return NaN;
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: worker.targetId, flatten: false });
  // A non-flattened session answers through Target.receivedMessageFromTarget.
  const answers = new Map();
  cdp.on('Target.receivedMessageFromTarget', (m) => {
    if (m.sessionId !== sessionId) return;
    const message = JSON.parse(m.message);
    answers.get(message.id)?.(message);
  });
  let id = 0;
  const ask = (method) => new Promise((resolve) => {
    id += 1;
    answers.set(id, resolve);
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params: {} }) }).catch(() => resolve(null));
  });
  await Promise.race([ask('HeapProfiler.collectGarbage'), sleep(2000)]);
  const answer = ask('Runtime.getHeapUsage');
  const result = await Promise.race([answer, sleep(2000).then(() => null)]);
  await cdp.detach();
  return result?.result?.usedSize !== undefined ? result.result.usedSize / 1024 : NaN;
}

async function openTab(context, index, mode, gateway) {
  const target = PAGES[index % PAGES.length];
  const page = await newPage(context, { share: mode });
  await page.goto(`${gateway.url}${target.path}`);
  return { page, target };
}

async function sharingOf(page) {
  return page.locator('[data-testid="connection-badge"]').first().evaluate((el) => el.dataset.sharing).catch(() => '');
}

/** Each tab's pane: once, in order, and up to what was published for its service. */
async function check(tabs, published) {
  const problems = [];
  for (const { page, target } of tabs) {
    const p = await pane(page, target.pane);
    const seqs = p?.seqs ?? [];
    const inOrder = seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1);
    if (!inOrder) problems.push(`${target.pane}: not once and in order`);
    if (seqs.at(-1) !== published[target.service]) problems.push(`${target.pane}: ends at ${seqs.at(-1)}, published ${published[target.service]}`);
  }
  return problems;
}

const TRACE = `(() => { const log = []; window.__bc = log; const P = BroadcastChannel.prototype.postMessage;
BroadcastChannel.prototype.postMessage = function (w) { log.push([performance.timeOrigin + performance.now(), 'out', w.k, w.m?.t, w.m?.name]); return P.call(this, w); };
const D = Object.getOwnPropertyDescriptor(BroadcastChannel.prototype, 'onmessage');
Object.defineProperty(BroadcastChannel.prototype, 'onmessage', { set(f) { D.set.call(this, (e) => { log.push([performance.timeOrigin + performance.now(), 'in', e.data.k, e.data.m?.t, e.data.m?.name]); f(e); }); }, get() { return D.get.call(this); } });
})();`;

async function runMode(browser, mode) {
  const gateway = await new Gateway(`bench-tabs-${mode}`, { args: ['--history-size', '20000'] }).start();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (process.env.BENCH_TRACE) await context.addInitScript(TRACE);
  const tabs = [];
  let opened = 0;
  try {
    for (; opened < TABS; opened++) tabs.push(await openTab(context, opened, mode, gateway));
    await sleep(1500);
    const load = startPublishing(gateway, WORKSPACE, RATE, PAGES);
    await sleep(3000);
    // Heaps after the same load in every mode, before any handover.
    const heaps = [];
    for (const { page } of tabs) heaps.push(await heapKib(page));
    const workerHeap = mode === 'worker' ? await workerHeapKib(browser) : NaN;
    const handovers = [];
    if (mode === 'leader') {
      for (let k = 0; k < HANDOVERS; k++) {
        let leader = -1;
        for (let i = 0; i < tabs.length; i++) if ((await sharingOf(tabs[i].page)) === 'leader') leader = i;
        if (leader < 0) break;
        const [{ page }] = tabs.splice(leader, 1);
        const watcher = tabs[0];
        // A background tab renders its view late (the browser throttles its
        // frames): watch from the front tab, so the figure is the handover's.
        await watcher.page.bringToFront();
        const before = load.published[watcher.target.service];
        const t0 = performance.now();
        await page.close();
        for (;;) {
          const p = await pane(watcher.page, watcher.target.pane);
          if ((p?.seqs.at(-1) ?? 0) > before) break;
          if (performance.now() - t0 > 30_000) throw new Error('no log after the handover within 30 s');
          await sleep(5);
        }
        handovers.push(performance.now() - t0);
        if (process.env.BENCH_TRACE) {
          const wall = Date.now() - (performance.now() - t0);
          for (const tab of tabs) {
            const log = await tab.page.evaluate(() => window.__bc);
            console.log(`--- ${tab.target.pane}`);
            for (const [t, d, k, mt, name] of log) if (t >= wall - 20 && t < wall + 3000 && name !== 'log') console.log((t - wall).toFixed(0), d, k, mt ?? '', name ?? '');
          }
        }
        tabs.push(await openTab(context, opened++, mode, gateway));
        await sleep(1000);
      }
    }
    const s = await stats(gateway);
    const published = await load.stop();
    await sleep(2000);
    const problems = await check(tabs, published);
    const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
    console.log(
      `RESULT tabs mode=${mode} tabs=${tabs.length} gateway_streams=${s.connections} tab_heap_kib_median=${f(median(heaps))} ` +
        `tab_heap_kib_max=${f(Math.max(...heaps))} worker_heap_kib=${f(workerHeap)} ` +
        `handover_ms_median=${f(median(handovers))} handover_ms_max=${f(handovers.length ? Math.max(...handovers) : NaN)} ` +
        `handovers=${handovers.length} published=${Object.values(published).reduce((a, b) => a + b, 0)}`,
    );
    for (const p of problems) console.log(`PROBLEM mode=${mode} ${p}`);
    return problems.length === 0;
  } finally {
    await context.close();
    await gateway.close();
  }
}

const browser = await launchBrowser();
let ok = true;
try {
  for (const mode of MODES) ok = (await runMode(browser, mode)) && ok;
} finally {
  await browser.close();
}
process.exit(ok ? 0 : 1);
