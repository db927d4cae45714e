// The demo's world: the workspace and the resources the demo publisher's
// scenarios log for (see examples/publisher/scenarios.mjs). Pages offer these
// in their selectors and also accept any id from the address bar.

export const GATEWAY_URL = '/api/logs/stream';

export const DEFAULT_WORKSPACE = 'ws-demo';

/** ETL pipelines (datashop-indata). */
export const ETL_WORKFLOWS = ['wf-daily-sales', 'wf-customer-sync'] as const;
/** FAAS workflows (datashop-faas). */
export const FAAS_WORKFLOWS = ['flow-enrich-orders', 'flow-customer-360'] as const;
/** Functions (datashop-faas-function); the last one is the high-volume one. */
export const FUNCTIONS = ['fn-geocode', 'fn-fraud-score', 'fn-merge-profiles', 'fn-clickstream-parser'] as const;

/**
 * The demo publisher's control endpoint: VITE_DEMO_CONTROL_URL at build time,
 * else the page's host on the next port (scripts/demo.sh starts it there).
 */
export function controlUrl(): string {
  const configured = import.meta.env.VITE_DEMO_CONTROL_URL as string | undefined;
  if (configured) return configured.replace(/\/+$/, '');
  const port = Number(window.location.port || (window.location.protocol === 'https:' ? 443 : 80)) + 1;
  return `${window.location.protocol}//${window.location.hostname}:${port}`;
}
