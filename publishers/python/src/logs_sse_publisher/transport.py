"""One HTTP request to ``POST /api/logs/publish``, and what its answer means.

Only the standard library is used (``urllib.request``), so adopting the SDK
adds no dependency to a service. The transport never raises: every outcome,
including a network error, becomes an :class:`Outcome` the worker acts on.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Optional

#: The largest response body read; gateway answers are small JSON documents.
_MAX_RESPONSE_BYTES = 1 << 20

# Outcome kinds.
OK = "ok"  # 2xx: the batch was processed (items may still have been rejected)
RETRY = "retry"  # network error, timeout, 408, 429, 5xx: send again later
AUTH = "auth"  # 401 / 403: the token is wrong; retrying cannot help
TOO_LARGE = "too_large"  # 413: split the batch
REJECTED = "rejected"  # any other 4xx: the request itself is wrong


class Outcome:
    """The classified answer to one publish request."""

    __slots__ = ("kind", "status", "code", "message", "retry_after", "body")

    def __init__(
        self,
        kind: str,
        status: int,
        code: str,
        message: str,
        retry_after: Optional[float] = None,
        body: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.kind = kind
        #: HTTP status, or 0 when no answer arrived (network error).
        self.status = status
        self.code = code
        self.message = message
        #: Seconds asked for by a ``Retry-After`` header, if any.
        self.retry_after = retry_after
        #: The parsed JSON answer, if it was a JSON object.
        self.body = body

    def __repr__(self) -> str:
        return f"Outcome({self.kind}, {self.status}, {self.code!r}, {self.message!r})"


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse_body(raw: bytes) -> Optional[Dict[str, Any]]:
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _classify(status: int, headers: Any, raw: bytes) -> Outcome:
    body = _parse_body(raw)
    if 200 <= status < 300:
        return Outcome(OK, status, "", "", body=body)
    error = body.get("error") if body else None
    items = body.get("errors") if body else None
    per_item = isinstance(items, list) and bool(items) and isinstance(items[0], dict)
    if isinstance(error, dict):
        code = str(error.get("code", ""))
        message = str(error.get("message", ""))
        if per_item:
            # A batch whose every item failed ("all_rejected"): the first
            # item's reason says more than the summary.
            first = items[0]  # type: ignore[index]
            code = str(first.get("code", code))
            message = f"{message}; item {first.get('index', 0)}: {first.get('message', '')}"
    else:
        code = ""
        message = raw[:200].decode("utf-8", errors="replace")
    if status in (401, 403):
        kind = AUTH
    elif status == 413 and not per_item:
        # The body as a whole was too large (not one oversized item): a
        # smaller batch will pass.
        kind = TOO_LARGE
    elif status in (408, 429) or status >= 500:
        kind = RETRY
    else:
        kind = REJECTED
    retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
    return Outcome(kind, status, code, message, retry_after=retry_after, body=body)


class Transport:
    """Posts JSON batches to one gateway with one service token."""

    def __init__(self, publish_url: str, service_token: str, timeout: float, user_agent: str) -> None:
        self._url = publish_url
        self._timeout = timeout
        self._headers = {
            "Authorization": f"Bearer {service_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        # A private opener: global urllib state (install_opener) of the host
        # application is neither used nor changed.
        self._opener = urllib.request.build_opener()

    def post_batch(self, body: bytes, idempotency_key: str) -> Outcome:
        """Sends ``body`` (a JSON array of logs) under ``idempotency_key``."""
        headers = dict(self._headers)
        headers["Idempotency-Key"] = idempotency_key
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return _classify(response.status, response.headers, response.read(_MAX_RESPONSE_BYTES))
        except urllib.error.HTTPError as error:
            try:
                raw = error.read(_MAX_RESPONSE_BYTES)
            except OSError:
                raw = b""
            finally:
                error.close()
            return _classify(error.code, error.headers, raw)
        except (OSError, http.client.HTTPException, ValueError) as error:
            # URLError, ConnectionError and socket.timeout are OSError;
            # IncompleteRead and BadStatusLine are HTTPException. All mean "no
            # usable answer", which is worth another try.
            return Outcome(RETRY, 0, "network_error", f"{type(error).__name__}: {error}")
