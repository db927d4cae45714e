// The React entry point with real React in node: server rendering gives the
// initial (idle, empty) state without touching the network or the wasm
// module, and a hook outside its provider throws the package's error.
import { createElement as h } from 'react';
import { renderToString } from 'react-dom/server';
import { expect, test, vi } from 'vitest';

const createRawClient = vi.fn();
vi.mock('../../src/wasm.js', () => ({ createRawClient }));
const { LogsSSEProvider, useLogsSSE, useConnectionStatus } = await import('../../src/index.js');

function Logs() {
  const { logs, connectionStatus, isConnected, lastLog, error } = useLogsSSE({
    service: 'etl',
    workspace_id: 'ws1',
    workflow_id: 'wf1',
    maxLogs: 200,
    filter: (log) => log.execution_id === 'e1',
  });
  const status = useConnectionStatus();
  return h('p', null, `${connectionStatus} ${status.state} ${logs.length} ${String(isConnected)} ${String(lastLog)} ${String(error)}`);
}

test('server rendering shows the idle, empty state and loads nothing', () => {
  const html = renderToString(h(LogsSSEProvider, { gatewayUrl: '/api/logs/stream' }, h(Logs)));
  expect(html).toBe('<p>idle idle 0 false null null</p>');
  expect(createRawClient).not.toHaveBeenCalled();
});

test('a hook outside the provider throws a LogsSSEError naming it', () => {
  expect(() => renderToString(h(Logs))).toThrow(
    expect.objectContaining({ name: 'LogsSSEError', code: 'no_provider', message: expect.stringContaining('useLogsSSE() must be used inside <LogsSSEProvider>') }),
  );
});

test('the provider keeps the token (value or getter) for when the gateway accepts it', async () => {
  const { useLogsSSEClient } = await import('../../src/index.js');
  const clients: { getToken(): Promise<string | null> }[] = [];
  function Grab() {
    clients.push(useLogsSSEClient());
    return null;
  }
  renderToString(h(LogsSSEProvider, { token: 'abc' }, h(Grab)));
  renderToString(h(LogsSSEProvider, { token: 'abc', getToken: async () => 'fresh' }, h(Grab)));
  renderToString(h(LogsSSEProvider, null, h(Grab)));
  expect(await Promise.all(clients.map((c) => c.getToken()))).toEqual(['abc', 'fresh', null]);
});
