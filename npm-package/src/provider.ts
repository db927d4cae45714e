// The React provider: one client handle per provider, joined to the page's
// shared connection while the provider is mounted.
//
// The handle is created during render (it is inert, so a discarded render or
// StrictMode's double render leaks nothing) and takes its reference in an
// effect; children's hooks take their own references, so it does not matter
// that their effects run before the provider's.

import { createContext, createElement, useContext, useEffect, useMemo } from 'react';
import type { ReactElement, ReactNode } from 'react';
import { ClientHandle, type LogsSSEClient } from './client.js';
import { LogsSSEError } from './errors.js';
import type { LogsClientOptions } from './types.js';

export const LogsSSEContext = createContext<LogsSSEClient | null>(null);
LogsSSEContext.displayName = 'LogsSSEContext';

export interface LogsSSEProviderProps extends Omit<LogsClientOptions, 'token'> {
  children?: ReactNode;
  /**
   * The subscriber's JWT, sent as `access_token` in the stream URL (the
   * gateway must run with `--allow-query-token`). For cookie auth pass
   * `withCredentials` instead.
   */
  token?: string | null;
  /**
   * A function returning the token (sync or async, null for none); wins over
   * `token`. Called before the first stream and again whenever the gateway
   * says the token expired; the stream then resumes without losing logs. May
   * be undefined at first (session loading): a connection refused without a
   * token retries once it is set.
   */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Use this client (from `createLogsClient()`) instead of creating one; the provider does not close it. */
  client?: LogsSSEClient;
}

/**
 * Provides the logs client to `useLogsSSE()`. `gatewayUrl` and
 * `withCredentials` select the page's shared connection; the tuning options
 * are read when the provider's client is first used.
 */
export function LogsSSEProvider(props: LogsSSEProviderProps): ReactElement {
  const { children, client, token, getToken, gatewayUrl, withCredentials, ...rest } = props;

  // A new handle only when the connection it selects changes; the other
  // options are read now (they apply when the page's client is created).
  const handle = useMemo<LogsSSEClient>(
    () => client ?? new ClientHandle({ ...rest, gatewayUrl, withCredentials, token: getToken ?? token }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, gatewayUrl, withCredentials],
  );

  useEffect(() => {
    if (handle instanceof ClientHandle) handle.setToken(getToken ?? token);
  }, [handle, token, getToken]);

  useEffect(() => {
    // A client passed in is owned by the caller; our own handle holds the
    // page's connection while the provider is mounted.
    if (client !== undefined || !(handle instanceof ClientHandle)) return undefined;
    handle.retain();
    return () => handle.release();
  }, [handle, client]);

  return createElement(LogsSSEContext.Provider, { value: handle }, children);
}

/** The provider's client (for non-hook code inside the tree). Throws outside a provider. */
export function useLogsSSEClient(): LogsSSEClient {
  return useProviderClient('useLogsSSEClient');
}

/** Internal: the provider's client, or a clear error naming the hook that needed it. */
export function useProviderClient(hookName: string): LogsSSEClient {
  const client = useContext(LogsSSEContext);
  if (client === null) {
    throw new LogsSSEError(
      'no_provider',
      `${hookName}() must be used inside <LogsSSEProvider>. Wrap your micro frontend's root, e.g. ` +
        '<LogsSSEProvider gatewayUrl="/api/logs/stream">…</LogsSSEProvider>',
    );
  }
  return client;
}
