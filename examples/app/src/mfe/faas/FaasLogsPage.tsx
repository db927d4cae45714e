// The datashop-faas micro frontend's log page (/faas/logs): the logs of one
// FAAS workflow of a workspace, live, with its own LogsSSEProvider.
import { LogsSSEProvider, useLogsSSE } from '@datashop/logs-sse-client';
import { LogPane } from '../../components/LogPane';
import { Picker } from '../../components/Picker';
import { withoutTrace } from '../../lib/logs';
import { paneInputs, useChannelPane } from '../../lib/pane';
import { BACKFILL, DEFAULT_WORKSPACE, FAAS_WORKFLOWS } from '../../scenario';
import { STREAM } from '../../auth';
import { setQuery, useLocation } from '../../shell/router';

export function FaasLogsPage({ compact = false }: { compact?: boolean }) {
  return (
    <LogsSSEProvider {...STREAM}>
      <FaasWorkflowLogs compact={compact} />
    </LogsSSEProvider>
  );
}

function FaasWorkflowLogs({ compact }: { compact: boolean }) {
  const { query } = useLocation();
  const workspace_id = query.get('ws') || DEFAULT_WORKSPACE;
  const workflow_id = query.get('flow') || FAAS_WORKFLOWS[0];

  const result = useLogsSSE({
    service: 'faas',
    workspace_id,
    workflow_id,
    maxLogs: 5000,
    persistence: true,
    persistenceKey: `faas-logs-${workspace_id}-${workflow_id}`,
    history: BACKFILL,
    filter: withoutTrace,
  });
  const { rows, received } = useChannelPane('faas', result);

  return (
    <LogPane
      paneId="faas"
      title="FAAS workflow logs"
      {...paneInputs(result)}
      rows={rows}
      received={received}
      compact={compact}
      controls={
        <Picker
          label="Workflow"
          value={workflow_id}
          options={FAAS_WORKFLOWS}
          onChange={(value) => setQuery({ flow: value })}
          testId="flow-picker"
        />
      }
      emptyHint={<p className="empty-text">Each ETL run of the demo triggers <code>flow-enrich-orders</code>.</p>}
    />
  );
}
