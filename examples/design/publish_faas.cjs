// The design document's Node snippet (the FAAS Express service publishing a
// workflow's and a function's logs), run by examples/e2e/design.test.mjs.
//
// Usage: node publish_faas.cjs GATEWAY_URL WORKSPACE_ID FLOW_ID FUNCTION_ID COUNT
// Publishes COUNT workflow logs and COUNT function logs, then closes the
// publisher (which delivers what is queued). The gateway grants the token
// 'faas-token' the services faas and function (--service-token faas+function=faas-token).
const LogsSSEPublisher = require('@datashop/logs-sse-publisher');

const [gatewayUrl, workspace_id, workflow_id, function_id, count] = process.argv.slice(2);

const logsPublisher = new LogsSSEPublisher({ gatewayUrl, serviceToken: 'faas-token', serviceName: 'faas' });

async function main() {
  for (let n = 0; n < Number(count); n += 1) {
    await logsPublisher.publishWorkflowLog(workspace_id, workflow_id, { level: 'info', message: `faas step ${n}` });
    const log_data = { level: n % 4 === 3 ? 'error' : 'info', message: `function invocation ${n}` };
    await logsPublisher.publishFunctionLog(workspace_id, function_id, log_data);
  }
  if (!(await logsPublisher.close(10000))) {
    throw new Error(`not everything was delivered: ${JSON.stringify(logsPublisher.stats())}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
