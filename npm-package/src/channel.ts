// Turning the hook's options into a channel name.
//
// The full validation of channel names belongs to the shared `protocol`
// parser inside the wasm client; this only assembles
// `logs:{service}:{workspace_id}[:{workflow_id}]` and refuses a segment that
// would change the channel's shape (a `:` or `,` inside an id).

import { LogsSSEError } from './errors.js';

export interface ChannelOptions {
  /** A full channel name; wins over the parts below. */
  channel?: string | null;
  service?: string | null;
  workspace_id?: string | number | null;
  /** The resource: a workflow id, or a function id for function logs. */
  workflow_id?: string | number | null;
}

/** A channel to subscribe, nothing yet (ids still loading), or why not. */
export type ChannelTarget =
  | { readonly channel: string; readonly error: null }
  | { readonly channel: null; readonly error: LogsSSEError | null };

const WAITING: ChannelTarget = { channel: null, error: null };

export function channelFromOptions(options: ChannelOptions): ChannelTarget {
  if (options.channel != null && options.channel !== '') {
    return { channel: options.channel, error: null };
  }
  if (options.service == null || options.service === '') {
    return {
      channel: null,
      error: new LogsSSEError('invalid_options', 'useLogsSSE needs `channel`, or `service` and `workspace_id`'),
    };
  }
  const workspace = segment(options.workspace_id);
  if (workspace === null) return WAITING;
  const parts = [options.service, workspace];
  // An omitted workflow_id means the service-level channel; a present but
  // empty one (e.g. still loading) means "not yet".
  if ('workflow_id' in options) {
    const resource = segment(options.workflow_id);
    if (resource === null) return WAITING;
    parts.push(resource);
  }
  const bad = parts.find((part) => /[:,\s]/.test(part));
  if (bad !== undefined) {
    return {
      channel: null,
      error: new LogsSSEError('invalid_channel', `channel segment ${JSON.stringify(bad)} may not contain ':', ',' or spaces`),
    };
  }
  return { channel: `logs:${parts.join(':')}`, error: null };
}

function segment(value: string | number | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const text = String(value);
  return text === '' ? null : text;
}
