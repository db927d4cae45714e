// Entry point `@datashop/logs-sse-client/core`: everything that works
// without React (the client, the store behind the hooks, merging).

export { createLogsClient, DEFAULT_GATEWAY_URL, DEFAULT_RELEASE_DELAY_MS } from './client.js';
export type { LogsSSEClient } from './client.js';
export { ChannelStore } from './store.js';
export type { ChannelState, ChannelStoreOptions } from './store.js';
export { channelFromOptions } from './channel.js';
export type { ChannelOptions, ChannelTarget } from './channel.js';
export { mergeLogs } from './merge.js';
export type { MergeLogsOptions } from './merge.js';
export { LogsSSEError } from './errors.js';
export type { LogsSSEErrorCode } from './errors.js';
export { VERSION } from './version.js';
export type * from './types.js';
