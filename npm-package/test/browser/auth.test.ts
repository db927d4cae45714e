// Subscriber tokens through the React path: a LogsSSEProvider with getToken
// against a gateway that requires JWTs in `access_token`, in headless
// Chromium with the Vite build of the test app. Tokens come from the test
// server's /token (what an app's session endpoint would do).
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, test } from 'vitest';
import { eventSources, launchBrowser, newPage } from '../support/browser.js';
import { publish } from '../support/gateway.js';
import { mount, openApp, setProvider, uniqueWorkspace, waitConnected, waitForCount, waitForPanel } from '../support/app.js';

const authGateway = inject('authGatewayUrl');
const baseUrl = inject('baseUrl');
const app = 'vite';
let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
beforeEach(async () => {
  page = await newPage(browser);
  await openApp(page, baseUrl, '/vite/', [app]);
});
afterEach(async () => {
  await page.context().close();
});

const tokenCalls = (): Promise<number> => page.evaluate((a) => (window as any).harnesses[a].tokenCalls, app);
const streamUrl = `${authGateway}/api/logs/stream`;

describe('LogsSSEProvider with getToken', () => {
  test('refreshes the token when it expires mid-stream and loses or repeats no log', async () => {
    const ws = uniqueWorkspace('auth');
    // Tokens live 2 to 3 s (`exp` in whole seconds, leeway 0).
    await mount(page, app, {
      id: 'r',
      provider: { gatewayUrl: streamUrl, tokenUrl: `/token?sub=alice&ttl=2&workspaces=${ws}` },
      panels: [{ id: 'p', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf', maxLogs: 5000 } }],
    });
    await waitConnected(page, app, 'p');
    expect(await tokenCalls()).toBe(1);

    // Publish for 7 s, a small batch at a time: across at least two expiries.
    const target = { service: 'etl', workspace_id: ws, workflow_id: 'wf' };
    const start = Date.now();
    let seq = 0;
    while (Date.now() - start < 7_000) {
      await publish(authGateway, target, [{ seq: (seq += 1) }, { seq: (seq += 1) }]);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    const state = await waitForCount(page, app, 'p', seq);
    const calls = await tokenCalls();
    const counted = await eventSources(page);
    console.log(`token refresh through the provider: ${seq} logs over 7 s, ${calls} getToken calls, ${counted.created} EventSources`);
    expect(state.logs.map((log) => log.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(calls).toBeLessThanOrEqual(counted.created); // at most one getToken call per stream
    expect(counted.open).toBe(1);
    expect(state.connectionStatus).toBe('open');
    expect(state.isConnected).toBe(true);
    // The token rides in the stream URL only.
    expect(counted.urls.every((url) => url.includes('access_token=ey'))).toBe(true);
  });

  test('a getToken that arrives after the first render (session loading) connects once it is there', async () => {
    const ws = uniqueWorkspace('auth');
    await mount(page, app, {
      id: 'late',
      provider: { gatewayUrl: streamUrl },
      panels: [{ id: 'p', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf' } }],
    });
    const refused = await waitForPanel(page, app, 'p', "(s) => s.connectionStatus === 'failed'");
    expect(refused.status).toMatchObject({ reason: 'unauthorized', code: 'missing_token', httpStatus: 401 });
    await setProvider(page, app, 'late', { gatewayUrl: streamUrl, tokenUrl: `/token?ttl=60&workspaces=${ws}` });
    await waitConnected(page, app, 'p');
    await publish(authGateway, { service: 'etl', workspace_id: ws, workflow_id: 'wf' }, [{ seq: 1 }]);
    expect((await waitForCount(page, app, 'p', 1)).logs).toEqual([{ seq: 1 }]);
    expect(await tokenCalls()).toBe(1);
  });

  test('a refused token shows failed / unauthorized with the gateway code', async () => {
    const ws = uniqueWorkspace('auth');
    await mount(page, app, {
      id: 'r',
      provider: { gatewayUrl: streamUrl, tokenUrl: `/token?ttl=60&workspaces=${ws}&secret=other` },
      panels: [{ id: 'p', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf' } }],
    });
    const state = await waitForPanel(page, app, 'p', "(s) => s.connectionStatus === 'failed'");
    expect(state.status).toMatchObject({ state: 'failed', reason: 'unauthorized', code: 'invalid_signature', httpStatus: 401 });
    expect(state.error!.code).toBe('invalid_signature');
    expect(state.error!.message).toContain('signature');
    expect(state.error!.message).not.toContain('eyJ');
    expect(state.isConnected).toBe(false);
  });

  test('no granted channel shows forbidden; one denied channel among granted ones fails only its hook', async () => {
    const ws = uniqueWorkspace('auth');
    await mount(page, app, {
      id: 'forbidden',
      provider: { gatewayUrl: streamUrl, tokenUrl: '/token?ttl=60&workspaces=elsewhere' },
      panels: [{ id: 'f', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf' } }],
    });
    const forbidden = await waitForPanel(page, app, 'f', "(s) => s.connectionStatus === 'failed'");
    expect(forbidden.status).toMatchObject({ reason: 'forbidden', code: 'forbidden_channels', httpStatus: 403 });
    expect(forbidden.error!.code).toBe('forbidden_channels');

    // A fresh page: the token grants wf1 only.
    await page.context().close();
    page = await newPage(browser);
    await openApp(page, baseUrl, '/vite/', [app]);
    await mount(page, app, {
      id: 'mixed',
      provider: { gatewayUrl: streamUrl, tokenUrl: `/token?ttl=60&channels=logs:etl:${ws}:wf1` },
      panels: [
        { id: 'granted', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf1' } },
        { id: 'denied', options: { service: 'etl', workspace_id: ws, workflow_id: 'wf2' } },
      ],
    });
    await waitConnected(page, app, 'granted');
    const denied = await waitForPanel(page, app, 'denied', "(s) => s.channelStatus === 'denied'");
    expect(denied.connectionStatus).toBe('open');
    expect(denied.isConnected).toBe(false);
    expect(denied.error!.code).toBe('denied');
    expect(denied.error!.message).toContain('does not grant');
    await publish(authGateway, { service: 'etl', workspace_id: ws, workflow_id: 'wf2' }, [{ seq: 1 }]);
    await publish(authGateway, { service: 'etl', workspace_id: ws, workflow_id: 'wf1' }, [{ seq: 2 }]);
    const granted = await waitForCount(page, app, 'granted', 1);
    expect(granted.logs).toEqual([{ seq: 2 }]);
    expect(granted.error).toBeNull();
  });
});
