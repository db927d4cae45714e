// 8. Where a page resumes, and where it starts: a persisted page that was
// restored from sessionStorage and got no new log keeps its cursor, so the
// logs published while the user is on another route all arrive when they
// come back (also after a reload); and a page opened in the middle of a run
// starts with the run so far (the demo pages backfill).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  Gateway, eventually, launchBrowser, lines, newPage, pane, publish, range, sleep, streamState, uniqueWorkspace, waitLive,
} from './harness.mjs';

let gateway;
let browser;

before(async () => {
  gateway = await new Gateway('resume').start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
});

const WORKFLOW = 'wf-daily-sales'; // the ETL page's default, kept across navigation

const hasExactly = (page, id, seqs, what) =>
  eventually(() => pane(page, id), (p) => p !== null && p.count >= seqs.length, what).then(async () => {
    await sleep(300); // a repeated log would show up with the rest
    const state = await pane(page, id);
    assert.deepEqual(state.seqs, seqs, `${what}: every log once, in order`);
    assert.equal(new Set(state.cursors).size, state.cursors.length, `${what}: no cursor twice`);
    return state;
  });

/** The persisted records of one channel in the page's sessionStorage. */
const records = (page, channel) =>
  page.evaluate((channel) => {
    const out = [];
    for (let i = 0; i < sessionStorage.length; i += 1) {
      const key = sessionStorage.key(i);
      try {
        const record = JSON.parse(sessionStorage.getItem(key));
        if (record?.format === 'datashop-logs-sse' && record.channel === channel) {
          out.push({ key, cursor: record.cursor ?? null, logs: record.logs.length });
        }
      } catch {
        // Not a record of the client.
      }
    }
    return out;
  }, channel);

/** Where `channel` started on the stream (the stream URL's `since` or the live change's), or null. */
const sinceOf = async (page, channel) => (await streamState(page)).get(channel) ?? null;

const CURSOR = /^[0-9a-f]+-\d+$/;

/** To the FAAS page until the ETL channel left the stream, `publishWhileAway`, back to the ETL page. */
async function awayAndBack(page, channel, publishWhileAway) {
  await page.click('[data-testid="nav-/faas/logs"]');
  await waitLive(page, 'faas');
  await eventually(
    () => streamState(page),
    (channels) => !channels.has(channel),
    'the ETL channel to leave the stream (lingerMs is 1500)',
  );
  await publishWhileAway();
  await page.click('[data-testid="nav-/indata/logs"]');
  await waitLive(page, 'indata');
  const since = await sinceOf(page, channel);
  assert.match(since ?? 'no since entry (live)', CURSOR, `the ETL channel resumes from a cursor (${since})`);
}

test('a restored page with no new log keeps its cursor: nothing published while away is lost, after a reload too', async () => {
  const ws = uniqueWorkspace('resume');
  const channel = `logs:etl:${ws}:${WORKFLOW}`;
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/indata/logs?ws=${ws}`);
  await waitLive(page, 'indata');

  // 1. 35 logs; away and back with nothing published: the 35 are shown and,
  //    a while after the restore, every stored record still has a cursor.
  await publish(gateway, 'etl', ws, WORKFLOW, lines('etl', 1, 35));
  await hasExactly(page, 'indata', range(1, 35), 'first visit');
  await awayAndBack(page, channel, async () => {});
  await hasExactly(page, 'indata', range(1, 35), 'back with nothing new');
  await sleep(1500); // the persistence throttle (1 s) has written the restored state
  const stored = await records(page, channel);
  assert.ok(stored.length >= 1, 'the channel is persisted');
  for (const r of stored) assert.match(r.cursor ?? 'null', CURSOR, `record ${r.key} keeps its cursor`);
  console.log(`after the restore: ${stored.map((r) => `${r.key} cursor ${r.cursor}, ${r.logs} logs`).join('; ')}`);

  // 2. Away again, 5 published meanwhile: all 5 appear, 40 in all, each once.
  await awayAndBack(page, channel, () => publish(gateway, 'etl', ws, WORKFLOW, lines('etl', 36, 5)));
  await hasExactly(page, 'indata', range(1, 40), 'back after 5 published while away');

  // 3. A reload with nothing new, away, 10 published, back: all 10.
  await page.reload();
  await waitLive(page, 'indata');
  await hasExactly(page, 'indata', range(1, 40), 'after the reload');
  await sleep(1500);
  await awayAndBack(page, channel, () => publish(gateway, 'etl', ws, WORKFLOW, lines('etl', 41, 10)));
  await hasExactly(page, 'indata', range(1, 50), 'back after a reload and 10 published while away');

  // 4. Control: a new log arrives before leaving; the 5 published while away arrive too.
  await publish(gateway, 'etl', ws, WORKFLOW, lines('etl', 51, 1));
  await hasExactly(page, 'indata', range(1, 51), 'one more log before leaving');
  await awayAndBack(page, channel, () => publish(gateway, 'etl', ws, WORKFLOW, lines('etl', 52, 5)));
  await hasExactly(page, 'indata', range(1, 56), 'control: back after a new log and 5 published while away');
  await page.context().close();
});

test('a page opened in the middle of a run shows the run so far, then live, and a restored page does not backfill again', async () => {
  const ws = uniqueWorkspace('backfill');
  const channel = `logs:etl:${ws}:${WORKFLOW}`;
  await publish(gateway, 'etl', ws, WORKFLOW, lines('etl', 1, 30));
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/indata/logs?ws=${ws}`);
  await hasExactly(page, 'indata', range(1, 30), 'the run so far, on opening the page');
  assert.match(await sinceOf(page, channel), /^last:\d+$/, 'the first stream asks for a backfill');
  await waitLive(page, 'indata');
  await publish(gateway, 'etl', ws, WORKFLOW, lines('etl', 31, 5));
  await hasExactly(page, 'indata', range(1, 35), 'then live');
  await page.locator('[data-testid="pane-indata"] .row-msg', { hasText: 'etl line 35' }).waitFor();

  // Reloaded: restored from sessionStorage, it resumes from its cursor.
  await sleep(1200);
  await page.reload();
  await waitLive(page, 'indata');
  assert.match(await sinceOf(page, channel), CURSOR, 'a restored page resumes instead of backfilling');
  await publish(gateway, 'etl', ws, WORKFLOW, lines('etl', 36, 2));
  await hasExactly(page, 'indata', range(1, 37), 'after the reload');
  await page.context().close();
});
