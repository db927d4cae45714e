// The shell's router: the path and query of the address bar as React state,
// pushState navigation and links. Each micro frontend reads its own query
// parameters (workspace, workflow, execution) from here.
import { useSyncExternalStore, type MouseEvent, type ReactNode } from 'react';

const NAVIGATE = 'datashop:navigate';

function subscribe(onChange: () => void): () => void {
  window.addEventListener('popstate', onChange);
  window.addEventListener(NAVIGATE, onChange);
  return () => {
    window.removeEventListener('popstate', onChange);
    window.removeEventListener(NAVIGATE, onChange);
  };
}

const href = () => window.location.pathname + window.location.search;

export interface Location {
  path: string;
  query: URLSearchParams;
}

let cached: { key: string; location: Location } | null = null;

export function useLocation(): Location {
  const key = useSyncExternalStore(subscribe, href);
  if (cached === null || cached.key !== key) {
    const url = new URL(key, window.location.origin);
    cached = { key, location: { path: url.pathname.replace(/\/+$/, '') || '/', query: url.searchParams } };
  }
  return cached.location;
}

export function navigate(to: string, { replace = false } = {}): void {
  if (to === href()) return;
  if (replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.dispatchEvent(new Event(NAVIGATE));
}

/** Sets (or, with null, removes) query parameters of the current page, keeping the others. */
export function setQuery(params: Record<string, string | null>): void {
  const url = new URL(window.location.href);
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === '') url.searchParams.delete(name);
    else url.searchParams.set(name, value);
  }
  navigate(url.pathname + url.search, { replace: true });
}

export function Link({ to, className, children, testId }: { to: string; className?: string; children: ReactNode; testId?: string }) {
  const onClick = (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} className={className} onClick={onClick} data-testid={testId}>
      {children}
    </a>
  );
}
