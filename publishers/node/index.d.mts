// ESM typing: `import LogsSSEPublisher, { createPinoStream } from '@datashop/logs-sse-publisher'`.

export * from './types.js';
import { LogsSSEPublisher } from './types.js';
export default LogsSSEPublisher;
