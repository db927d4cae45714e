// The datashop-faas-function micro frontend's log page (/functions/logs):
// the logs of one function, live, filterable by execution. The execution
// filter works on the lines held (instant, and the earlier lines of a
// running execution stay visible); `?execution=` deep-links to one.
import { useMemo } from 'react';
import { LogsSSEProvider, useLogsSSE } from '@datashop/logs-sse-client';
import { LogPane } from '../../components/LogPane';
import { Picker } from '../../components/Picker';
import { formatCount, withoutTrace, type LogRow } from '../../lib/logs';
import { paneInputs, useChannelPane } from '../../lib/pane';
import { BACKFILL, DEFAULT_WORKSPACE, FUNCTIONS } from '../../scenario';
import { STREAM } from '../../auth';
import { setQuery, useLocation } from '../../shell/router';

export function FunctionLogsPage({ compact = false }: { compact?: boolean }) {
  return (
    <LogsSSEProvider {...STREAM}>
      <FunctionExecutionLogs compact={compact} />
    </LogsSSEProvider>
  );
}

const ALL = '';

function FunctionExecutionLogs({ compact }: { compact: boolean }) {
  const { query } = useLocation();
  const workspace_id = query.get('ws') || DEFAULT_WORKSPACE;
  const function_id = query.get('function') || FUNCTIONS[0];
  const execution = query.get('execution') ?? ALL;

  const result = useLogsSSE({
    service: 'function',
    workspace_id,
    workflow_id: function_id, // the resource segment: a function id here
    maxLogs: 20000,
    persistence: true,
    persistenceKey: `function-logs-${workspace_id}-${function_id}`,
    history: BACKFILL,
    filter: withoutTrace,
  });
  const { rows, received } = useChannelPane('functions', result);
  const executions = useExecutions(rows);
  const shown = useMemo(() => (execution === ALL ? rows : rows.filter((row) => row.execution === execution)), [rows, execution]);

  return (
    <LogPane
      paneId="functions"
      title="Function execution logs"
      {...paneInputs(result)}
      rows={shown}
      received={received}
      compact={compact}
      controls={
        <>
          <Picker
            label="Function"
            value={function_id}
            options={FUNCTIONS}
            onChange={(value) => setQuery({ function: value, execution: null })}
            testId="function-picker"
          />
          <Picker
            label="Execution"
            value={execution}
            options={[{ value: ALL, label: `All executions (${executions.length})` }, ...executions]}
            onChange={(value) => setQuery({ execution: value })}
            testId="execution-picker"
          />
        </>
      }
      emptyHint={
        <p className="empty-text">
          The pipeline calls <code>fn-geocode</code> and <code>fn-fraud-score</code>; the burst scenario floods{' '}
          <code>fn-clickstream-parser</code>.
        </p>
      }
    />
  );
}

/** The executions seen in the held lines, newest first, with their line counts. */
function useExecutions(rows: readonly LogRow[]): { value: string; label: string }[] {
  return useMemo(() => {
    const counts = new Map<string, number>();
    for (const row of rows) if (row.execution !== null) counts.set(row.execution, (counts.get(row.execution) ?? 0) + 1);
    return [...counts].reverse().map(([id, n]) => ({ value: id, label: `${id} (${formatCount(n)})` }));
  }, [rows]);
}
