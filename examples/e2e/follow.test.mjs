// Following, pausing and anchoring in the virtualized log list, as the
// browser lays it out: the list stays at its newest line when the window is
// resized, holds still when paused from the toggle and when the bounded
// buffer (the ETL page keeps 5,000 lines) drops its oldest lines under a
// paused view, and jumps back to the bottom when following resumes. What is
// asserted is read from the DOM (scroll position, the rows drawn, where the
// top row is on screen); the list reads none of it itself.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Gateway, eventually, launchBrowser, lines, newPage, pane, publish, screenshot, sleep, uniqueWorkspace, waitLive } from './harness.mjs';

const ROW = 22; // LogPane's row height
const MAX_LOGS = 5000; // the ETL page's maxLogs

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('follow').start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

/** What the indata pane's list shows: its scroll position, the rows drawn in view, and its follow state. */
function view(page) {
  return page.locator('[data-testid="pane-indata"]').evaluate((paneEl) => {
    const el = paneEl.querySelector('[data-testid="log-list"]');
    const box = el.getBoundingClientRect();
    const rows = [...el.querySelectorAll('.row')].map((r) => ({ cursor: r.dataset.cursor, msg: r.querySelector('.row-msg').textContent, rect: r.getBoundingClientRect() }));
    const inView = rows.filter((r) => r.rect.bottom > box.top + 1 && r.rect.top < box.bottom - 1).sort((a, b) => a.rect.top - b.rect.top);
    return {
      scrollTop: el.scrollTop,
      maxScrollTop: el.scrollHeight - el.clientHeight,
      viewHeight: el.clientHeight,
      follow: paneEl.dataset.follow,
      shown: inView.length,
      first: inView[0] ? { cursor: inView[0].cursor, msg: inView[0].msg, y: inView[0].rect.top - box.top } : null,
      last: inView.at(-1)?.msg ?? null,
    };
  });
}

/** Publishes lines `from`…`from + count - 1` of `tag` to the ETL page's channel, in batches of 500. */
async function publishLines(ws, tag, from, count) {
  for (let at = from; at < from + count; at += 500) {
    await publish(gateway, 'etl', ws, 'wf-daily-sales', lines(tag, at, Math.min(500, from + count - at)));
  }
}

/** Waits until the pane has received `n` lines and the list shows `line n` as its last visible row, at the bottom. */
async function atBottomWith(page, tag, n) {
  await eventually(() => pane(page, 'indata'), (p) => p?.received >= n, `${n} lines received`);
  return eventually(() => view(page), (v) => v.last === `${tag} line ${n}` && Math.abs(v.scrollTop - v.maxScrollTop) <= 1, `the list at its bottom with "${tag} line ${n}"`);
}

/** The rows in view fill it: the window drawn is the one scrolled to. */
function assertFilled(v, what) {
  assert.ok(v.shown >= Math.floor(v.viewHeight / ROW), `${what}: ${v.shown} rows drawn in a view of ${v.viewHeight}px`);
}

test('following keeps the newest line in view through new lines and window resizes', async () => {
  const ws = uniqueWorkspace('follow');
  const tag = 'resize';
  const page = await newPage(browser, { viewport: { width: 1280, height: 800 } });
  await page.goto(`${gateway.url}/indata/logs?ws=${ws}`);
  await waitLive(page, 'indata');
  await publishLines(ws, tag, 1, 300);
  let v = await atBottomWith(page, tag, 300);
  assertFilled(v, 'following');
  assert.equal(v.follow, 'true');

  // Smaller: the bottom moves down by what the view lost; larger: up again. Each time with new lines as well.
  let n = 300;
  for (const height of [520, 980]) {
    const was = v.viewHeight;
    await page.setViewportSize({ width: 1280, height });
    v = await eventually(() => atBottomWith(page, tag, n), (w) => w.viewHeight !== was, `the list resized with the window to ${height}px`);
    assertFilled(v, `resized to ${height}px`);
    await publishLines(ws, tag, n + 1, 40);
    n += 40;
    v = await atBottomWith(page, tag, n);
    assertFilled(v, `new lines after the resize to ${height}px`);
    assert.equal(v.follow, 'true', 'a resize is not a user scroll');
  }
  await page.context().close();
});

