// How the demo's log stream signs in. By default it does not: the demo
// gateway allows anonymous subscribers. Two sign-ins, chosen in the address
// bar and remembered for the tab (sessionStorage), so a reload keeps them:
//   - `?token-url=URL` (a loopback URL): a subscriber JWT fetched from URL
//     whenever the package asks for one, as an app's backend would hand it
//     out (the gateway needs `--allow-query-token`);
//   - `?credentials=include`: the gateway's cookie is sent (`withCredentials`),
//     no token.
// Every provider of the page takes the same options: `withCredentials`
// selects the connection, and one module-level `getToken` is the one token
// source the package wants for it.
import type { LogsSSEProviderProps } from '@datashop/logs-sse-client';
import { GATEWAY_URL } from './scenario';

const TOKEN_URL_KEY = 'datashop-demo:token-url';
const CREDENTIALS_KEY = 'datashop-demo:credentials';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** A token endpoint slower than this fails the getter (the package then retries with backoff). */
const TOKEN_TIMEOUT_MS = 5_000;

/** `?param=…` when `read` accepts it (and then stored for the tab), else what the tab stored before. */
function remembered(param: string, key: string, read: (asked: string) => string | null): string | null {
  const asked = new URLSearchParams(window.location.search).get(param);
  if (asked !== null) {
    const value = read(asked);
    if (value !== null) sessionStorage.setItem(key, value);
  }
  return sessionStorage.getItem(key);
}

const tokenUrl = remembered('token-url', TOKEN_URL_KEY, (asked) => {
  try {
    const url = new URL(asked);
    return LOOPBACK.has(url.hostname) ? url.href : null;
  } catch {
    return null; // not a URL: ignored
  }
});
const withCredentials = remembered('credentials', CREDENTIALS_KEY, (asked) => (asked === 'include' ? asked : null)) === 'include';

/** The subscriber JWT from the token endpoint: the body of its 200 answer. */
async function fetchToken(): Promise<string> {
  const response = await fetch(tokenUrl!, { cache: 'no-store', signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`the token endpoint answered ${response.status}`);
  return (await response.text()).trim();
}

/** The props every LogsSSEProvider of the demo takes: the gateway and the sign-in. */
export const STREAM: Pick<LogsSSEProviderProps, 'gatewayUrl' | 'getToken' | 'withCredentials'> = {
  gatewayUrl: GATEWAY_URL,
  ...(tokenUrl !== null ? { getToken: fetchToken } : {}),
  ...(withCredentials ? { withCredentials: true } : {}),
};
