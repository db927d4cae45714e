"""A TCP proxy in front of the real gateway that can lose a publish answer.

Each connection carries one HTTP request (the SDK sends ``Connection:
close``). The proxy reads the whole request, then does what ``plan`` says
for it: forward it and relay the gateway's answer, forward it and cut the
connection once the gateway has answered (the request was processed, the
answer is lost), or cut the connection without forwarding anything. It
records every request it saw and what it did with it, so a test can check
what the SDK sent and predict what the gateway must have stored.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from typing import Callable, Dict, List, Optional, Tuple

FORWARD = "forward"
CUT_AFTER_FORWARD = "cut_after_forward"
CUT_BEFORE_FORWARD = "cut_before_forward"


@dataclasses.dataclass
class Seen:
    """One request as it arrived, and what the proxy did with it."""

    head: bytes
    body: bytes
    action: str

    @property
    def headers(self) -> Dict[str, str]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}


def _read_message(sock: socket.socket) -> Tuple[bytes, bytes]:
    """Reads one HTTP message: its head (without the blank line) and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed inside a message head: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length: Optional[int] = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while length is None or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            if length is None:
                break  # the body ends with the connection
            raise ConnectionError(f"closed after {len(body)} of {length} body bytes")
        body += chunk
    return head, body


class CuttingProxy:
    """Listens on an ephemeral loopback port and forwards to ``upstream_port``."""

    def __init__(self, upstream_port: int, plan: Callable[[int], str]) -> None:
        self.upstream_port = upstream_port
        self.plan = plan
        self.seen: List[Seen] = []
        #: Failures talking to the gateway (none expected).
        self.errors: List[str] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            try:
                head, body = _read_message(client)
            except (OSError, ValueError):
                return
            with self._lock:
                action = self.plan(len(self.seen))
                self.seen.append(Seen(head, body, action))
            if action == CUT_BEFORE_FORWARD:
                return
            try:
                with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10) as upstream:
                    upstream.sendall(head + b"\r\n\r\n" + body)
                    answer_head, answer_body = _read_message(upstream)
                if action == FORWARD:
                    client.sendall(answer_head + b"\r\n\r\n" + answer_body)
            except (OSError, ValueError) as error:
                # The SDK sees a cut connection; the test sees why.
                with self._lock:
                    self.errors.append(f"{type(error).__name__}: {error}")
            # CUT_AFTER_FORWARD: the gateway has answered; closing now loses it.

    def close(self) -> None:
        self._listener.close()
