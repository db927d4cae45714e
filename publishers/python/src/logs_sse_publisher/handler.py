"""``LogsSSEHandler``: stream a service's existing ``logging`` calls.

Adding one handler is the whole integration::

    handler = LogsSSEHandler(gateway_url=..., service_token=..., service_name="etl")
    logging.getLogger().addHandler(handler)

    with log_context(workspace_id=ws, workflow_id=wf):
        logger.info("extracting %d rows", n)       # streamed to logs:etl:ws:wf

Ids come from the record's ``extra=`` (``workspace_id`` and one of
``workflow_id`` / ``function_id`` / ``resource_id``) or else from
:func:`~logs_sse_publisher.log_context`. Records without a workspace or a
resource id are not streamed (they are counted in ``skipped``): start-up and
library logs usually belong to no workflow.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from .context import CONTEXT_FIELDS, current_log_context
from .encoding import encode_loose
from .errors import ConfigError
from .publisher import RESOURCE_FIELDS, LogsSSEPublisher
from .stamp import utc_timestamp
from .validation import validate_segment

# Attributes every LogRecord has; anything else on a record came from extra=.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}

# Our own diagnostics must never be published: with the handler on the root
# logger, "gateway unavailable" would queue a log about the queue, forever.
_OWN_LOGGER = "logs_sse_publisher"


class LogsSSEHandler(logging.Handler):
    """A :class:`logging.Handler` that publishes records through a publisher.

    Pass an existing ``publisher=`` (shared with direct ``publish_log``
    calls), or the :class:`LogsSSEPublisher` keyword options to let the
    handler own one (it is then closed with the handler, e.g. by
    ``logging.shutdown()`` at exit).

    Each record becomes ``logData`` of the form::

        {"timestamp": "2024-05-01T12:00:00.123Z", "level": "INFO",
         "logger": "etl.extract", "message": "extracting 20 rows",
         "module": "extract", "function": "run", "line": 42,
         "exception": "Traceback ...",          # only with exc_info
         ...extra fields...,                    # other extra= keys, if include_extra
         "id": "3f0c…"}                         # a UUID v4, unless extra= set one

    ``timestamp`` is the record's creation time (ISO 8601 UTC, milliseconds).
    The ``id`` follows the publisher's ``add_id_and_timestamp`` option.

    If a formatter is set, ``message`` is the formatted text instead.
    """

    def __init__(
        self,
        publisher: Optional[LogsSSEPublisher] = None,
        *,
        level: int = logging.NOTSET,
        include_extra: bool = True,
        **publisher_options: Any,
    ) -> None:
        super().__init__(level)
        if publisher is None:
            self.publisher = LogsSSEPublisher(**publisher_options)
            self._owns_publisher = True
        elif publisher_options:
            raise ConfigError(
                "pass either publisher= or LogsSSEPublisher options, not both "
                f"(got {', '.join(sorted(publisher_options))})"
            )
        else:
            self.publisher = publisher
            self._owns_publisher = False
        self.include_extra = include_extra
        #: Records not streamed because they carried no workspace/resource id.
        self.skipped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == _OWN_LOGGER or record.name.startswith(_OWN_LOGGER + "."):
            return
        try:
            ids = self._ids(record)
            if ids is None:
                self.skipped += 1
                return
            workspace_id, field, resource_id = ids
            data = self._fit(self.publisher._stamped(self.log_data(record)))
            self.publisher._publish_json(workspace_id, field, resource_id, data)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def log_data(self, record: logging.LogRecord) -> Dict[str, Any]:
        """The ``logData`` object for ``record``; override to change the shape."""
        message = self.format(record) if self.formatter else record.getMessage()
        data: Dict[str, Any] = {
            "timestamp": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "module": record.module,
            "function": record.funcName,
            "line": record.lineno,
        }
        if record.exc_info and not self.formatter:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            data["exception"] = record.exc_text
        if record.stack_info and not self.formatter:
            data["stack"] = record.stack_info
        if self.include_extra:
            for key, value in record.__dict__.items():
                if (
                    key not in _STANDARD_ATTRS
                    and key not in CONTEXT_FIELDS
                    and not key.startswith("_")
                    and key not in data
                ):
                    data[key] = value
        return data

    def flush(self) -> None:
        """Waits (up to the publisher's ``shutdown_timeout``) for delivery."""
        self.publisher.flush(self.publisher._shutdown_timeout)

    def close(self) -> None:
        """Closes the publisher too if the handler created it."""
        try:
            if self._owns_publisher:
                self.publisher.close()
        finally:
            super().close()

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _ids(record: logging.LogRecord) -> Optional[Tuple[str, str, str]]:
        """(workspace_id, id field, id) from ``extra=``, else from the context."""
        context = current_log_context()
        workspace_id = getattr(record, "workspace_id", None) or context.get("workspace_id")
        field = resource_id = None
        for source in (record.__dict__, context):
            for name in RESOURCE_FIELDS:
                value = source.get(name)
                if value is not None:
                    field, resource_id = name, value
                    break
            if field is not None:
                break
        if workspace_id is None or field is None:
            return None
        return (
            validate_segment("workspace_id", workspace_id),
            field,
            validate_segment(field, resource_id),
        )

    def _fit(self, data: Dict[str, Any]) -> str:
        """Encodes ``data``, truncating long text so it fits ``max_log_bytes``.

        A huge traceback or message must not cost the whole record: the
        longest text fields are cut (and ``truncated`` is set) until it fits.
        """
        limit = self.publisher.max_log_bytes
        text = encode_loose(data)
        if len(text.encode("utf-8")) <= limit:
            return text
        data = dict(data, truncated=True)
        for key in ("exception", "stack", "message"):
            if isinstance(data.get(key), str):
                # limit // 16 characters are at most limit // 4 bytes of UTF-8.
                data[key] = data[key][: max(16, limit // 16)] + "…"
        text = encode_loose(data)
        if len(text.encode("utf-8")) <= limit:
            return text
        # Still too large: the extra fields are the culprit; keep the core.
        core = {
            key: data[key]
            for key in ("id", "timestamp", "level", "logger", "message", "truncated")
            if key in data
        }
        return encode_loose(core)
