// The all-services view (/all): every log of the workspace from the three
// services at once, on their service-level channels (`logs:etl:{ws}` etc.),
// merged into one timeline in gateway order — an ETL run, the FAAS workflow
// it triggers and the functions that workflow calls, line by line.
import { useMemo } from 'react';
import { LogsSSEProvider, useLogsSSE, type UseLogsSSEResult } from '@datashop/logs-sse-client';
import { LogPane } from '../../components/LogPane';
import { useArrivals } from '../../lib/arrivals';
import { toRow, withoutTrace, type LogRow } from '../../lib/logs';
import { connectionOf } from '../../lib/pane';
import { BACKFILL, DEFAULT_WORKSPACE } from '../../scenario';
import { STREAM } from '../../auth';
import { useLocation } from '../../shell/router';

export function AllServicesPage() {
  return (
    <LogsSSEProvider {...STREAM}>
      <WorkspaceLogs />
    </LogsSSEProvider>
  );
}

function useServiceChannel(service: string, workspace_id: string): UseLogsSSEResult {
  return useLogsSSE({
    channel: `logs:${service}:${workspace_id}`,
    maxLogs: 5000,
    persistence: true,
    persistenceKey: `all-logs-${service}-${workspace_id}`,
    history: BACKFILL,
    filter: withoutTrace,
  });
}

function WorkspaceLogs() {
  const { query } = useLocation();
  const workspace_id = query.get('ws') || DEFAULT_WORKSPACE;
  const etl = useServiceChannel('etl', workspace_id);
  const faas = useServiceChannel('faas', workspace_id);
  const fn = useServiceChannel('function', workspace_id);
  const results = [etl, faas, fn];

  const rows = useMemo(
    () => mergeTimelines([etl.entries.map(toRow), faas.entries.map(toRow), fn.entries.map(toRow)]),
    [etl.entries, faas.entries, fn.entries],
  );
  const received = useArrivals('all', [etl.entries, faas.entries, fn.entries], () => rows.map((row) => row.entry));

  // One badge for three channels: live when all three are; the first problem otherwise.
  const worst = results.find((r) => !r.isConnected) ?? etl;
  const connection = { ...connectionOf(worst), isConnected: results.every((r) => r.isConnected) };
  const gap = results.find((r) => r.gap !== null)?.gap ?? null;

  return (
    <LogPane
      paneId="all"
      title="All services"
      channels={results.map((r) => r.channel ?? '')}
      rows={rows}
      received={received}
      connection={connection}
      gap={gap}
      onClear={() => results.forEach((r) => r.clear())}
      showSource
      emptyHint={<p className="empty-text">Every log of workspace <code>{workspace_id}</code> shows up here, from every service.</p>}
    />
  );
}

/** Gateway order across channels: receive time, then the gateway's sequence number. */
function before(a: LogRow, b: LogRow): boolean {
  return a.entry.ts !== b.entry.ts ? a.entry.ts < b.entry.ts : seq(a) < seq(b);
}

function seq(row: LogRow): number {
  return Number(row.key.slice(row.key.lastIndexOf('-') + 1));
}

/** Merges lists that are each in gateway order into one (linear). */
function mergeTimelines(lists: LogRow[][]): LogRow[] {
  const out: LogRow[] = [];
  const at = lists.map(() => 0);
  for (;;) {
    let pick = -1;
    for (let i = 0; i < lists.length; i += 1) {
      const row = lists[i]![at[i]!];
      if (row !== undefined && (pick < 0 || before(row, lists[pick]![at[pick]!]!))) pick = i;
    }
    if (pick < 0) return out;
    out.push(lists[pick]![at[pick]!]!);
    at[pick]! += 1;
  }
}
