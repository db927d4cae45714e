// ConnectionBadge owns how a log view tells its connection health: LIVE when
// the stream is open and the channel granted, otherwise the state and, when
// something is wrong, the reason in words. It also shows the view's log count.
// Its data attributes are what the end-to-end tests read (`data-sharing`: how
// this tab reaches the connection shared by the browser's tabs).
import type { ChannelStatusKind, ConnectionState, ConnectionStatus, LogsSSEError } from '@datashop/logs-sse-client';
import { formatCount } from '../lib/logs';

export interface BadgeProps {
  state: ConnectionState;
  isConnected: boolean;
  status: ConnectionStatus;
  channelStatus: ChannelStatusKind | null;
  error: LogsSSEError | null;
  /** Logs held by the view. */
  count: number;
  /** Logs received since the view opened. */
  received: number;
}

const REASONS: Record<string, string> = {
  network: 'connection lost',
  gateway_unreachable: 'gateway unreachable',
  gateway_error: 'gateway error',
  unauthorized: 'not signed in',
  forbidden: 'not allowed',
  bad_request: 'bad request',
  gateway_closed: 'gateway closed the stream',
  wasm_unavailable: 'client failed to load',
  denied: 'access denied',
  shutdown: 'gateway shutting down',
  slow_consumer: 'fell behind, resuming',
  auth_expired: 'sign-in expired',
};

function describe({ state, isConnected, status, channelStatus, error }: BadgeProps): { label: string; tone: string; reason: string | null } {
  const reason = error ? (REASONS[error.code] ?? error.code) : status.reason ? (REASONS[status.reason] ?? status.reason) : null;
  if (isConnected) return { label: 'LIVE', tone: 'live', reason: null };
  if (channelStatus === 'denied') return { label: 'Denied', tone: 'bad', reason };
  switch (state) {
    case 'open':
      return { label: 'Subscribing', tone: 'wait', reason: null };
    case 'connecting':
      return { label: 'Connecting', tone: 'wait', reason: null };
    case 'reconnecting': {
      const retry = status.retryInMs !== undefined ? ` · retry in ${Math.max(1, Math.round(status.retryInMs / 1000))} s` : '';
      return { label: 'Reconnecting', tone: 'warn', reason: `${reason ?? 'connection lost'}${retry}` };
    }
    case 'failed':
      return { label: 'Disconnected', tone: 'bad', reason };
    case 'closed':
      return { label: 'Closed', tone: 'idle', reason };
    case 'idle':
      return { label: 'Idle', tone: 'idle', reason: null };
  }
}

export function ConnectionBadge(props: BadgeProps) {
  const { label, tone, reason } = describe(props);
  return (
    <div
      className={`badge badge-${tone}`}
      data-testid="connection-badge"
      data-state={props.state}
      data-live={props.isConnected ? 'true' : 'false'}
      data-channel-status={props.channelStatus ?? ''}
      data-reason={props.error?.code ?? props.status.reason ?? ''}
      data-count={props.count}
      data-received={props.received}
      data-sharing={props.status.sharing ?? ''}
      title={props.error?.message ?? props.status.message ?? undefined}
    >
      <span className="badge-dot" aria-hidden="true" />
      <span className="badge-label">{label}</span>
      {reason !== null && <span className="badge-reason">{reason}</span>}
      <span className="badge-count">{formatCount(props.count)} logs</span>
    </div>
  );
}
