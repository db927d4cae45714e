"""The design document's Python snippet (an L5-ETL Flask service publishing
its workflow's logs), run by examples/e2e/design.test.mjs.

Usage: publish_etl.py GATEWAY_URL WORKSPACE_ID WORKFLOW_ID OTHER_WORKFLOW_ID COUNT
Publishes COUNT logs to each workflow, then closes the publisher (which
delivers what is queued). Needs publishers/python/src on PYTHONPATH.
"""

import sys

from logs_sse_publisher import LogsSSEPublisher

gateway_url, workspace_id, workflow_id, other_workflow_id, count = sys.argv[1:6]

logs_publisher = LogsSSEPublisher(
    gateway_url=gateway_url,
    service_token='l5-etl-token',
    service_name='etl',
)


def run_step(workspace_id, workflow_id, level, message):
    log_data = {'level': level, 'message': message}
    logs_publisher.publish_log(workspace_id=workspace_id, workflow_id=workflow_id, log_data=log_data)


for n in range(int(count)):
    run_step(workspace_id, workflow_id, 'warning' if n % 5 == 4 else 'info', f'etl step {n}')
    run_step(workspace_id, other_workflow_id, 'info', f'other etl step {n}')

if not logs_publisher.close(timeout=10):
    sys.exit(f'not everything was delivered: {logs_publisher.stats()}')
