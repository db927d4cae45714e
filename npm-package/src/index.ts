// Entry point `@datashop/logs-sse-client`: the React provider and hooks, and
// everything of the framework-free core.

export * from './core.js';
export { LogsSSEProvider, LogsSSEContext, useLogsSSEClient } from './provider.js';
export type { LogsSSEProviderProps } from './provider.js';
export { useLogsSSE, useConnectionStatus, useMergedLogs } from './hooks.js';
export type { UseLogsSSEOptions, UseLogsSSEResult } from './hooks.js';
