// 5. High volume: 1,000 logs/s for 10 s (examples/loadgen) into the
// functions page. Every log arrives (counted from the page's state — the list
// is virtualized) and the list scrolls while it streams. Long tasks, frame
// timing and the delivery latency (publish → rendered, median and p99) are
// printed as figures, not asserted: timing depends on the machine's load.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  EXAMPLES, Gateway, TOKENS, eventually, fmt, launchBrowser, newPage, pane, range, screenshot, sleep, stats, summary, uniqueWorkspace, waitLive,
} from './harness.mjs';

const RATE = Number(process.env.E2E_RATE ?? 1000);
const SECONDS = Number(process.env.E2E_SECONDS ?? 10);

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('volume').start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

function runLoadgen(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(EXAMPLES, 'loadgen/loadgen.mjs'), ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => { out += chunk; });
    child.once('error', reject);
    child.once('exit', () => {
      const lines = out.trim().split('\n');
      for (const line of lines.slice(0, -1)) console.log(line);
      try {
        resolve(JSON.parse(lines.at(-1)));
      } catch {
        reject(new Error(`loadgen printed no summary: ${out}`));
      }
    });
  });
}

/** Frame intervals measured in the page with requestAnimationFrame, between start() and stop(). */
const FRAMES = `window.__frames = { on: false, last: 0, intervals: [], start() { this.on = true; this.last = 0; this.intervals = []; const tick = (t) => { if (!this.on) return; if (this.last) this.intervals.push(t - this.last); this.last = t; requestAnimationFrame(tick); }; requestAnimationFrame(tick); }, stop() { this.on = false; return this.intervals; } };`;

test(`${RATE} logs/s for ${SECONDS} s: every log arrives, the list scrolls`, async () => {
  const ws = uniqueWorkspace();
  const page = await newPage(browser);
  await page.addInitScript(FRAMES);
  await page.goto(`${gateway.url}/functions/logs?ws=${ws}&function=fn-burst`);
  await waitLive(page, 'functions');
  await sleep(500);
  const t0 = await page.evaluate(() => {
    window.__datashopDemo.latencies.functions = [];
    return performance.now();
  });

  const load = runLoadgen([
    '--gateway', gateway.url, '--channel', `function:${ws}:fn-burst`, '--token', `function=${TOKENS.function}`,
    '--rate', String(RATE), '--seconds', String(SECONDS),
  ]);

  // While it streams: scroll up through the list with the mouse wheel.
  await page.evaluate(() => window.__frames.start());
  await sleep((SECONDS * 1000) * 0.35);
  const whole = await page.evaluate(() => window.__frames.stop());
  const list = page.locator('[data-testid="pane-functions"] [data-testid="log-list"]');
  const box = await list.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const before = await list.evaluate((el) => ({ top: el.scrollTop, height: el.scrollHeight }));
  await page.evaluate(() => window.__frames.start());
  for (let i = 0; i < 10; i += 1) {
    await page.mouse.wheel(0, -300);
    await sleep(100);
  }
  const scrolling = await page.evaluate(() => window.__frames.stop());
  const paused = await page.locator('[data-testid="pane-functions"]').evaluate((el) => el.dataset.follow);
  const scrolled = await list.evaluate((el) => ({ top: el.scrollTop, height: el.scrollHeight }));
  const firstRowShown = await list.locator('.row').first().getAttribute('data-cursor');
  const newLines = await page.locator('[data-testid="new-lines"]').textContent({ timeout: 5000 });
  console.log(`scrolling while streaming: scrollTop ${before.top.toFixed(0)} → ${scrolled.top.toFixed(0)} of ${scrolled.height}px, follow ${paused}, pill "${newLines.trim()}"`);
  assert.equal(paused, 'false', 'scrolling up pauses follow');
  assert.ok(scrolled.top < before.top - 1000, 'the list scrolled up by the wheel');
  await screenshot(page, 'functions-high-volume-paused');
  // While paused the view stays where the user put it.
  await sleep(500);
  assert.equal(await list.locator('.row').first().getAttribute('data-cursor'), firstRowShown, 'the view holds still while paused');
  await page.click('[data-testid="new-lines"]');
  await eventually(() => page.locator('[data-testid="pane-functions"]').evaluate((el) => el.dataset.follow), (f) => f === 'true', 'follow to resume');

  const result = await load;
  assert.equal(result.accepted, RATE * SECONDS, `the gateway accepted every log (errors: ${JSON.stringify(result.errors)})`);
  const done = await eventually(() => pane(page, 'functions'), (p) => p.received >= RATE * SECONDS, `all ${RATE * SECONDS} logs in the page`, 30_000);
  await sleep(300);
  const state = await pane(page, 'functions');
  assert.equal(state.received, RATE * SECONDS, 'every log arrived, none twice');
  assert.deepEqual(state.seqs, range(1, RATE * SECONDS), 'every log is held, in publish order');
  const shownCount = await page.locator('[data-testid="pane-functions"] [data-testid="connection-badge"]').getAttribute('data-count');
  assert.equal(Number(shownCount), RATE * SECONDS, 'the badge counts them');
  await page.locator('[data-testid="pane-functions"] .row-msg', { hasText: `loadgen line ${RATE * SECONDS} ` }).waitFor();
  await screenshot(page, 'functions-high-volume');

  const { longTasks, latencies } = await page.evaluate((t0) => ({
    longTasks: window.__longTasks.filter((t) => t.start >= t0),
    latencies: window.__datashopDemo.latencies.functions,
  }), t0);
  const lt = summary(longTasks.map((t) => t.duration));
  const lat = summary(latencies);
  const frames = summary(whole);
  const scrollFrames = summary(scrolling);
  const g = await stats(gateway);
  console.log(`loadgen: ${result.accepted} logs in ${result.seconds} s = ${result.rate} logs/s, ${result.requests} requests`);
  console.log(`page: received ${state.received}, held ${state.count}; gateway deliveries ${g.deliveries}, slow-consumer disconnects ${g.slowConsumerDisconnects}`);
  console.log(`long tasks during the load: ${lt.n} (> 50 ms), longest ${lt.n ? fmt(lt.max) : "none"}, total ${fmt(longTasks.reduce((s, t) => s + t.duration, 0))}`);
  console.log(`frames while streaming: ${frames.n}, interval median ${fmt(frames.median)}, p95 ${fmt(frames.p95)}, max ${fmt(frames.max)}`);
  console.log(`frames while scrolling: ${scrollFrames.n}, interval median ${fmt(scrollFrames.median)}, p95 ${fmt(scrollFrames.p95)}, max ${fmt(scrollFrames.max)}`);
  console.log(`latency publish → rendered at ${RATE} logs/s (${lat.n} logs): median ${fmt(lat.median)}, p95 ${fmt(lat.p95)}, p99 ${fmt(lat.p99)}, max ${fmt(lat.max)}`);
  assert.equal(lat.n, RATE * SECONDS, 'every log was timed');
  assert.equal(g.slowConsumerDisconnects, 0);
  assert.ok(done.received >= RATE * SECONDS);
  await page.context().close();
});
