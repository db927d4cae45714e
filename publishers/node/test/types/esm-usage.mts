// Compiled by `tsc -p test/types` (strict): the ESM typing of the package.
import LogsSSEPublisher, {
  createPinoStream,
  DEFAULTS,
  GatewayError,
  LogTooLargeError,
  MAX_SEGMENT_LEN,
  type PublisherStats,
} from '@datashop/logs-sse-publisher';

const logsPublisher = new LogsSSEPublisher({
  gatewayUrl: 'http://logs-sse-gateway:3002',
  serviceToken: 'faas-token',
  serviceName: 'faas',
  maxQueueSize: 1000,
  logger: null,
  onError(error) {
    const status: number = error.status;
    console.log(status, error instanceof GatewayError);
  },
});
await logsPublisher.publishFunctionLog('ws1', 'fn1', { message: 'hello' });
const stats: PublisherStats = logsPublisher.stats();
const limit: 64 = MAX_SEGMENT_LEN;
const batch: number = DEFAULTS.maxBatchSize;
const stream = createPinoStream(logsPublisher);
stream.write('{"level":30}\n');
try {
  logsPublisher.publishLog('ws', 'r', { blob: 'x'.repeat(1 << 20) });
} catch (error) {
  console.log(error instanceof LogTooLargeError);
}
// @ts-expect-error serviceName is required
new LogsSSEPublisher({ gatewayUrl: 'http://x', serviceToken: 'token-123' });
// @ts-expect-error flush takes a number of milliseconds
void logsPublisher.flush('soon');

export { stats, limit, batch };
