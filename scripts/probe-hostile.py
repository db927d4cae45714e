#!/usr/bin/env python3
"""Hostile and broken clients against a gateway binary, with figures.

Starts the given gateway binary on a free loopback port, publishes 5,000
logs/s to one workspace for 10 s alone (history fills to its bound), then
for 45 s more with a hostile crowd: 200 streams that never read, 1,000
silent TCP sockets, 300 slowloris connections trickling header bytes, and
one publish whose body trickles one byte every 0.4 s. Prints the gateway's
resident memory and open streams over time, how many hostile sockets it
still holds, and how the trickled publish was answered and when.

    python3 scripts/probe-hostile.py target/release/logs-sse-gateway [extra gateway flags]

PROBE_STALLED, PROBE_IDLE and PROBE_SLOWLORIS change the crowd (e.g.
PROBE_IDLE=0 PROBE_SLOWLORIS=0 to see what stalled streams alone cost).

Bounded: loopback only, about 60 s, at most 1,500 sockets.
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

STALLED = int(os.environ.get("PROBE_STALLED", 200))
IDLE = int(os.environ.get("PROBE_IDLE", 1000))
SLOWLORIS = int(os.environ.get("PROBE_SLOWLORIS", 300))
RATE = 5000
WARMUP_SECS = 10
CROWD_SECS = 45
TOKEN = "etl-probe-token"
ADMIN = "admin-probe-token"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def still_open(sock):
    """True while the peer has not closed the socket."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
        return data != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s


def stats(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/admin/logs/stats", headers={"Authorization": f"Bearer {ADMIN}"})
    body = json.loads(c.getresponse().read())
    c.close()
    return body


def health(port):
    started = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/health")
        status = c.getresponse().status
        c.close()
        return f"{status} in {time.time() - started:.2f}s"
    except OSError as e:
        return f"failed ({e.__class__.__name__}) after {time.time() - started:.2f}s"


def publisher(port, stop):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    batch = json.dumps([
        {"service": "etl", "workspace_id": "probe", "workflow_id": f"wf{i % 10}",
         "logData": {"level": "info", "message": "x" * 120, "i": i}}
        for i in range(100)
    ])
    per_sec = RATE // 100
    sent = 0
    started = time.time()
    while not stop.is_set():
        c.request("POST", "/api/logs/publish", body=batch, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        c.getresponse().read()
        sent += 1
        ahead = sent / per_sec - (time.time() - started)
        if ahead > 0:
            time.sleep(ahead)
    c.close()


def trickled_publish(port, result):
    body = json.dumps({"service": "etl", "workspace_id": "probe", "workflow_id": "slow",
                       "logData": {"message": "trickled one byte at a time"}}).encode()
    body = body + b" " * max(0, 145 - len(body))
    s = connect(port)
    s.sendall((f"POST /api/logs/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode())
    started = time.time()
    s.settimeout(0.01)
    answer = b""
    for byte in body:
        try:
            s.send(bytes([byte]))
        except OSError:
            break
        try:
            chunk = s.recv(4096)
            if chunk:
                answer += chunk
                break
            break
        except socket.timeout:
            pass
        time.sleep(0.4)
    s.settimeout(70)
    try:
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed)"
    result["trickled publish"] = f"{status} after {time.time() - started:.1f}s"


def report(label, gw, port, started, extra=""):
    print(f"t={time.time() - started:4.0f}s {label:<34} RSS {rss_kib(gw.pid) / 1024:6.1f} MiB, "
          f"open streams {stats(port)['connections']:4}, /health {health(port)}{extra}", flush=True)


def main():
    binary = sys.argv[1]
    extra = sys.argv[2:]
    gw = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--allow-anonymous", "--service-token", f"etl={TOKEN}",
         "--admin-token", ADMIN, "--publish-rate", "0", "--max-streams-per-ip", "100000", *extra],
        stdout=subprocess.PIPE, stderr=open("/tmp/probe-hostile-gateway.log", "w"), text=True)
    try:
        port = int(re.search(r":(\d+)$", gw.stdout.readline().strip()).group(1))
        time.sleep(0.5)
        started = time.time()
        report("started", gw, port, started)
        # Phase 1: steady publishing alone, so history reaches its bound.
        stop = threading.Event()
        pub = threading.Thread(target=publisher, args=(port, stop))
        pub.start()
        time.sleep(WARMUP_SECS)
        report("publishing, no hostile clients", gw, port, started)
        rss_before = rss_kib(gw.pid)
        # Phase 2: the hostile crowd, still publishing.
        stalled = []
        for _ in range(STALLED):
            s = connect(port, rcvbuf=4096)
            s.sendall(b"GET /api/logs/stream?channels=logs:etl:probe HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(s)
        idle = [connect(port) for _ in range(IDLE)]
        slow = []
        for _ in range(SLOWLORIS):
            s = connect(port)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        result = {}
        trickle = threading.Thread(target=trickled_publish, args=(port, result))
        trickle.start()
        report(f"+{STALLED} stalled, {IDLE} idle, {SLOWLORIS} slowloris", gw, port, started)
        peak = 0
        crowd_started = time.time()
        while time.time() - crowd_started < CROWD_SECS:
            time.sleep(5)
            for s in slow:
                try:
                    s.send(b"X")
                except OSError:
                    pass
            peak = max(peak, rss_kib(gw.pid))
            report("crowd + publishing", gw, port, started,
                   f", idle open {sum(map(still_open, idle))}, slowloris open {sum(map(still_open, slow))}")
        trickle.join()
        stop.set()
        pub.join()
        report("publishing stopped", gw, port, started)
        print(f"RSS publishing alone {rss_before / 1024:.1f} MiB; peak with the crowd {peak / 1024:.1f} MiB "
              f"(+{(peak - rss_before) / STALLED:.0f} KiB per stalled stream); "
              f"after: {rss_kib(gw.pid) / 1024:.1f} MiB; {result.get('trickled publish', 'trickled publish: no answer')}")
        for s in stalled + idle + slow:
            s.close()
        time.sleep(2)
        report("every socket closed", gw, port, started)
    finally:
        gw.terminate()
        gw.wait(timeout=10)


if __name__ == "__main__":
    main()
