// The React hooks: `useLogsSSE` (one channel's logs and status) and
// `useConnectionStatus` (the page connection's status), both on
// `useSyncExternalStore` over the framework-free store.

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useSyncExternalStore } from 'react';
import { channelFromOptions } from './channel.js';
import { useProviderClient } from './provider.js';
import { ChannelStore, type ChannelState } from './store.js';
import { mergeLogs, type MergeLogsOptions } from './merge.js';
import type { ConnectionStatus, LogData } from './types.js';

/** Options of `useLogsSSE()`. */
export interface UseLogsSSEOptions<T = LogData> {
  /** Service name, e.g. `'etl'`, `'faas'`, `'function'`. */
  service?: string | null;
  /** Workspace id. While null/undefined/'' the hook waits (idle). */
  workspace_id?: string | number | null;
  /**
   * The resource id: a workflow id, or a function id for function logs.
   * Omit it for the service-level channel (every log of the workspace); while
   * present but null/undefined/'' the hook waits.
   */
  workflow_id?: string | number | null;
  /** A full channel name instead of the parts above, e.g. `'logs:etl:ws123'`. */
  channel?: string | null;
  /** Logs kept, oldest dropped first (1 – 100000). Default 1000. */
  maxLogs?: number;
  /** Keep the logs in `sessionStorage` across reloads and remounts. Default false (true when `persistenceKey` is set). */
  persistence?: boolean;
  /** `sessionStorage` key. Default `datashop-logs-sse:v1:{channel}`. */
  persistenceKey?: string;
  /**
   * Backfill: start with the last `history` logs the gateway still holds,
   * then live (0 – 100000). Default 0: live only, because a component that
   * also loads logs from its API and concatenates both lists would show the
   * backfilled ones twice; with `mergeLogs` / `useMergedLogs` (which drop
   * duplicates) or without an API list, set it. A persisted subscription
   * restored with a cursor resumes there and does not backfill again.
   */
  history?: number;
  /** Keep a log only when this returns true; receives the log's `logData`. Applied as logs arrive. */
  filter?: (log: T) => boolean;
}

/** What `useLogsSSE()` returns. */
export interface UseLogsSSEResult<T = LogData> extends ChannelState<T> {
  /** Empties this hook's logs (also after a remount, when persisted); new logs keep arriving. */
  clear(): void;
}

const useIsomorphicLayoutEffect = typeof window === 'undefined' ? useEffect : useLayoutEffect;

/**
 * Live logs of one channel. Renders at most once per animation frame, shares
 * the page's one connection, and releases the channel on unmount.
 */
export function useLogsSSE<T = LogData>(options: UseLogsSSEOptions<T>): UseLogsSSEResult<T> {
  const client = useProviderClient('useLogsSSE');
  const target = channelFromOptions(options);
  const { maxLogs, persistenceKey, history } = options;
  const persist = options.persistence ?? persistenceKey !== undefined;

  // The latest filter is read per log, so an inline arrow function does not
  // resubscribe on every render.
  const filterRef = useRef(options.filter);
  useIsomorphicLayoutEffect(() => {
    filterRef.current = options.filter;
  });
  const hasFilter = options.filter !== undefined;
  const errorCode = target.error?.code;
  const errorMessage = target.error?.message;

  const store = useMemo(
    () =>
      new ChannelStore<T>(
        client,
        target.channel,
        {
          maxLogs,
          persist,
          persistKey: persist ? persistenceKey : undefined,
          history,
          filter: hasFilter ? () => filterRef.current : undefined,
        },
        target.error,
      ),
    // target.error is a fresh object per render; its code and message identify it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, target.channel, errorCode, errorMessage, maxLogs, persist, persistenceKey, history, hasFilter],
  );
  const state = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  return useMemo(() => ({ ...state, clear: store.clear }), [state, store]);
}

/** The status of the page's connection to the gateway (for a status badge). */
export function useConnectionStatus(): ConnectionStatus {
  const client = useProviderClient('useConnectionStatus');
  const subscribe = useCallback((onChange: () => void) => client.onStatus(onChange), [client]);
  const getSnapshot = useCallback(() => client.status, [client]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

/**
 * `mergeLogs(live, initial, options)` memoised on the two arrays (and the
 * scalar options): recomputed only when either list changes.
 */
export function useMergedLogs<T>(
  live: readonly T[],
  initial: readonly T[] | null | undefined,
  options: MergeLogsOptions<T>,
): readonly T[] {
  const { prefer, direction, limit } = options;
  return useMemo(
    () => mergeLogs(live, initial ?? [], options),
    // The accessors are read when the lists change; inline arrows are fine.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [live, initial, prefer, direction, limit],
  );
}
