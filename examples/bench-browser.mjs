#!/usr/bin/env node
// The browser benchmark: what 1,000 logs/s do to a page's frames. One page
// of the built demo app with three `useLogsSSE` hooks (the side-by-side view,
// `/dashboard`: the ETL, FAAS and function pages, each with its own
// provider, on the page's one stream), in headless Chromium, while
// `loadgen` publishes 1,000 logs/s for 10 s spread round-robin over their
// three channels. For each run it prints
// 
//   RESULT browser longtasks_over_50=… longest_ms=… frame_p50_ms=… frame_p99_ms=… frame_max_ms=… received=… published=… …
// 
// and, at the end, the median of the runs with the lowest and highest.
// 
//   node bench-browser.mjs                      (from examples/; after examples/build.sh)
//   BENCH_RUNS=5 node bench-browser.mjs         runs (default 3)
//   BENCH_RATE=2000 BENCH_SECONDS=5 node bench-browser.mjs
//   BENCH_PIN=0 node bench-browser.mjs          no taskset pinning
//   BENCH_PIN=split node bench-browser.mjs      Chromium confined to core 1 as well
//   BENCH_PROFILE=1 node bench-browser.mjs      also a CPU profile of the page during each run (slows it a little):
//                                               test-artifacts/e2e/bench-browser-N.cpuprofile and its top self times
//   BENCH_PHASES=1 node bench-browser.mjs       also a Chromium trace of each run: the main thread's thread time per
//                                               frame by phase (animation-frame callbacks, style, layout, paint…)
//   GATEWAY_BIN=… node bench-browser.mjs        another gateway (default: the release build, else the debug one)
//   DEMO_APP_DIST=… node bench-browser.mjs      another build of the app (default: app/dist)
// 
// What is measured, from the moment the load starts until the page holds
// every published log: long tasks (`PerformanceObserver('longtask')`, which
// reports only tasks over 50 ms: their count and the longest) and the
// intervals between `requestAnimationFrame` callbacks (median, p99, max).
// Headless Chromium paces rAF at 60 Hz, so 16.7 ms is the best interval.
// Over the same window the renderer's counters (CDP `Performance`, thread
// time) give the main thread's work: tasks in all, and of it script, style
// recalculation and layout, and the number of layouts — figures that a busy
// machine stretches far less than frame timing.
// Every log must arrive exactly once and in order on its pane; a run where
// one does not is reported and makes the exit code 1. Timing is printed,
// never asserted: it is a benchmark, not a test.
// 
// Pinning (with 2 cores or more and `taskset`): the gateway and the load
// generator on core 0; Chromium runs on both cores, as a browser on a
// user's machine does (its renderer, browser and network processes run in
// parallel). `BENCH_PIN=split` confines Chromium (every process it starts)
// and this script to core 1 instead: the page then shares one core with the
// browser's other processes, which is harsher than any real machine.
// Other processes on the machine are not pinned away; the load average
// before each run is printed.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const EXAMPLES = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(EXAMPLES, '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const PROFILE = process.env.BENCH_PROFILE === '1';
const PHASES = process.env.BENCH_PHASES === '1';

function fail(message) {
  console.error(`bench-browser: ${message}`);
  process.exit(2);
}

// What must be there before anything starts, with the command that provides it.
const appDist = process.env.DEMO_APP_DIST ?? path.join(EXAMPLES, 'app/dist');
if (!existsSync(path.join(appDist, 'index.html'))) {
  fail(`the demo app is not built (${path.join(appDist, 'index.html')} is missing): run examples/build.sh (it builds the npm package first when needed)`);
}
if (!existsSync(path.join(EXAMPLES, 'node_modules/playwright-core'))) {
  fail('playwright-core is not installed in examples/node_modules: run examples/build.sh (npm ci from the committed lock)');
}
if (!existsSync(CHROMIUM)) fail(`Chromium not found at ${CHROMIUM} (CHROMIUM_BIN=… names another)`);
if (process.env.GATEWAY_BIN === undefined) {
  const release = path.join(ROOT, 'target/release/logs-sse-gateway');
  const debug = path.join(ROOT, 'target/debug/logs-sse-gateway');
  process.env.GATEWAY_BIN = existsSync(release) ? release : debug;
}
if (!existsSync(process.env.GATEWAY_BIN)) {
  fail(`no gateway binary at ${process.env.GATEWAY_BIN}: run cargo build --release -p logs-sse-gateway`);
}

