// The React examples of the Datashop Logs SSE design document, reproduced as
// the design writes them: a generic LogsComponent, the ETL page's Logs (API
// logs plus live logs, persisted), the FAAS page's WorkflowLogs and the
// function page's FunctionLogs. Only the imports and the API call standing in
// for each micro frontend's own log endpoint are added. They render each log
// as `{log.timestamp} [{log.level}] {log.message}` keyed by `log.id`, which
// the publisher SDKs provide (examples/e2e/design.test.mjs checks that every
// log shows with its timestamp and React warns about nothing).
import { useEffect, useState } from 'react';
import { LogsSSEProvider, useLogsSSE } from '@datashop/logs-sse-client';

import { fetchWorkflowLogs } from './api.js';

export { LogsSSEProvider };

export function LogsComponent({ service, workspace_id, workflow_id }) {
  const { logs, isConnected } = useLogsSSE({ service, workspace_id, workflow_id });

  return (
    <div>
      <div>{isConnected ? 'Live' : 'Connecting...'}</div>
      {logs.map((log) => (
        <div key={log.id}>
          {log.timestamp} [{log.level}] {log.message}
        </div>
      ))}
    </div>
  );
}

export function Logs({ workspace_id, workflow_id }) {
  const [apiLogs, setApiLogs] = useState([]);

  useEffect(() => {
    fetchWorkflowLogs(workspace_id, workflow_id).then(setApiLogs);
  }, [workspace_id, workflow_id]);

  const { logs: sseLogs } = useLogsSSE({
    service: 'etl',
    workspace_id,
    workflow_id,
    maxLogs: 200,
    persistence: true,
    persistenceKey: `etl-logs-${workspace_id}-${workflow_id}`,
  });

  const allLogs = [...sseLogs, ...apiLogs];

  return (
    <div>
      {allLogs.map((log) => (
        <div key={log.id}>
          {log.timestamp} [{log.level}] {log.message}
        </div>
      ))}
    </div>
  );
}

export function WorkflowLogs({ workspace_id, workflow_id }) {
  const { logs } = useLogsSSE({ service: 'faas', workspace_id, workflow_id });

  return (
    <div>
      {logs.map((log) => (
        <div key={log.id}>
          {log.timestamp} [{log.level}] {log.message}
        </div>
      ))}
    </div>
  );
}

export function FunctionLogs({ workspace_id, function_id }) {
  const { logs } = useLogsSSE({ service: 'function', workspace_id, workflow_id: function_id });

  return (
    <div>
      {logs.map((log) => (
        <div key={log.id}>
          {log.timestamp} [{log.level}] {log.message}
        </div>
      ))}
    </div>
  );
}
