// The demo's world: the workspace and the resources the demo publisher's
// scenarios log for (see examples/publisher/scenarios.mjs). Pages offer these
// in their selectors and also accept any id from the address bar.

export const GATEWAY_URL = '/api/logs/stream';

export const DEFAULT_WORKSPACE = 'ws-demo';

/**
 * Every page starts with the last logs the gateway still holds (`history`),
 * so a page opened in the middle of a run shows the run so far. The pages
 * have no API list to concatenate with, so nothing is shown twice; a page
 * restored from sessionStorage resumes from its cursor instead.
 */
export const BACKFILL = 500;

/** ETL pipelines (datashop-indata). */
export const ETL_WORKFLOWS = ['wf-daily-sales', 'wf-customer-sync'] as const;
/** FAAS workflows (datashop-faas). */
export const FAAS_WORKFLOWS = ['flow-enrich-orders', 'flow-customer-360'] as const;
/** Functions (datashop-faas-function); the last one is the high-volume one. */
export const FUNCTIONS = ['fn-geocode', 'fn-fraud-score', 'fn-merge-profiles', 'fn-clickstream-parser'] as const;

const CONTROL_KEY = 'datashop-demo:control-url';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The demo publisher's control endpoint: `?control=URL` in the address bar
 * (a loopback URL; remembered for the tab), else VITE_DEMO_CONTROL_URL at
 * build time, else the page's host on the next port (where scripts/demo.sh
 * starts it).
 */
export function controlUrl(): string {
  const asked = new URLSearchParams(window.location.search).get('control');
  if (asked !== null) {
    try {
      const url = new URL(asked);
      if (LOOPBACK.has(url.hostname)) sessionStorage.setItem(CONTROL_KEY, url.origin);
    } catch {
      // Not a URL: ignored.
    }
  }
  const remembered = sessionStorage.getItem(CONTROL_KEY);
  if (remembered !== null) return remembered;
  const configured = import.meta.env.VITE_DEMO_CONTROL_URL as string | undefined;
  if (configured) return configured.replace(/\/+$/, '');
  const port = Number(window.location.port || (window.location.protocol === 'https:' ? 443 : 80)) + 1;
  return `${window.location.protocol}//${window.location.hostname}:${port}`;
}
