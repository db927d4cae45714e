// Packaging: the packed package works in a Vite app and in a webpack 5 app
// with no wasm plugin or config (both built by the global setup from the
// `npm pack` tarball), in Vite's dev server (dependency pre-bundling), and
// its type declarations serve a strict TypeScript consumer. Each build also
// carries the shared worker: two tabs of one browser profile share one
// stream through it (or, in the dev server, through whichever owner works).
// The leader mode's code is a chunk apart in each production build: tabs
// with a SharedWorker never load it, tabs without one load it and share
// through a leader tab, and a tab whose chunk cannot be loaded streams on
// its own.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { launchBrowser, newPage } from '../support/browser.js';
import { publish, startGateway, stats } from '../support/gateway.js';
import { eventually, mount, openApp, uniqueWorkspace, waitConnected, waitForCount, type Bundle } from '../support/app.js';
import { Tab, type TabState } from '../support/tabs.js';

const gateway = inject('gatewayUrl');
const baseUrl = inject('baseUrl');
const appDir = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../fixtures/app');
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** Opens a page, remembering every .wasm response. */
async function pageWatchingWasm(): Promise<{ page: Page; wasm: Response[] }> {
  const page = await newPage(browser);
  const wasm: Response[] = [];
  page.on('response', (response) => {
    if (new URL(response.url()).pathname.endsWith('.wasm')) wasm.push(response);
  });
  return { page, wasm };
}

