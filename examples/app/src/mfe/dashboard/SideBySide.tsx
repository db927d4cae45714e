// The side-by-side view (/dashboard): the three micro frontends' log pages
// on one screen, each with its own provider, as a shell page that embeds
// them would show them. They still share one connection.
import { FaasLogsPage } from '../faas/FaasLogsPage';
import { FunctionLogsPage } from '../functions/FunctionLogsPage';
import { IndataLogsPage } from '../indata/IndataLogsPage';

export function SideBySide() {
  return (
    <div className="side-by-side">
      <IndataLogsPage compact />
      <FaasLogsPage compact />
      <FunctionLogsPage compact />
    </div>
  );
}
