// Compiled by `tsc -p test/types` (strict): the CommonJS typing of the package.
import LogsSSEPublisher = require('@datashop/logs-sse-publisher');
import pinoTransport = require('@datashop/logs-sse-publisher/pino-transport');

const options: LogsSSEPublisher.PublisherOptions = {
  gatewayUrl: 'http://logs-sse-gateway:3002',
  serviceToken: 'faas-token',
  serviceName: 'faas',
  onError: (error: LogsSSEPublisher.GatewayError) => console.error(error.status, error.code, error.dropped),
};
const logsPublisher = new LogsSSEPublisher(options);
const queued: boolean = logsPublisher.publishFunctionLog('ws1', 'fn1', { message: 'hello' });
logsPublisher.publishWorkflowLog('ws1', 42, { n: 1 });
logsPublisher.publishLog('ws1', 'res-1', ['any', 'json']);
const stats: LogsSSEPublisher.PublisherStats = logsPublisher.stats();
const sent: number = stats.sent + stats.duplicates + stats.dropped + stats.failed + stats.requests + stats.retries;

const Named = LogsSSEPublisher.LogsSSEPublisher;
const other = new Named({ gatewayUrl: 'http://x', serviceToken: 'token-123', serviceName: 'etl' });
const stream: LogsSSEPublisher.PinoStream = LogsSSEPublisher.createPinoStream(other, { closePublisher: true });
const skipped: number = stream.skipped;

try {
  logsPublisher.publishLog('bad id', 'x', {});
} catch (error) {
  if (error instanceof LogsSSEPublisher.ValidationError) {
    const field: string = error.field;
    console.log(field);
  }
}

const transportStream = pinoTransport({ gatewayUrl: 'http://x', serviceToken: 'token-123', serviceName: 'etl', levelLabels: false });

async function shutdown(): Promise<boolean> {
  const flushed: boolean = await logsPublisher.flush(1000);
  return flushed && (await logsPublisher.close());
}

export = { queued, sent, skipped, transportStream, shutdown };
