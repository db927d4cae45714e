// 3. Persistence: the logs a page showed are still there after navigating
// away and back and after a reload in the same tab, and none published in
// between is missing (or repeated).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  Gateway, eventually, launchBrowser, lines, newPage, pane, publish, range, sleep, streamState, uniqueWorkspace, waitLive,
} from './harness.mjs';

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('persistence').start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

const hasExactly = (page, id, seqs, what) =>
  eventually(() => pane(page, id), (p) => p !== null && p.count >= seqs.length, what).then(async () => {
    await sleep(300); // a repeated log would show up with the rest
    const state = await pane(page, id);
    assert.deepEqual(state.seqs, seqs, `${what}: every log once, in order`);
    assert.equal(new Set(state.cursors).size, state.cursors.length, 'no cursor twice');
    return state;
  });

test('logs survive navigating away and back, and a reload, with nothing published meanwhile missing', async () => {
  const ws = uniqueWorkspace();
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/faas/logs?ws=${ws}&flow=flow-p`);
  await waitLive(page, 'faas');
  await publish(gateway, 'faas', ws, 'flow-p', lines('p', 1, 20));
  await hasExactly(page, 'faas', range(1, 20), 'first visit');

  // Away to another micro frontend, long enough for the channel to leave the stream.
  await page.click('[data-testid="nav-/indata/logs"]');
  await waitLive(page, 'indata');
  await sleep(2500); // the client's lingerMs is 1500
  const away = [...(await streamState(page)).keys()];
  assert.ok(!away.some((c) => c.includes('flow-p')), `the FAAS channel left the stream (${away})`);
  await publish(gateway, 'faas', ws, 'flow-p', lines('p', 21, 20));

  // Back: the 20 seen are shown from sessionStorage, the 20 published meanwhile resume from the cursor.
  await page.click('[data-testid="nav-/faas/logs"]');
  const back = await hasExactly(page, 'faas', range(1, 40), 'after navigating back');
  console.log(`back on the page: ${back.count} logs (20 restored + 20 published while away)`);

  // Reload in the same tab, with logs published just before and during it.
  await publish(gateway, 'faas', ws, 'flow-p', lines('p', 41, 10));
  await eventually(() => pane(page, 'faas'), (p) => p.count === 50, 'the 10 before the reload');
  const reloading = page.reload();
  await publish(gateway, 'faas', ws, 'flow-p', lines('p', 51, 10));
  await reloading;
  const reloaded = await hasExactly(page, 'faas', range(1, 60), 'after the reload');
  console.log(`after the reload: ${reloaded.count} logs`);
  await waitLive(page, 'faas');
  await publish(gateway, 'faas', ws, 'flow-p', lines('p', 61, 5));
  await hasExactly(page, 'faas', range(1, 65), 'live again after the reload');
  // On screen, not only in state.
  await page.locator('[data-testid="pane-faas"] .row-msg', { hasText: 'p line 65' }).waitFor();
  await page.context().close();
});
