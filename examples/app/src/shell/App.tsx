// The Datashop shell: navigation between the micro frontends' log pages,
// the workspace in view, the page connection's status and the demo controls.
// It mounts a LogsSSEProvider of its own (for the status), which the pages'
// providers join: one connection for the whole page.
import { useLayoutEffect } from 'react';
import { LogsSSEProvider, useConnectionStatus } from '@datashop/logs-sse-client';
import { AllServicesPage } from '../mfe/all/AllServicesPage';
import { SideBySide } from '../mfe/dashboard/SideBySide';
import { FaasLogsPage } from '../mfe/faas/FaasLogsPage';
import { FunctionLogsPage } from '../mfe/functions/FunctionLogsPage';
import { IndataLogsPage } from '../mfe/indata/IndataLogsPage';
import { STREAM } from '../auth';
import { DEFAULT_WORKSPACE } from '../scenario';
import { DemoControls } from './DemoControls';
import { Link, navigate, useLocation } from './router';

const PAGES = [
  { path: '/all', label: 'All services', hint: 'every service, one timeline', render: () => <AllServicesPage /> },
  { path: '/indata/logs', label: 'ETL pipelines', hint: 'datashop-indata', render: () => <IndataLogsPage /> },
  { path: '/faas/logs', label: 'FAAS workflows', hint: 'datashop-faas', render: () => <FaasLogsPage /> },
  { path: '/functions/logs', label: 'Functions', hint: 'datashop-faas-function', render: () => <FunctionLogsPage /> },
  { path: '/dashboard', label: 'Side by side', hint: 'the three pages at once', render: () => <SideBySide /> },
] as const;

export function App() {
  return (
    <LogsSSEProvider {...STREAM}>
      <Shell />
    </LogsSSEProvider>
  );
}

/** The query each page was last shown with, so going back to a page shows the same workflow. */
const lastQuery = new Map<string, URLSearchParams>();

/** The link to a page: its last query, with the workspace in view. */
function linkTo(path: string, workspace: string | null): string {
  const query = new URLSearchParams(lastQuery.get(path));
  if (workspace) query.set('ws', workspace);
  else query.delete('ws');
  const search = query.toString();
  return search ? `${path}?${search}` : path;
}

function Shell() {
  const { path, query } = useLocation();
  const workspace = query.get('ws') || DEFAULT_WORKSPACE;
  const page = PAGES.find((p) => p.path === path);
  const keep = query.get('ws') ? `?ws=${encodeURIComponent(workspace)}` : '';
  if (page !== undefined) lastQuery.set(path, query);
  if (page === undefined) return <Redirect to={`/all${keep}`} />;
  return (
    <div className="shell">
      <nav className="nav" aria-label="Log pages">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">◆</span>
          <span>
            Datashop <small>Logs</small>
          </span>
        </div>
        {PAGES.map((p) => (
          <Link key={p.path} to={linkTo(p.path, query.get('ws'))} className={p.path === path ? 'nav-link active' : 'nav-link'} testId={`nav-${p.path}`}>
            <span className="nav-label">{p.label}</span>
            <span className="nav-hint">{p.hint}</span>
          </Link>
        ))}
        <div className="nav-foot">
          Workspace <code data-testid="workspace">{workspace}</code>
        </div>
      </nav>
      <div className="main">
        <header className="topbar">
          <h1>{page.label}</h1>
          <StreamStatus />
          <DemoControls />
        </header>
        <main className="content" data-testid={`page-${path}`}>
          {page.render()}
        </main>
      </div>
    </div>
  );
}

/** The page's one connection to the gateway, as the shell sees it. */
function StreamStatus() {
  const status = useConnectionStatus();
  const text =
    status.state === 'open'
      ? 'stream open'
      : status.state === 'reconnecting'
        ? `reconnecting (attempt ${status.attempt})`
        : status.state;
  // How route changes reach the stream: live on it, or by reconnecting (and why).
  const changes =
    status.channelChanges === undefined
      ? undefined
      : `channel changes: ${status.channelChanges}${status.fallback !== undefined ? ` (last reconnect: ${status.fallback})` : ''}`;
  return (
    <div
      className={`stream stream-${status.state}`}
      data-testid="stream-status"
      data-state={status.state}
      data-channel-changes={status.channelChanges}
      title={changes}
    >
      <span className="badge-dot" aria-hidden="true" />
      {text}
      {status.connectionId !== undefined && <span className="stream-id">#{status.connectionId}</span>}
    </div>
  );
}

function Redirect({ to }: { to: string }) {
  useLayoutEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}