// The harness reads GATEWAY_BIN when it is loaded, hence the late import.
const { ARTIFACTS, Gateway, TOKENS, eventually, launchBrowser, newPage, pane, sleep, summary, uniqueWorkspace, waitLive } =
  await import('./e2e/harness.mjs');

const PANES = [
  // pane id, loadgen channel (service:workspace:resource) for workspace `ws`: the /dashboard defaults.
  ['indata', (ws) => `etl:${ws}:wf-daily-sales`],
  ['faas', (ws) => `faas:${ws}:flow-enrich-orders`],
  ['functions', (ws) => `function:${ws}:fn-geocode`],
];

function hasTaskset() {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const PIN = process.env.BENCH_PIN !== '0' && os.availableParallelism() >= 2 && hasTaskset();
const SPLIT = PIN && process.env.BENCH_PIN === 'split';
/** Moves every thread of `pid` to `core`. */
const pin = (pid, core) => execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });

/** rAF intervals between start() and stop(), recorded in the page. */
const FRAMES = `window.__benchFrames = {
  on: false, last: 0, intervals: [],
  start() {
    this.on = true; this.last = 0; this.intervals = [];
    const tick = (t) => { if (!this.on) return; if (this.last) this.intervals.push(t - this.last); this.last = t; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  },
  stop() { this.on = false; return this.intervals; },
};`;

function runLoadgen(gateway, channels) {
  const script = path.join(EXAMPLES, 'loadgen/loadgen.mjs');
  const args = [
    script, '--gateway', gateway.url, '--rate', String(RATE), '--seconds', String(SECONDS), '--json',
    ...channels.flatMap((c) => ['--channel', c]),
    ...Object.entries(TOKENS).flatMap(([service, token]) => ['--token', `${service}=${token}`]),
  ];
  const [command, argv] = PIN ? ['taskset', ['-c', '0', process.execPath, ...args]] : [process.execPath, args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => { out += chunk; });
    child.once('error', reject);
    child.once('exit', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1)));
      } catch {
        reject(new Error(`loadgen printed no summary: ${out}`));
      }
    });
  });
}

