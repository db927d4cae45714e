// Mounts the design's components (components.jsx) for the end-to-end test:
// one LogsSSEProvider at the root, the ids from the query string, each
// component in a labelled section so the test can read its rows.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { FunctionLogs, Logs, LogsComponent, LogsSSEProvider, WorkflowLogs } from './components.jsx';

const params = new URLSearchParams(window.location.search);
const workspace_id = params.get('workspace_id');

function Section({ id, children }) {
  return (
    <section id={id}>
      <h2>{id}</h2>
      {children}
    </section>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <LogsSSEProvider gatewayUrl="/api/logs/stream">
      <Section id="logs-component">
        <LogsComponent service="etl" workspace_id={workspace_id} workflow_id={params.get('other_workflow_id')} />
      </Section>
      <Section id="logs">
        <Logs workspace_id={workspace_id} workflow_id={params.get('workflow_id')} />
      </Section>
      <Section id="workflow-logs">
        <WorkflowLogs workspace_id={workspace_id} workflow_id={params.get('flow_id')} />
      </Section>
      <Section id="function-logs">
        <FunctionLogs workspace_id={workspace_id} function_id={params.get('function_id')} />
      </Section>
    </LogsSSEProvider>
  </StrictMode>,
);
