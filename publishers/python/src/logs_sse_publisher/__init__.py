"""Publish logs to a Datashop Logs SSE gateway from Python services.

Quick start::

    from logs_sse_publisher import LogsSSEPublisher

    logs_publisher = LogsSSEPublisher(gateway_url="http://logs-sse-gateway:3002",
                                      service_token="l5-etl-token", service_name="etl")
    logs_publisher.publish_log(workspace_id=ws, workflow_id=wf, log_data={"message": "hi"})

Or stream existing ``logging`` calls with :class:`LogsSSEHandler` and
:func:`log_context`. Standard library only.
"""

from .context import bind_log_context, current_log_context, log_context, reset_log_context
from .errors import ConfigError, GatewayError, InvalidIdError, LogTooLargeError, PublisherError
from .handler import LogsSSEHandler
from .publisher import LogsSSEPublisher, PublisherStats, __version__
from .validation import MAX_SEGMENT_LEN, validate_segment

__all__ = [
    "ConfigError",
    "GatewayError",
    "InvalidIdError",
    "LogTooLargeError",
    "LogsSSEHandler",
    "LogsSSEPublisher",
    "MAX_SEGMENT_LEN",
    "PublisherError",
    "PublisherStats",
    "__version__",
    "bind_log_context",
    "current_log_context",
    "log_context",
    "reset_log_context",
    "validate_segment",
]
