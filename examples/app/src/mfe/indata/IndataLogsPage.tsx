// The datashop-indata micro frontend's log page (/indata/logs): the logs of
// one ETL pipeline (workflow) of a workspace, live. It brings its own
// LogsSSEProvider, as a separately deployed micro frontend would; the
// package joins it to the page's one connection.
import { LogsSSEProvider, useLogsSSE } from '@datashop/logs-sse-client';
import { LogPane } from '../../components/LogPane';
import { Picker } from '../../components/Picker';
import { withoutTrace } from '../../lib/logs';
import { paneInputs, useChannelPane } from '../../lib/pane';
import { BACKFILL, DEFAULT_WORKSPACE, ETL_WORKFLOWS } from '../../scenario';
import { STREAM } from '../../auth';
import { setQuery, useLocation } from '../../shell/router';

export function IndataLogsPage({ compact = false }: { compact?: boolean }) {
  return (
    <LogsSSEProvider {...STREAM}>
      <EtlWorkflowLogs compact={compact} />
    </LogsSSEProvider>
  );
}

function EtlWorkflowLogs({ compact }: { compact: boolean }) {
  const { query } = useLocation();
  const workspace_id = query.get('ws') || DEFAULT_WORKSPACE;
  const workflow_id = query.get('workflow') || ETL_WORKFLOWS[0];

  const result = useLogsSSE({
    service: 'etl',
    workspace_id,
    workflow_id,
    maxLogs: 5000,
    persistence: true,
    persistenceKey: `etl-logs-${workspace_id}-${workflow_id}`,
    history: BACKFILL,
    filter: withoutTrace,
  });
  const { rows, received } = useChannelPane('indata', result);

  return (
    <LogPane
      paneId="indata"
      title="ETL pipeline logs"
      {...paneInputs(result)}
      rows={rows}
      received={received}
      compact={compact}
      controls={
        <Picker
          label="Workflow"
          value={workflow_id}
          options={ETL_WORKFLOWS}
          onChange={(value) => setQuery({ workflow: value })}
          testId="workflow-picker"
        />
      }
      emptyHint={<p className="empty-text">The demo publisher runs <code>wf-daily-sales</code> every few seconds.</p>}
    />
  );
}
