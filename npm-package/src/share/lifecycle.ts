// The page lifecycle a shared connection follows: a tab leaves the owner
// when it is hidden for the back/forward cache (`pagehide`) or frozen
// (`freeze`: a frozen tab runs nothing, so it must not hold channels or the
// leadership, nor let messages pile up), and joins again on `pageshow` /
// `resume`, from its own cursors. A page that leaves this way stays
// eligible for the back/forward cache.

export interface Lifecycle {
  /** Stops following the page. */
  stop(): void;
}

/** Calls `suspend` when the page is hidden for the cache or frozen, `resume` when it is back. */
export function followLifecycle(suspend: () => void, resume: () => void): Lifecycle {
  const doc = (globalThis as { document?: Document }).document;
  const win = globalThis as unknown as Partial<Window>;
  if (doc === undefined || typeof win.addEventListener !== 'function') return { stop: () => undefined };
  let suspended = false;
  const leave = (): void => {
    if (suspended) return;
    suspended = true;
    suspend();
  };
  const back = (): void => {
    if (!suspended) return;
    suspended = false;
    resume();
  };
  const onPageShow = (event: Event): void => {
    if ((event as PageTransitionEvent).persisted) back();
  };
  win.addEventListener('pagehide', leave);
  win.addEventListener('pageshow', onPageShow);
  doc.addEventListener('freeze', leave);
  doc.addEventListener('resume', back);
  return {
    stop: () => {
      win.removeEventListener?.('pagehide', leave);
      win.removeEventListener?.('pageshow', onPageShow);
      doc.removeEventListener('freeze', leave);
      doc.removeEventListener('resume', back);
    },
  };
}

/** Whether the page is visible now (a page without `document` counts as visible). */
export function pageVisible(): boolean {
  const doc = (globalThis as { document?: Document }).document;
  return doc === undefined || doc.visibilityState !== 'hidden';
}

/** Calls `changed(visible)` on every visibility change; returns the function that stops it. */
export function onVisibility(changed: (visible: boolean) => void): () => void {
  const doc = (globalThis as { document?: Document }).document;
  if (doc === undefined) return () => undefined;
  const listener = (): void => changed(pageVisible());
  doc.addEventListener('visibilitychange', listener);
  return () => doc.removeEventListener('visibilitychange', listener);
}
