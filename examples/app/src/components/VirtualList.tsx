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
//
// Following reads no layout. The bottom is `count * rowHeight - view height`,
// the view height comes from a ResizeObserver, and the scroll to it is made
// from that observer's callback, which runs after the browser's own layout of
// the frame: in Chromium writing `scrollTop` (like reading `scrollHeight`)
// forces a synchronous layout when the DOM changed since the last one, so a
// write right after each commit would cost one layout per list per update.
// The observer watches the rows' box too, whose height is the row count's, so
// new rows reach it once per frame however many commits added them.
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
  const innerRef = useRef<HTMLDivElement>(null);
  /** Where the view is scrolled to, for the window while paused. */
  const [scrollTop, setScrollTop] = useState(0);
  /** The view's height, for the window. */
  const [height, setHeight] = useState(0);
  /** The scrollTop this component set last: scroll events at it are ours, not the user's. */
  const programmatic = useRef(-1);
  /** The heights the ResizeObserver reported last: the view's and the rows' box (`-1`: none yet). */
  const observed = useRef({ view: 0, rows: -1 });
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
    // Paused by the owner (not by a scroll): the window stays where the view is.
    if (!follow && programmatic.current >= 0 && programmatic.current !== scrollTop) setScrollTop(programmatic.current);
  }

  /** Scrolls to `top` unless this component put the view there already. */
  const scrollTo = (el: HTMLElement, top: number) => {
    if (top === programmatic.current) return;
    el.scrollTop = top;
    programmatic.current = top;
  };

  useLayoutEffect(() => {
    const el = ref.current;
    const rows = innerRef.current;
    if (el === null || rows === null) return;
    // Once, when mounted: the first window needs the height before the first paint.
    observed.current.view = el.clientHeight;
    setHeight(observed.current.view);
    const observer = new ResizeObserver((entries) => {
      const seen = observed.current;
      for (const entry of entries) {
        const size = entry.contentBoxSize[0]?.blockSize ?? entry.contentRect.height;
        if (entry.target === el) {
          seen.view = size;
          setHeight(size);
        } else {
          seen.rows = size;
        }
      }
      // Layout is clean here: this write costs no layout of its own.
      if (following.current) scrollTo(el, Math.max(0, seen.rows - seen.view));
    });
    observer.observe(el);
    observer.observe(rows);
    return () => observer.disconnect();
  }, []);

  const total = count * rowHeight;
  const bottom = Math.max(0, total - height);
  const top = following.current ? bottom : scrollTop;

  // After every commit: stick to the bottom, or keep the anchored row in place.
  useLayoutEffect(() => {
    const el = ref.current;
    if (el === null) return;
    if (following.current) {
      anchor.current = null;
      // When the rows' box changed, the observer scrolls after this frame's
      // layout; otherwise (following resumed, nothing new) it is done here.
      if (total === observed.current.rows) scrollTo(el, Math.max(0, total - observed.current.view));
      return;
    }
    if (count === 0) return;
    const a = anchor.current;
    if (a === null) {
      // Paused by the owner: hold the row at the top of the view from now on.
      anchor.current = anchorAt(scrollTop);
      return;
    }
    if (a.index < count && keyAt(a.index) === a.key) return;
    const found = findKey(keyAt, count, a.key, Math.min(a.index, count - 1));
    if (found < 0) return;
    const target = found * rowHeight + a.offset;
    anchor.current = { ...a, index: found };
    el.scrollTop = target;
    programmatic.current = target;
    setScrollTop(target);
  });

  /** The anchor of a view scrolled to `st`: its top row and the offset into it. */
  const anchorAt = (st: number) => {
    const first = Math.min(Math.floor(st / rowHeight), Math.max(0, count - 1));
    return { key: keyAt(first), index: first, offset: st - first * rowHeight };
  };

  const onScroll = () => {
    const el = ref.current;
    if (el === null) return;
    const st = el.scrollTop;
    // Ours (following, or re-anchoring): the window and the anchor already say so.
    if (programmatic.current >= 0 && Math.abs(st - programmatic.current) <= 1) return;
    programmatic.current = -1;
    setScrollTop(st);
    anchor.current = count > 0 ? anchorAt(st) : null;
    const atBottom = st + observed.current.view >= total - rowHeight / 2;
    following.current = atBottom;
    onUserScroll(atBottom);
  };

  const start = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const end = Math.min(count, Math.ceil((top + height) / rowHeight) + overscan);
  const rows: ReactNode[] = [];
  for (let i = start; i < end; i += 1) rows.push(renderRow(i, { top: i * rowHeight, height: rowHeight }));

  return (
    <div ref={ref} className="vlist" onScroll={onScroll} tabIndex={0} role="log" aria-label={label} data-testid="log-list">
      <div ref={innerRef} className="vlist-inner" style={{ height: total }}>
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
