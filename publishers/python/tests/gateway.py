"""Test helpers: run the real gateway binary and read its SSE stream over HTTP.

Nothing here imitates the gateway; the helpers only start the real
``logs-sse-gateway`` process and speak HTTP to it.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[3]
GATEWAY_BIN = os.environ.get("GATEWAY_BIN", str(REPO_ROOT / "target/debug/logs-sse-gateway"))

TOKENS = {"etl": "etl-test-token", "faas": "faas-test-token"}
#: A token granted two services, as a FAAS backend's is (workflows and functions).
FAAS_FUNCTION_TOKEN = "faas-function-test-token"
ADMIN_TOKEN = "admin-test-token"

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class Gateway:
    """One gateway process; ``restart()`` brings it back on the same port."""

    def __init__(self, binary: str = GATEWAY_BIN, extra_args: Optional[List[str]] = None) -> None:
        if not os.access(binary, os.X_OK):
            raise RuntimeError(
                f"gateway binary not found at {binary}: build it with "
                "`cargo build -p logs-sse-gateway` or set GATEWAY_BIN"
            )
        self.binary = binary
        self.extra_args = list(extra_args or [])
        self.port = 0
        self.process: Optional[subprocess.Popen] = None
        self.output: List[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0, timeout: float = 20.0) -> "Gateway":
        args = [self.binary, "--listen", f"127.0.0.1:{port}", "--allow-anonymous",
                "--admin-token", ADMIN_TOKEN]
        for service, token in TOKENS.items():
            args += ["--service-token", f"{service}={token}"]
        args += ["--service-token", f"faas+function={FAAS_FUNCTION_TOKEN}"]
        args += self.extra_args
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def pump(stream: Any) -> None:
            # Keep draining output so the gateway never blocks on a full pipe.
            for line in stream:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, args=(self.process.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise RuntimeError(f"gateway did not report its port in {timeout}s: {self.output}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"gateway exited before listening: {''.join(self.output)}")
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Starts again on the same port (retrying while the port is released)."""
        port = self.port
        for attempt in range(50):
            try:
                self.start(port)
                return
            except RuntimeError:
                if attempt == 49:
                    raise
                time.sleep(0.1)

    def admin_stats(self) -> Dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/admin/logs/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


class SSEStream:
    """Reads ``GET /api/logs/stream`` on a thread and queues parsed events."""

    def __init__(self, gateway_url: str, channels: List[str], since: Optional[str] = None) -> None:
        host_port = gateway_url.split("://", 1)[1]
        self.events: "queue.Queue[Tuple[str, Any]]" = queue.Queue()
        path = f"/api/logs/stream?channels={','.join(channels)}"
        if since:
            path += f"&since={since}"
        self._conn = http.client.HTTPConnection(host_port, timeout=30)
        self._conn.request("GET", path, headers={"Accept": "text/event-stream"})
        self.response = self._conn.getresponse()
        if self.response.status != 200:
            raise RuntimeError(f"stream answered {self.response.status}: {self.response.read()!r}")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event, data = "message", []
        try:
            while True:
                raw = self.response.fp.readline()
                if not raw:
                    break
                line = raw.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data:
                        self.events.put((event, json.loads("\n".join(data))))
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
        except (OSError, ValueError):
            pass
        self.events.put(("eof", None))

    def next_event(self, timeout: float = 10.0) -> Tuple[str, Any]:
        return self.events.get(timeout=timeout)

    def wait_statuses(self, count: int, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """Waits for the ``status`` event of every channel (subscription is live)."""
        statuses = []
        deadline = time.monotonic() + timeout
        while len(statuses) < count:
            event, data = self.next_event(max(0.01, deadline - time.monotonic()))
            if event == "status":
                statuses.append(data)
            elif event in ("log", "eof", "close"):
                raise AssertionError(f"unexpected {event} before all statuses: {data}")
        return statuses

    def logs(self, count: int, timeout: float = 15.0) -> List[Dict[str, Any]]:
        """Collects ``count`` log events (fails with what arrived on timeout)."""
        logs: List[Dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(logs) < count:
            remaining = deadline - time.monotonic()
            try:
                event, data = self.next_event(max(0.01, remaining))
            except queue.Empty:
                raise AssertionError(f"got {len(logs)} of {count} logs within {timeout}s") from None
            if event == "log":
                logs.append(data)
            elif event in ("eof", "close"):
                raise AssertionError(f"stream ended ({event}) after {len(logs)} of {count} logs")
        return logs

    def logs_until_end(self, timeout: float = 15.0) -> List[Dict[str, Any]]:
        """Collects log events until the gateway closes the stream."""
        logs: List[Dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            event, data = self.next_event(max(0.01, deadline - time.monotonic()))
            if event == "log":
                logs.append(data)
            elif event in ("eof", "close"):
                return logs

    def close(self) -> None:
        try:
            self._conn.sock and self._conn.sock.shutdown(2)
        except OSError:
            pass
        self._conn.close()
