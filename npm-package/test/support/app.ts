// Helpers to drive the test app (test/fixtures/app) in a page: mount trees
// of panels, read what each hook returned, wait for conditions.
import type { Page } from 'playwright-core';

export type Bundle = 'vite' | 'webpack' | 'react18';

export interface PanelSpec {
  id: string;
  options: Record<string, unknown>;
}

export interface MountSpec {
  id: string;
  strict?: boolean;
  provider?: Record<string, unknown>;
  panels: PanelSpec[];
}

export interface PanelState {
  logs: Record<string, unknown>[];
  entries: { channel: string; cursor: string }[];
  lastLog: Record<string, unknown> | null;
  connectionStatus: string;
  isConnected: boolean;
  channel: string | null;
  channelStatus: string | null;
  error: { code: string; message: string } | null;
  status: { state: string; reason?: string; code?: string; httpStatus?: number };
  commits: number;
}

let counter = 0;
/** A workspace id no other test uses, so channels of tests never meet. */
export function uniqueWorkspace(prefix = 'ws'): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}x${counter}`;
}

export async function openApp(page: Page, baseUrl: string, path: string, bundles: Bundle[]): Promise<void> {
  await page.goto(`${baseUrl}${path}`);
  await page.waitForFunction(
    (names) => names.every((name) => (window as unknown as { harnesses?: Record<string, unknown> }).harnesses?.[name]),
    bundles,
  );
}

export function mount(page: Page, bundle: Bundle, spec: MountSpec): Promise<void> {
  return page.evaluate(([b, s]) => (window as any).harnesses[b].mount(s), [bundle, spec] as const);
}

export function setPanels(page: Page, bundle: Bundle, rootId: string, panels: PanelSpec[]): Promise<void> {
  return page.evaluate(([b, r, p]) => (window as any).harnesses[b].setPanels(r, p), [bundle, rootId, panels] as const);
}

export function setProvider(page: Page, bundle: Bundle, rootId: string, provider: Record<string, unknown>): Promise<void> {
  return page.evaluate(([b, r, p]) => (window as any).harnesses[b].setProvider(r, p), [bundle, rootId, provider] as const);
}

export function unmount(page: Page, bundle: Bundle, rootId: string): Promise<void> {
  return page.evaluate(([b, r]) => (window as any).harnesses[b].unmount(r), [bundle, rootId] as const);
}

export function panel(page: Page, bundle: Bundle, id: string): Promise<PanelState | undefined> {
  return page.evaluate(([b, i]) => (window as any).harnesses[b].panels[i], [bundle, id] as const);
}

/** Waits until a panel's latest hook result satisfies `predicate` (a function source evaluated in the page). */
export async function waitForPanel(
  page: Page,
  bundle: Bundle,
  id: string,
  predicate: string,
  timeout = 15_000,
): Promise<PanelState> {
  try {
    await page.waitForFunction(
      ([b, i, p]) => {
        const state = (window as any).harnesses[b].panels[i];
        // eslint-disable-next-line no-new-func
        return state !== undefined && new Function('s', `return (${p})(s)`)(state);
      },
      [bundle, id, predicate] as const,
      { timeout, polling: 50 },
    );
  } catch (error) {
    const state = await panel(page, bundle, id);
    throw new Error(
      `panel ${id} never satisfied ${predicate}; last state: ${JSON.stringify(state && { ...state, logs: state.logs.length })}`,
      { cause: error },
    );
  }
  return (await panel(page, bundle, id))!;
}

export function waitConnected(page: Page, bundle: Bundle, id: string): Promise<PanelState> {
  return waitForPanel(page, bundle, id, '(s) => s.isConnected');
}

export function waitForCount(page: Page, bundle: Bundle, id: string, count: number): Promise<PanelState> {
  return waitForPanel(page, bundle, id, `(s) => s.logs.length >= ${count}`);
}

/** Polls an async condition from the test process until it holds. */
export async function eventually<T>(probe: () => Promise<T>, holds: (value: T) => boolean, what: string, timeout = 15_000): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: T = await probe();
  while (!holds(last)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await probe();
  }
  return last;
}

/** Number of shared clients in the page's registry (all copies of the package). */
export function registrySize(page: Page): Promise<number> {
  return page.evaluate(() => {
    const registry = (globalThis as any)[Symbol.for('@datashop/logs-sse-client:registry:v1')];
    return registry === undefined ? 0 : registry.entries.size;
  });
}
