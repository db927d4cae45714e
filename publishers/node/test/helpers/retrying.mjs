// A publisher for the retry tests: quiet, with short back-off, closed by the
// test file's cleanup list.

import LogsSSEPublisher from '@datashop/logs-sse-publisher';
import { TOKENS } from './gateway.mjs';

const quiet = { warn() {}, error() {}, info() {} };

export function retryingPublisher(gatewayUrl, cleanup, options = {}) {
  const instance = new LogsSSEPublisher({
    gatewayUrl,
    serviceToken: TOKENS.etl,
    serviceName: 'etl',
    logger: quiet,
    retryBackoffMinMs: 5,
    retryBackoffMaxMs: 20,
    ...options,
  });
  cleanup.push(() => instance.close(1000));
  return instance;
}
