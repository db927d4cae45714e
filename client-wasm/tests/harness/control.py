#!/usr/bin/env python3
"""Test control server for the client-wasm browser tests.

Starts the real gateway binary and lets a browser test stop, start and
restart it over HTTP (a browser cannot manage processes). The gateway keeps
the same port across restarts, so a client reconnects to the same URL.

A second gateway requires subscriber JWTs: `--jwt-secret` (HS256),
`--allow-query-token` and `--jwt-leeway-secs 0`, so tokens expire on the
second. The control server mints its tokens (standard library only).

    control.py --gateway target/debug/logs-sse-gateway [--ready-file F]

Endpoints (all answer JSON with `Access-Control-Allow-Origin: *`):
    POST /stop      SIGTERM the gateway (graceful: streams get `close`)
    POST /kill      SIGKILL the gateway (abrupt)
    POST /start     start it again on the same port, wait until it listens
    POST /restart   stop, then start
    POST /freeze    SIGSTOP the gateway: connections stay open, nothing is
                    sent or answered (a hung gateway or a dead network path)
    POST /thaw      SIGCONT it
    GET  /status    {"running": bool, "gateway": url}
    GET  /token?sub=alice&ttl=2&workspaces=ws1,ws2&channels=logs:etl:ws1:*
                    {"token": jwt, "exp": seconds}: an HS256 JWT for the
                    auth gateway, valid for `ttl` seconds (negative: already
                    expired). `workspaces` and `channels` (comma-separated)
                    become the `workspaces` and `logs_channels` claims;
                    `secret=other` signs with another key (refused).

The gateway sends its heartbeat (`ping` event) every second, so that the
client's watchdog (2.5 heartbeats) can be tested in seconds.

When ready it prints (and writes to --ready-file):
    control=http://127.0.0.1:C gateway=http://127.0.0.1:G auth=http://127.0.0.1:A
Stops the gateway when it exits (SIGTERM/SIGINT).
"""

import argparse
import base64
import hashlib
import hmac
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

START_TIMEOUT_S = 20
# Publish tokens (the gateway wants at least 8 characters).
ETL_TOKEN = "etl-test-token"
FAAS_TOKEN = "faas-test-token"
# The auth gateway's HS256 secret (the gateway wants at least 32 bytes).
JWT_SECRET = b"client-wasm-browser-tests-jwt-secret-0123456789"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(claims, secret=JWT_SECRET):
    """An HS256 JWT with these claims."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def token_for(query):
    """The /token endpoint: claims from the query string."""
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    ttl = int(params.get("ttl", "60"))
    exp = int(time.time()) + ttl
    claims = {"exp": exp, "sub": params.get("sub", "tester")}
    for param, claim in (("workspaces", "workspaces"), ("channels", "logs_channels")):
        if params.get(param):
            claims[claim] = params[param].split(",")
    secret = JWT_SECRET if params.get("secret") is None else params["secret"].encode() * 8
    return {"token": mint(claims, secret), "exp": exp}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    def __init__(self, binary, port, extra, auth=("--allow-anonymous",)):
        self.binary = binary
        self.port = port
        self.extra = extra
        self.auth = list(auth)
        self.proc = None
        self.lock = threading.Lock()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        with self.lock:
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)
                return
            args = [
                self.binary,
                "--listen", f"127.0.0.1:{self.port}",
                "--service-token", f"etl={ETL_TOKEN}",
                "--service-token", f"faas={FAAS_TOKEN}",
                *self.auth,
                "--cors-origin", "*",
                "--retry-ms", "100",
                "--heartbeat-secs", "1",
            ] + self.extra
            deadline = time.time() + START_TIMEOUT_S
            while True:
                proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
                line = proc.stdout.readline()
                if "listening on" in line:
                    self.proc = proc
                    threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
                    return
                proc.wait()
                if time.time() > deadline:
                    raise RuntimeError(f"gateway did not start: {line!r}")
                time.sleep(0.1)  # the port may still be held by the old process

    @staticmethod
    def _drain(proc):
        for _ in proc.stdout:
            pass

    def send(self, sig):
        with self.lock:
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        with self.lock:
            if not self.proc or self.proc.poll() is not None:
                return
            # A frozen gateway could not handle SIGTERM.
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def running(self):
        return bool(self.proc and self.proc.poll() is None)


def make_handler(gateway, auth_gateway):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_OPTIONS(self):
            self._send(204, {})

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/status":
                self._send(200, {
                    "running": gateway.running(),
                    "gateway": gateway.url,
                    "auth": auth_gateway.url,
                })
            elif url.path == "/token":
                try:
                    self._send(200, token_for(url.query))
                except ValueError as e:
                    self._send(400, {"error": str(e)})
            else:
                self._send(404, {"error": "unknown path"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(min(length, 65536))
            try:
                if self.path == "/stop":
                    gateway.stop()
                elif self.path == "/kill":
                    gateway.stop(signal.SIGKILL)
                elif self.path == "/start":
                    gateway.start()
                elif self.path == "/restart":
                    gateway.stop()
                    gateway.start()
                elif self.path == "/freeze":
                    gateway.send(signal.SIGSTOP)
                elif self.path == "/thaw":
                    gateway.send(signal.SIGCONT)
                else:
                    self._send(404, {"error": "unknown path"})
                    return
            except Exception as e:  # report, keep serving
                self._send(500, {"error": str(e)})
                return
            self._send(200, {"running": gateway.running()})

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--ready-file")
    parser.add_argument("--gateway-arg", action="append", default=[])
    args = parser.parse_args()

    gateway = Gateway(args.gateway, free_port(), args.gateway_arg)
    auth_gateway = Gateway(
        args.gateway,
        free_port(),
        args.gateway_arg,
        auth=(
            "--jwt-secret", JWT_SECRET.decode(),
            "--allow-query-token",
            "--jwt-leeway-secs", "0",
        ),
    )
    gateway.start()
    auth_gateway.start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(gateway, auth_gateway))
    line = (
        f"control=http://127.0.0.1:{server.server_address[1]} "
        f"gateway={gateway.url} auth={auth_gateway.url}"
    )

    def shutdown(*_):
        gateway.stop()
        auth_gateway.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    print(line, flush=True)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(line + "\n")
    try:
        server.serve_forever()
    finally:
        gateway.stop()
        auth_gateway.stop()


if __name__ == "__main__":
    main()