async function oneRun(gateway, run) {
  const browser = await launchBrowser();
  try {
    const ws = uniqueWorkspace('bench');
    const page = await newPage(browser);
    await page.addInitScript(FRAMES);
    await page.goto(`${gateway.url}/dashboard?ws=${ws}`);
    for (const [id] of PANES) await waitLive(page, id);
    await sleep(1000); // let the page settle: the first renders and the wasm start-up are not the load's

    // The renderer's own counters (CDP `Performance`), in thread time: what the
    // main thread spent on tasks, script, style and layout, however busy the
    // machine is (time the thread waited for a core is not in them).
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
    const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
    const m0 = await metrics();
    const trace = PHASES ? startTrace(cdp) : null;
    if (PROFILE) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
    }
    const t0 = await page.evaluate(() => {
      window.__benchFrames.start();
      return performance.now();
    });
    const load = await runLoadgen(gateway, PANES.map(([, channel]) => channel(ws)));
    const published = load.accepted;
    const shares = PANES.map((_, i) => Math.floor(published / PANES.length) + (i < published % PANES.length ? 1 : 0));
    const total = async () => {
      const panes = await Promise.all(PANES.map(([id]) => pane(page, id)));
      return panes.reduce((sum, p) => sum + (p?.received ?? 0), 0);
    };
    // Until the page holds everything (or 30 s pass: then the run reports what arrived).
    await eventually(total, (n) => n >= published, `all ${published} logs on the page`, 30_000).catch(() => {});
    const { t1, intervals, longTaskList, latencies } = await page.evaluate((t0) => ({
      t1: performance.now(),
      intervals: window.__benchFrames.stop(),
      longTaskList: window.__longTasks.filter((t) => t.start >= t0).map((t) => ({ at: t.start - t0, duration: t.duration })),
      latencies: Object.values(window.__datashopDemo.latencies).flat(),
    }), t0);
    const m1 = await metrics();
    const spent = (name) => ((m1[name] - m0[name]) * 1000).toFixed(0);
    if (PROFILE) reportProfile((await cdp.send('Profiler.stop')).profile, run);
    if (trace) reportPhases(await trace.stop(), run);
    const longTasks = longTaskList.map((t) => t.duration);
    await sleep(300); // a log arriving twice would show up now
    const panes = await Promise.all(PANES.map(([id]) => pane(page, id)));
    const received = panes.reduce((sum, p) => sum + p.received, 0);
    const complete = panes.every((p, i) =>
      p.received === shares[i] && p.seqs.length === shares[i] && p.seqs.every((seq, k) => seq === k + 1));
    const frames = summary(intervals);
    const lat = summary(latencies);
    const figures = {
      longtasks_over_50: longTasks.length,
      longest_ms: longTasks.length ? Math.max(...longTasks).toFixed(1) : '0',
      frame_p50_ms: frames.median.toFixed(1),
      frame_p99_ms: frames.p99.toFixed(1),
      frame_max_ms: frames.max.toFixed(1),
      received,
      published,
      in_order: complete ? 'yes' : 'no',
      frames: frames.n,
      window_s: ((t1 - t0) / 1000).toFixed(2),
      main_task_ms: spent('TaskDuration'),
      main_script_ms: spent('ScriptDuration'),
      main_style_ms: spent('RecalcStyleDuration'),
      main_layout_ms: spent('LayoutDuration'),
      layouts: m1.LayoutCount - m0.LayoutCount,
      latency_p50_ms: lat.median.toFixed(1),
      latency_p99_ms: lat.p99.toFixed(1),
      load_rate: load.rate,
    };
    console.log(`RESULT browser ${Object.entries(figures).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    if (longTaskList.length > 0) {
      console.log(`bench-browser: run ${run}: long tasks at ${longTaskList.map((t) => `+${(t.at / 1000).toFixed(2)} s (${t.duration.toFixed(0)} ms)`).join(', ')} after the load started`);
    }
    if (!complete) {
      console.error(`run ${run}: panes received ${panes.map((p) => p.received).join(' / ')} of ${shares.join(' / ')} (seqs in order: ${panes.map((p, i) => p.seqs.every((s, k) => s === k + 1) && p.seqs.length === shares[i]).join(' / ')})`);
    }
    await page.context().close();
    return { figures, complete };
  } finally {
    await browser.close();
  }
}

/** Writes the page's CPU profile (DevTools opens it) and prints where its time went, by function. */
function reportProfile(profile, run) {
  const file = path.join(ARTIFACTS, `bench-browser-${run}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const perSample = (profile.endTime - profile.startTime) / 1000 / profile.samples.length;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map();
  for (const id of profile.samples) {
    const f = nodes.get(id);
    const key = f.url ? `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}:${f.columnNumber + 1}` : f.functionName;
    self.set(key, (self.get(key) ?? 0) + perSample);
  }
  console.log(`bench-browser: run ${run}: CPU profile ${path.relative(ROOT, file)}; self time by function (ms):`);
  for (const [key, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${ms.toFixed(0).padStart(6)}  ${key}`);
}

/** Starts a trace of the page (the timeline's categories); `stop()` resolves with its events. */
function startTrace(cdp) {
  const events = [];
  cdp.on('Tracing.dataCollected', ({ value }) => events.push(...value));
  const started = cdp.send('Tracing.start', {
    traceConfig: { includedCategories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'blink', 'cc'] },
    transferMode: 'ReportEvents',
  });
  return {
    async stop() {
      await started;
      const complete = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
      await cdp.send('Tracing.end');
      await complete;
      return events;
    },
  };
}

/** Prints the renderer main thread's thread time per frame, by phase of the frame, and the network data handled outside frames. */
function reportPhases(events, run) {
  const threads = new Map(events.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [`${e.pid}:${e.tid}`, e.args.name]));
  const spent = new Map();
  for (const e of events) {
    if (e.ph !== 'X' || threads.get(`${e.pid}:${e.tid}`) !== 'CrRendererMain') continue;
    const [ms, n] = spent.get(e.name) ?? [0, 0];
    spent.set(e.name, [ms + (e.tdur ?? e.dur ?? 0) / 1000, n + 1]);
  }
  const frames = spent.get('ProxyMain::BeginMainFrame')?.[1] ?? 0;
  const per = (name) => ((spent.get(name)?.[0] ?? 0) / Math.max(1, frames)).toFixed(2);
  const phases = [
    ['frame', 'ProxyMain::BeginMainFrame'], ['animation-frame callbacks', 'FireAnimationFrame'], ['style', 'UpdateLayoutTree'],
    ['layout', 'Layout'], ['ResizeObserver callbacks', 'LocalFrameView::NotifyResizeObservers'], ['pre-paint', 'PrePaint'],
    ['paint', 'Paint'], ['layerize', 'Layerize'], ['commit', 'Commit'],
  ];
  console.log(`bench-browser: run ${run}: main thread per frame (thread time, ms, over ${frames} frames): ${phases.map(([label, name]) => `${label} ${per(name)}`).join(', ')}; `
    + `between frames, per frame: network data ${per('ResponseBodyLoader::OnStateChange')}, event dispatch ${per('EventDispatch')}; all tasks, per frame: ${per('RunTask')}`);
}

function table(results) {
  const rows = [
    ['long tasks over 50 ms (count)', 'longtasks_over_50', 0, ''],
    ['longest long task', 'longest_ms', 1, ' ms'],
    ['frame interval, median', 'frame_p50_ms', 1, ' ms'],
    ['frame interval, p99', 'frame_p99_ms', 1, ' ms'],
    ['frame interval, max', 'frame_max_ms', 1, ' ms'],
    ['main thread: tasks (thread time)', 'main_task_ms', 0, ' ms'],
    ['main thread: script', 'main_script_ms', 0, ' ms'],
    ['main thread: style', 'main_style_ms', 0, ' ms'],
    ['main thread: layout', 'main_layout_ms', 0, ' ms'],
    ['layouts (count)', 'layouts', 0, ''],
    ['publish → rendered latency, median', 'latency_p50_ms', 1, ' ms'],
    ['publish → rendered latency, p99', 'latency_p99_ms', 1, ' ms'],
    ['logs received / published', null, 0, ''],
  ];
  const median = (values) => {
    const s = [...values].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const cells = rows.map(([name, key, digits, unit]) => {
    if (key === null) {
      return [name, results.map((r) => `${r.received}/${r.published}`).join(', ')];
    }
    const values = results.map((r) => Number(r[key]));
    const f = (v) => v.toFixed(digits);
    const spread = values.length > 1 ? ` (${f(Math.min(...values))} – ${f(Math.max(...values))})` : '';
    return [name, `${f(median(values))}${unit}${spread}`];
  });
  const width = Math.max(...cells.map(([name]) => name.length));
  console.log(`\nbrowser: ${RATE} logs/s for ${SECONDS} s into three useLogsSSE hooks on one page, median of ${results.length} run(s) (lowest – highest)`);
  for (const [name, value] of cells) console.log(`  ${name.padEnd(width)}  ${value}`);
}

async function main() {
  const cores = os.availableParallelism();
  const gateway = new Gateway('bench-browser');
  await gateway.start();
  let where = 'not pinned';
  if (PIN) {
    pin(gateway.child.pid, 0);
    where = 'gateway and load generator pinned to core 0, Chromium on both cores (taskset)';
  }
  if (SPLIT) {
    pin(process.pid, 1); // Chromium, launched from here, inherits it
    where = 'gateway and load generator pinned to core 0, Chromium (all its processes) and this script to core 1 (taskset)';
  }
  const probe = await launchBrowser();
  const version = probe.version();
  await probe.close();
  console.log(`bench-browser: ${RATE} logs/s for ${SECONDS} s over 3 channels, ${RUNS} run(s); headless Chromium ${version} (rAF at 60 Hz: 16.7 ms is the shortest frame interval), node ${process.version}`);
  console.log(`bench-browser: gateway ${path.relative(ROOT, process.env.GATEWAY_BIN)}; ${where}; ${cores} cores`);
  const results = [];
  let incomplete = 0;
  try {
    for (let run = 1; run <= RUNS; run += 1) {
      console.log(`bench-browser: run ${run} of ${RUNS}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      const { figures, complete } = await oneRun(gateway, run);
      results.push(figures);
      if (!complete) incomplete += 1;
    }
  } finally {
    await gateway.close();
  }
  table(results);
  if (incomplete > 0) {
    console.error(`bench-browser: in ${incomplete} run(s) the page did not hold every published log exactly once and in order`);
    process.exitCode = 1;
  }
}

await main();
