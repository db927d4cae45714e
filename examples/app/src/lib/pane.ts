// Glue between one `useLogsSSE` result and a LogPane: rows (derived once per
// entry), the arrival count and latency telemetry, and the badge inputs.
import { useMemo } from 'react';
import type { UseLogsSSEResult } from '@datashop/logs-sse-client';
import { useArrivals } from './arrivals';
import { toRow, type LogRow } from './logs';
import type { BadgeProps } from '../components/ConnectionBadge';

export function connectionOf(result: UseLogsSSEResult): Omit<BadgeProps, 'count' | 'received'> {
  return {
    state: result.connectionStatus,
    isConnected: result.isConnected,
    status: result.status,
    channelStatus: result.channelStatus,
    error: result.error,
  };
}

/** The LogPane inputs that every single-channel page passes the same way. */
export function paneInputs(result: UseLogsSSEResult): {
  channels: string[];
  connection: Omit<BadgeProps, 'count' | 'received'>;
  gap: UseLogsSSEResult['gap'];
  onClear: () => void;
} {
  return {
    channels: result.channel ? [result.channel] : [],
    connection: connectionOf(result),
    gap: result.gap,
    onClear: result.clear,
  };
}

export function useChannelPane(paneId: string, result: UseLogsSSEResult): { rows: readonly LogRow[]; received: number } {
  const { entries } = result;
  const rows = useMemo(() => entries.map(toRow), [entries]);
  const received = useArrivals(paneId, [entries], () => entries);
  return { rows, received };
}
