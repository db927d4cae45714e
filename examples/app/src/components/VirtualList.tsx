// VirtualList owns windowing and scrolling of a long list of fixed-height
// rows: only the rows in view (plus a few) are in the DOM, so tens of
// thousands of lines cost what forty do. It also owns "follow": while
// `follow` is set it keeps the newest row in view, and it reports scrolls the
// user made (never its own) so the owner can pause and resume following.
// While paused it keeps the top row in place when rows are dropped at the
// front (a bounded buffer trimming its oldest lines).
//
// Rows have one fixed height, so the window is plain arithmetic — no
// measuring, no dependency. Log lines are single-line (long ones are cut with
// an ellipsis; the full log is one click away), which is what log viewers do.
import { useLayoutEffect, useRef, useState, type ReactNode } from 'react';

export interface VirtualListProps {
  count: number;
  rowHeight: number;
  /** The stable identity of row `index` (keeps the view anchored while paused). */
  keyAt: (index: number) => string;
  renderRow: (index: number, style: { top: number; height: number }) => ReactNode;
  follow: boolean;
  /** Called after a scroll the user made, with whether the list is now at its bottom. */
  onUserScroll: (atBottom: boolean) => void;
  overscan?: number;
  label: string;
}

export function VirtualList({ count, rowHeight, keyAt, renderRow, follow, onUserScroll, overscan = 10, label }: VirtualListProps) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(0);
  /** The scrollTop this component set last: scroll events at it are ours, not the user's. */
  const programmatic = useRef(-1);
  /** While paused: the row at the top of the view and how far it is scrolled past. */
  const anchor = useRef<{ key: string; index: number; offset: number } | null>(null);
  // Whether to stick to the bottom, known at once: a user scroll flips it in
  // the scroll handler, before any render (a log update can render first and
  // would otherwise scroll the list back down under the user's wheel).
  const following = useRef(follow);
  const followProp = useRef(follow);
  if (followProp.current !== follow) {
    followProp.current = follow;
    following.current = follow;
  }

  useLayoutEffect(() => {
    const el = ref.current;
    if (el === null) return;
    setHeight(el.clientHeight);
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const total = count * rowHeight;
  const top = following.current ? Math.max(0, total - height) : scrollTop;

  // After every commit: stick to the bottom, or keep the anchored row in place.
  useLayoutEffect(() => {
    const el = ref.current;
    if (el === null) return;
    if (following.current) {
      anchor.current = null;
      const bottom = Math.max(0, el.scrollHeight - el.clientHeight);
      if (Math.abs(el.scrollTop - bottom) > 1) {
        el.scrollTop = bottom;
        programmatic.current = el.scrollTop;
      }
      return;
    }
    const a = anchor.current;
    if (a === null || count === 0) return;
    if (a.index < count && keyAt(a.index) === a.key) return;
    const found = findKey(keyAt, count, a.key, Math.min(a.index, count - 1));
    if (found < 0) return;
    const target = found * rowHeight + a.offset;
    anchor.current = { ...a, index: found };
    el.scrollTop = target;
    programmatic.current = el.scrollTop;
    setScrollTop(el.scrollTop);
  });

  const onScroll = () => {
    const el = ref.current;
    if (el === null) return;
    const st = el.scrollTop;
    setScrollTop(st);
    const first = Math.min(Math.floor(st / rowHeight), Math.max(0, count - 1));
    anchor.current = count > 0 ? { key: keyAt(first), index: first, offset: st - first * rowHeight } : null;
    if (Math.abs(st - programmatic.current) <= 1) return;
    programmatic.current = -1;
    const atBottom = st + el.clientHeight >= el.scrollHeight - rowHeight / 2;
    following.current = atBottom;
    onUserScroll(atBottom);
  };

  const start = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const end = Math.min(count, Math.ceil((top + height) / rowHeight) + overscan);
  const rows: ReactNode[] = [];
  for (let i = start; i < end; i += 1) rows.push(renderRow(i, { top: i * rowHeight, height: rowHeight }));

  return (
    <div ref={ref} className="vlist" onScroll={onScroll} tabIndex={0} role="log" aria-label={label} data-testid="log-list">
      <div className="vlist-inner" style={{ height: total }}>
        {rows}
      </div>
    </div>
  );
}

/** Index of `key` searching outwards from `hint` (rows move up when the front is trimmed), or -1. */
function findKey(keyAt: (i: number) => string, count: number, key: string, hint: number): number {
  for (let d = 0; d < count; d += 1) {
    const down = hint - d;
    const up = hint + d;
    if (down < 0 && up >= count) break;
    if (down >= 0 && keyAt(down) === key) return down;
    if (d > 0 && up < count && keyAt(up) === key) return up;
  }
  return -1;
}
