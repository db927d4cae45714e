// Stands in for the ETL micro frontend's own API (the logs it stored before
// the page opened), which the design's `Logs` component fetches and shows
// beside the live logs. The records have the shape the SDKs publish.
export const API_LOGS = [
  { id: 'api-1', timestamp: '2026-12-01T09:00:00.000Z', level: 'info', message: 'api: run scheduled' },
  { id: 'api-2', timestamp: '2026-12-01T09:00:01.000Z', level: 'info', message: 'api: run queued' },
];

export function fetchWorkflowLogs(_workspaceId, _workflowId) {
  return Promise.resolve(API_LOGS);
}
