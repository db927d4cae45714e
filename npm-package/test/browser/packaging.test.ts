// Packaging: the packed package works in a Vite app and in a webpack 5 app
// with no wasm plugin or config (both built by the global setup from the
// `npm pack` tarball), in Vite's dev server (dependency pre-bundling), and
// its type declarations serve a strict TypeScript consumer.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { launchBrowser, newPage } from '../support/browser.js';
import { publish } from '../support/gateway.js';
import { mount, openApp, uniqueWorkspace, waitConnected, waitForCount, type Bundle } from '../support/app.js';

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

  test("Vite's dev server (with dependency pre-bundling) serves the wasm too", { timeout: 90_000 }, async () => {
    const { createServer } = await import('vite');
    const server = await createServer({
      root: appDir,
      configFile: path.join(appDir, 'vite.config.js'),
      // A cache of its own, so a stale pre-bundle from another run is not reused.
      cacheDir: path.join(appDir, 'node_modules/.vite-test'),
      server: { host: '127.0.0.1', port: 0, strictPort: false },
      optimizeDeps: { force: true },
      logLevel: 'warn',
    });
    try {
      await server.listen();
      const url = server.resolvedUrls!.local[0]!;
      const { page, wasm } = await pageWatchingWasm();
      await openApp(page, url.replace(/\/$/, ''), '/', ['vite']);
      // The dev server does not proxy the gateway: use its absolute URL (CORS '*').
      await showsLiveLogs(page, 'vite', { gatewayUrl: `${gateway}/api/logs/stream` });
      expect(wasm).toHaveLength(1);
      expect(wasm[0]!.status()).toBe(200);
      expect(wasm[0]!.headers()['content-type']).toBe('application/wasm');
      console.log(`Vite dev server served the wasm from ${new URL(wasm[0]!.url()).pathname}`);
      await page.context().close();
    } finally {
      await server.close();
    }
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