test('paused from the toggle the view holds still, then resuming jumps to the newest line', async () => {
  const ws = uniqueWorkspace('follow');
  const tag = 'toggle';
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/indata/logs?ws=${ws}`);
  await waitLive(page, 'indata');
  await publishLines(ws, tag, 1, 400);
  const before = await atBottomWith(page, tag, 400);

  await page.click('[data-testid="pane-indata"] [data-testid="follow-toggle"]');
  await eventually(() => view(page), (v) => v.follow === 'false', 'paused');
  await publishLines(ws, tag, 401, 200);
  await eventually(() => pane(page, 'indata'), (p) => p?.received >= 600, '600 lines received');
  await sleep(300);
  const paused = await view(page);
  assert.equal(paused.scrollTop, before.scrollTop, 'the view did not move while paused');
  assert.equal(paused.last, `${tag} line 400`, 'the newest line shown is the one shown when paused');
  assertFilled(paused, 'paused from the toggle');
  const pill = await page.locator('[data-testid="pane-indata"] [data-testid="new-lines"]').textContent();
  assert.match(pill, /200 new lines/);

  await page.click('[data-testid="pane-indata"] [data-testid="follow-toggle"]');
  const resumed = await atBottomWith(page, tag, 600);
  assertFilled(resumed, 'resumed');
  assert.equal(resumed.follow, 'true');
  await page.context().close();
});

test('scrolled up while the buffer trims its oldest lines, the top row stays where it is', async () => {
  const ws = uniqueWorkspace('follow');
  const tag = 'trim';
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/indata/logs?ws=${ws}`);
  await waitLive(page, 'indata');
  await publishLines(ws, tag, 1, MAX_LOGS);
  await atBottomWith(page, tag, MAX_LOGS);

  // The user scrolls up by about a hundred rows: following pauses.
  const list = page.locator('[data-testid="pane-indata"] [data-testid="log-list"]');
  const box = await list.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  for (let i = 0; i < 8; i += 1) {
    await page.mouse.wheel(0, -300);
    await sleep(50);
  }
  const held = await eventually(() => view(page), (v) => v.follow === 'false' && v.first !== null, 'paused by the wheel');
  await sleep(300); // the wheel's smooth scroll settles
  const anchored = await view(page);

  // 600 more: the buffer drops the 600 oldest, every row moves up by 600 places.
  await publishLines(ws, tag, MAX_LOGS + 1, 600);
  await eventually(() => pane(page, 'indata'), (p) => p?.received >= MAX_LOGS + 600 && p.count === MAX_LOGS, 'the buffer trimmed to 5,000');
  await sleep(300);
  const after = await view(page);
  await screenshot(page, 'follow-anchored-after-trim');
  assert.ok(held.scrollTop < held.maxScrollTop - 50 * ROW, 'the wheel scrolled up');
  assert.equal(after.follow, 'false', 'trimming is not a user scroll');
  assert.ok(after.first !== null, 'rows are drawn in view after the trim');
  assert.equal(after.first.cursor, anchored.first.cursor, 'the same row is at the top of the view');
  assert.ok(Math.abs(after.first.y - anchored.first.y) <= 1, `at the same height (${anchored.first.y} → ${after.first.y} px)`);
  assert.ok(after.scrollTop < anchored.scrollTop - 500 * ROW, 'the list scrolled by the rows dropped above the view');
  assertFilled(after, 'anchored after the trim');

  await page.click('[data-testid="pane-indata"] [data-testid="new-lines"]');
  await atBottomWith(page, tag, MAX_LOGS + 600);
  await page.context().close();
});
