// LogRow owns one line of a log view: time, level, optional service and
// resource tags, and the message — all rendered as text (React escapes it;
// nothing here is ever parsed as HTML).
import { memo } from 'react';
import { formatTime, type LogRow as Row } from '../lib/logs';

interface Props {
  row: Row;
  top: number;
  height: number;
  showSource: boolean;
  selected: boolean;
  onSelect: (key: string) => void;
}

export const LogRow = memo(function LogRow({ row, top, height, showSource, selected, onSelect }: Props) {
  return (
    <div
      className={`row lvl-${row.level}${selected ? ' row-selected' : ''}`}
      style={{ top, height }}
      onClick={() => onSelect(row.key)}
      title={row.message}
      data-cursor={row.key}
    >
      <span className="row-time">{formatTime(row.time)}</span>
      <span className="row-level">{row.level.toUpperCase()}</span>
      {showSource && (
        <span className={`row-source src-${row.service}`}>
          {row.service}
          {row.resource && <span className="row-resource">/{row.resource}</span>}
        </span>
      )}
      {row.execution !== null && <span className="row-exec">{row.execution}</span>}
      <span className="row-msg">{row.message}</span>
    </div>
  );
});
