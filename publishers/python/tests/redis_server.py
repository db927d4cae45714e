"""A real ``redis-server`` for the SDK tests.

Runs on a free loopback port in its own temporary folder with an
append-only file fsynced on every write (so a restart keeps history);
``stop()`` kills it, ``start()`` brings it back on the same port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is missing: scripts/test.sh publishers installs it")
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="logs-sse-sdk-redis-"))
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 20.0) -> "RedisServer":
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--logfile", "redis.log"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if time.monotonic() > deadline:
                log = self.dir / "redis.log"
                tail = log.read_text().splitlines()[-15:] if log.exists() else []
                raise RuntimeError(f"redis-server on {self.port} did not answer PING: {tail}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """SIGKILL: nothing is flushed on the way out; the AOF already holds every write."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
