// LogPane owns a log view as people use one: the toolbar (text filter,
// follow, clear, page-specific selectors), the connection badge, the
// virtualized list with level colours and timestamps, follow mode that pauses
// when the user scrolls up and offers "N new lines" to jump back, a clear
// empty state, the gap notice, and a details drawer with the selected log's
// full JSON (as text).
import { useCallback, useDeferredValue, useMemo, useState, type ReactNode } from 'react';
import type { GapInfo } from '@datashop/logs-sse-client';
import { ConnectionBadge, type BadgeProps } from './ConnectionBadge';
import { LogRow } from './LogRow';
import { VirtualList } from './VirtualList';
import { formatCount, formatTime, type LogRow as Row } from '../lib/logs';

const ROW_HEIGHT = 22;

export interface LogPaneProps {
  paneId: string;
  title: string;
  /** The channel(s) shown, for the header. */
  channels: readonly string[];
  /** The pane's rows, oldest first. */
  rows: readonly Row[];
  connection: Omit<BadgeProps, 'count' | 'received'>;
  received: number;
  gap: GapInfo | null;
  /** Show the service/resource of each line (views that mix channels). */
  showSource?: boolean;
  /** Page-specific controls (workflow, execution…), shown left of the filter. */
  controls?: ReactNode;
  onClear: () => void;
  /** What to suggest while nothing has arrived yet. */
  emptyHint?: ReactNode;
  compact?: boolean;
}

export function LogPane(props: LogPaneProps) {
  const { paneId, rows, received, connection } = props;
  const [query, setQuery] = useState('');
  const deferredQuery = useDeferredValue(query.trim().toLowerCase());
  const [follow, setFollow] = useState(true);
  const [pausedAt, setPausedAt] = useState(0);
  const [selected, setSelected] = useState<string | null>(null);

  const visible = useMemo(
    () => (deferredQuery === '' ? rows : rows.filter((row) => row.haystack.includes(deferredQuery))),
    [rows, deferredQuery],
  );

  const pause = () => {
    setPausedAt(received);
    setFollow(false);
  };
  const onUserScroll = (atBottom: boolean) => {
    if (follow && !atBottom) pause();
    else if (!follow && atBottom) setFollow(true);
  };
  const keyAt = useCallback((i: number) => visible[i]!.key, [visible]);
  const onSelect = useCallback((key: string) => setSelected((was) => (was === key ? null : key)), []);
  const renderRow = (i: number, style: { top: number; height: number }) => {
    const row = visible[i]!;
    return (
      <LogRow
        key={row.key}
        row={row}
        top={style.top}
        height={style.height}
        showSource={props.showSource ?? false}
        selected={row.key === selected}
        onSelect={onSelect}
      />
    );
  };

  const newLines = follow ? 0 : Math.max(0, received - pausedAt);
  const selectedRow = selected === null ? null : (visible.find((row) => row.key === selected) ?? null);

  return (
    <section
      className={`pane${props.compact ? ' pane-compact' : ''}`}
      data-testid={`pane-${paneId}`}
      data-received={received}
      data-count={rows.length}
      data-follow={follow ? 'true' : 'false'}
    >
      <header className="pane-head">
        <div className="pane-title">
          <h2>{props.title}</h2>
          <div className="pane-channels">
            {props.channels.map((channel) => (
              <code key={channel}>{channel}</code>
            ))}
          </div>
        </div>
        <ConnectionBadge {...connection} count={rows.length} received={received} />
      </header>

      <div className="pane-toolbar">
        {props.controls}
        <input
          className="filter"
          type="search"
          placeholder="Filter lines…"
          value={query}
          onChange={(event) => setQuery(event.target.value)}
          aria-label="Filter lines"
          data-testid="text-filter"
        />
        <button
          type="button"
          className={`toggle${follow ? ' on' : ''}`}
          onClick={() => (follow ? pause() : setFollow(true))}
          aria-pressed={follow}
          data-testid="follow-toggle"
        >
          {follow ? 'Following' : 'Paused'}
        </button>
        <button type="button" className="ghost" onClick={props.onClear} data-testid="clear">
          Clear
        </button>
      </div>

      {props.gap !== null && (
        <div className="gap-notice" role="status" data-testid="gap-notice">
          Some logs may be missing here: the gateway restarted or no longer held them
          {props.gap.from ? ` (after ${props.gap.from})` : ''}. Older lines come from the service's log history.
        </div>
      )}

      <div className="pane-body">
        {visible.length === 0 ? (
          <EmptyState {...props} query={deferredQuery} onResetQuery={() => setQuery('')} />
        ) : (
          <VirtualList
            count={visible.length}
            rowHeight={ROW_HEIGHT}
            keyAt={keyAt}
            renderRow={renderRow}
            follow={follow}
            onUserScroll={onUserScroll}
            label={props.title}
          />
        )}
        {newLines > 0 && (
          <button type="button" className="new-lines" onClick={() => setFollow(true)} data-testid="new-lines">
            ↓ {formatCount(newLines)} new {newLines === 1 ? 'line' : 'lines'}
          </button>
        )}
      </div>

      {selectedRow !== null && <Details row={selectedRow} onClose={() => setSelected(null)} />}
    </section>
  );
}

/** What an empty pane says: why it is empty and what would fill it. */
function EmptyState(props: LogPaneProps & { query: string; onResetQuery: () => void }) {
  const { connection } = props;
  if (props.rows.length > 0 && props.query !== '') {
    return (
      <div className="empty" data-testid="empty-state">
        <p className="empty-title">No lines match “{props.query}”</p>
        <button type="button" className="ghost" onClick={props.onResetQuery}>
          Clear the filter
        </button>
      </div>
    );
  }
  const title = connection.isConnected
    ? 'Waiting for logs'
    : connection.state === 'reconnecting' || connection.state === 'failed'
      ? 'Not connected to the log stream'
      : 'Connecting to the log stream…';
  return (
    <div className="empty" data-testid="empty-state">
      <p className="empty-title">{title}</p>
      <p className="empty-text">
        {connection.isConnected
          ? 'New lines appear here the moment the service publishes them.'
          : (connection.error?.message ?? 'Lines published meanwhile are delivered once the stream is back.')}
      </p>
      {connection.isConnected && props.emptyHint}
    </div>
  );
}

/** The selected log in full: where it came from and its JSON, as text. */
function Details({ row, onClose }: { row: Row; onClose: () => void }) {
  return (
    <aside className="details" data-testid="details">
      <div className="details-head">
        <span className={`row-level lvl-${row.level}`}>{row.level.toUpperCase()}</span>
        <span>{formatTime(row.time)}</span>
        <code>{row.channel}</code>
        <code>cursor {row.key}</code>
        <button type="button" className="ghost" onClick={onClose} aria-label="Close details">
          ✕
        </button>
      </div>
      <pre>{JSON.stringify(row.entry.logData, null, 2)}</pre>
    </aside>
  );
}