/** Mounts a panel, publishes, and checks the logs reach the hook and the DOM. */
async function showsLiveLogs(page: Page, bundle: Bundle, provider?: Record<string, unknown>): Promise<void> {
  const ws = uniqueWorkspace(bundle);
  await mount(page, bundle, {
    id: 'app',
    ...(provider ? { provider } : {}),
    panels: [{ id: 'p', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf' } }],
  });
  await waitConnected(page, bundle, 'p');
  await publish(gateway, { service: 'etl', workspace_id: ws, workflow_id: 'wf' }, [{ line: 'hello' }, { line: 'world' }]);
  expect((await waitForCount(page, bundle, 'p', 2)).logs).toEqual([{ line: 'hello' }, { line: 'world' }]);
  await expect.poll(() => page.locator('[data-panel="p"] h2').textContent()).toBe('p open 2');
}

interface Shared {
  /** `status.sharing` of the two tabs. */
  sharing: (string | undefined)[];
  /** Paths of the scripts the browser fetched for the two tabs and their worker. */
  fetched: string[];
  /** The SharedWorker script the first tab asked for, with what the server answered for it. */
  worker: { url: string; status: number; type: string; bytes: number; gzip: number } | null;
  /** The page's own scripts (the worker is a chunk apart). */
  scripts: string[];
}

/**
 * Two tabs of one context (one browser profile) on `url`, sharing allowed
 * (`leader`: the tabs have no SharedWorker), each subscribed to a channel of
 * its own against a gateway of this test: each gets its own logs, in order,
 * and the gateway sees one stream.
 */
async function twoTabsShareOneStream(url: string, bundle: Bundle, share: 'worker' | 'leader' = 'worker'): Promise<Shared> {
  const gateway = await startGateway();
  const context = await browser.newContext();
  const fetched: string[] = [];
  context.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (path.endsWith('.js')) fetched.push(path);
  });
  try {
    const options = { share, url, bundle, client: { gatewayUrl: `${gateway.url}/api/logs/stream` } };
    const tabs = [await Tab.open(context, 'a', options), await Tab.open(context, 'b', options)];
    const ws = uniqueWorkspace(`${bundle}share`);
    const targets = ['wf1', 'wf2'].map((workflow_id) => ({ service: 'etl', workspace_id: ws, workflow_id }));
    for (const [i, tab] of tabs.entries()) await tab.subscribe('s', `logs:etl:${ws}:${targets[i]!.workflow_id}`, {});
    for (const tab of tabs) await eventually(() => tab.read(), (s) => (s.subs.s?.statuses.length ?? 0) > 0, `tab ${tab.name}: no channel status`);
    await publish(gateway.url, targets[0]!, [{ g: 1 }, { g: 2 }, { g: 3 }]);
    await publish(gateway.url, targets[1]!, [{ g: 1 }, { g: 2 }]);
    const logsOf = (s: TabState): number[] => s.subs.s?.g ?? [];
    const [a, b] = [
      await eventually(() => tabs[0]!.read(), (s) => logsOf(s).length >= 3, 'tab a: its logs'),
      await eventually(() => tabs[1]!.read(), (s) => logsOf(s).length >= 2, 'tab b: its logs'),
    ];
    expect(logsOf(a)).toEqual([1, 2, 3]);
    expect(logsOf(b)).toEqual([1, 2]);
    const s = await eventually(() => stats(gateway.url), (x) => x.connections === 1, 'the gateway should see one stream');
    expect(s.connections).toBe(1);
    expect(s.subscriptions).toEqual({ [`logs:etl:${ws}:wf1`]: 1, [`logs:etl:${ws}:wf2`]: 1 });
    // The page that owns the stream holds its EventSource: none with a worker, the leader's otherwise.
    const open = [a, b].map((x) => x.eventSources.open);
    expect(open).toEqual([a, b].map((x) => (x.status.sharing === 'leader' ? 1 : 0)));
    let worker: Shared['worker'] = null;
    const asked = a.sharedWorkers[0];
    if (asked !== undefined) {
      const response = await fetch(asked);
      const body = Buffer.from(await response.arrayBuffer());
      worker = { url: asked, status: response.status, type: response.headers.get('content-type') ?? '', bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
    }
    const scripts = await tabs[0]!.page.evaluate(() => Array.from(document.scripts, (script) => script.src));
    return { sharing: [a.status.sharing, b.status.sharing], fetched, worker, scripts };
  } finally {
    await context.close();
    await gateway.stop();
  }
}

function describeWorker({ worker }: Shared): string {
  if (worker === null) return 'not constructed';
  return `${new URL(worker.url).pathname} (HTTP ${worker.status}, ${worker.type || 'no type'}, ${worker.bytes} B, ${worker.gzip} B gzipped)`;
}

describe('packaging', () => {
  test('a Vite production build loads the wasm as an emitted asset and streams logs', async () => {
    const { page, wasm } = await pageWatchingWasm();
    await openApp(page, baseUrl, '/vite/', ['vite']);
    await showsLiveLogs(page, 'vite');
    expect(wasm.map((r) => new URL(r.url()).pathname)).toEqual([expect.stringMatching(/^\/vite\/assets\/logs_sse_client_bg-[\w-]+\.wasm$/)]);
    expect(wasm[0]!.headers()['content-type']).toBe('application/wasm');
    await page.context().close();
  });

  test('a webpack 5 production build loads the wasm as an emitted asset and streams logs', async () => {
    const assets = inject('fixtures').webpackAssets;
    console.log(`webpack app assets: ${assets.map((a) => `${a.name} ${a.size} B`).join(', ')}`);
    expect(assets.filter((a) => a.name.endsWith('.wasm'))).toHaveLength(1);
    const { page, wasm } = await pageWatchingWasm();
    await openApp(page, baseUrl, '/webpack/', ['webpack']);
    await showsLiveLogs(page, 'webpack');
    expect(wasm.map((r) => new URL(r.url()).pathname)).toEqual([expect.stringMatching(/^\/webpack\/[0-9a-f]+\.wasm$/)]);
    await page.context().close();
  });

  test('a Vite production build emits the shared worker, which loads the wasm: two tabs share one stream', async () => {
    const shared = await twoTabsShareOneStream(`${baseUrl}/vite/`, 'vite');
    console.log(`Vite build: shared worker ${describeWorker(shared)}; tabs ${shared.sharing.join(', ')}`);
    expect(shared.sharing).toEqual(['worker', 'worker']);
    expect(shared.worker).toMatchObject({ status: 200, type: expect.stringContaining('javascript') });
    expect(new URL(shared.worker!.url).pathname).toMatch(/^\/vite\/assets\/worker-[\w-]+\.js$/);
    expect(shared.scripts).not.toContain(shared.worker!.url);
    // Nothing of the leader mode is loaded where the worker runs.
    expect(shared.fetched).not.toContain(`/vite/${inject('fixtures').leaderChunk.vite}`);
  });

  test('a webpack 5 production build emits the shared worker, which loads the wasm: two tabs share one stream', async () => {
    const shared = await twoTabsShareOneStream(`${baseUrl}/webpack/`, 'webpack');
    console.log(`webpack build: shared worker ${describeWorker(shared)}; tabs ${shared.sharing.join(', ')}`);
    expect(shared.sharing).toEqual(['worker', 'worker']);
    expect(shared.worker).toMatchObject({ status: 200, type: expect.stringContaining('javascript') });
    // A chunk of its own among the emitted assets.
    const name = new URL(shared.worker!.url).pathname.replace(/^\/webpack\//, '');
    expect(inject('fixtures').webpackAssets.map((a) => a.name)).toContain(name);
    expect(shared.scripts).not.toContain(shared.worker!.url);
    expect(shared.fetched).not.toContain(`/webpack/${inject('fixtures').leaderChunk.webpack}`);
  });

  for (const bundle of ['vite', 'webpack'] as const) {
    test(`a ${bundle} production build loads the leader mode's chunk in tabs without a SharedWorker: two tabs share one stream`, async () => {
      const shared = await twoTabsShareOneStream(`${baseUrl}/${bundle}/`, bundle, 'leader');
      const chunk = `/${bundle}/${inject('fixtures').leaderChunk[bundle]}`;
      console.log(`${bundle} build, no SharedWorker: tabs ${shared.sharing.join(', ')}; scripts fetched ${shared.fetched.join(', ')}`);
      expect([...shared.sharing].sort()).toEqual(['follower', 'leader']);
      expect(shared.worker).toBeNull();
      // Fetched once per tab (or from the cache), and never a page script of its own.
      expect(shared.fetched).toContain(chunk);
      expect(shared.scripts.map((src) => new URL(src).pathname)).not.toContain(chunk);
    });
  }

  test('a tab whose leader chunk cannot be loaded streams on its own and says why', async () => {
    const context = await browser.newContext();
    const chunk = `/vite/${inject('fixtures').leaderChunk.vite}`;
    await context.route((url) => url.pathname === chunk, (route) => route.abort('failed'));
    const warnings: string[] = [];
    context.on('console', (message) => {
      if (message.type() === 'warning') warnings.push(message.text());
    });
    try {
      const tab = await Tab.open(context, 'a', { share: 'leader', url: `${baseUrl}/vite/`, bundle: 'vite', client: { gatewayUrl: `${gateway}/api/logs/stream` } });
      const ws = uniqueWorkspace('nochunk');
      const target = { service: 'etl', workspace_id: ws, workflow_id: 'wf' };
      await tab.subscribe('s', `logs:etl:${ws}:wf`, {});
      await eventually(() => tab.read(), (s) => (s.subs.s?.statuses.length ?? 0) > 0, 'no channel status');
      await publish(gateway, target, [{ g: 1 }, { g: 2 }]);
      const state = await eventually(() => tab.read(), (s) => (s.subs.s?.g.length ?? 0) >= 2, 'its logs');
      expect(state.subs.s!.g).toEqual([1, 2]);
      expect(state.status.sharing).toBe('tab');
      // The page's own EventSource carries them.
      expect(state.eventSources.open).toBe(1);
      // No onDiagnostic given: the diagnostic goes to the console.
      expect(warnings).toContainEqual(expect.stringMatching(/the code of the leader tab mode did not load \(.+\): this tab opens a stream of its own/));
    } finally {
      await context.close();
    }
  });

  describe("Vite's dev server (with dependency pre-bundling)", () => {
    let server: Awaited<ReturnType<typeof import('vite')['createServer']>>;
    let url: string;

    beforeAll(async () => {
      const { createServer } = await import('vite');
      server = await createServer({
        root: appDir,
        configFile: path.join(appDir, 'vite.config.js'),
        // A cache of its own, so a stale pre-bundle from another run is not reused.
        cacheDir: path.join(appDir, 'node_modules/.vite-test'),
        server: { host: '127.0.0.1', port: 0, strictPort: false },
        optimizeDeps: { force: true },
        logLevel: 'warn',
      });
      await server.listen();
      url = server.resolvedUrls!.local[0]!.replace(/\/$/, '');
    });
    afterAll(async () => {
      await server?.close();
    });

    test('serves the wasm too', { timeout: 90_000 }, async () => {
      const { page, wasm } = await pageWatchingWasm();
      await openApp(page, url, '/', ['vite']);
      // The dev server does not proxy the gateway: use its absolute URL (CORS '*').
      await showsLiveLogs(page, 'vite', { gatewayUrl: `${gateway}/api/logs/stream` });
      expect(wasm).toHaveLength(1);
      expect(wasm[0]!.status()).toBe(200);
      expect(wasm[0]!.headers()['content-type']).toBe('application/wasm');
      console.log(`Vite dev server served the wasm from ${new URL(wasm[0]!.url()).pathname}`);
      await page.context().close();
    });

    test('two tabs still share one stream (through the worker, or a leader tab when the worker is not served)', { timeout: 90_000 }, async () => {
      const shared = await twoTabsShareOneStream(`${url}/`, 'vite');
      console.log(`Vite dev server: shared worker ${describeWorker(shared)}; tabs ${shared.sharing.join(', ')}`);
      const sharing = [...shared.sharing].sort();
      expect([['worker', 'worker'], ['follower', 'leader']]).toContainEqual(sharing);
      if (sharing[0] === 'worker') expect(shared.worker).toMatchObject({ status: 200, type: expect.stringContaining('javascript') });
    });
  });

  test('the declarations type-check a strict TypeScript consumer (and reject misuse)', () => {
    const tsc = path.resolve(appDir, '../../../node_modules/.bin/tsc');
    let output = '';
    try {
      output = execFileSync(tsc, ['-p', path.join(appDir, 'tsconfig.json')], { encoding: 'utf8' });
    } catch (error) {
      output = String((error as { stdout?: string }).stdout ?? error);
      throw new Error(`tsc failed:\n${output}`);
    }
    expect(output).toBe('');
  });
});
