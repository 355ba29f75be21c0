#!/usr/bin/env python3
"""Development proxy for the web console, until the node serves it itself.

Serves /console/* from crates/shoal-api/console/, answers /console/config.json, and forwards
everything else to a Shoal node with the Host header unchanged (so the browser's SigV4 signature,
which covers `host`, still verifies). When the node has no /metrics yet (anything but 200), it
answers with Prometheus text of the requests that went through this proxy.

    python3 scripts/console-test/devproxy.py --node 127.0.0.1:8000 --listen 127.0.0.1:8080
"""

import argparse
import http.client
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONSOLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "shoal-api", "console")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml"}
BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class Stats:
    """Counters of the requests seen, in the shape of the node's metrics."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}  # (op, table) -> n
        self.errors = {}  # (op, table, error) -> n
        self.hist = {}  # (op, table) -> [bucket counts..., sum, count]

    def record(self, op, table, seconds, error):
        with self.lock:
            key = (op, table)
            self.requests[key] = self.requests.get(key, 0) + 1
            if error:
                self.errors[(op, table, error)] = self.errors.get((op, table, error), 0) + 1
            h = self.hist.setdefault(key, [0] * (len(BUCKETS) + 2))
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def text(self, node, note):
        esc = lambda s: s.replace("\\", "\\\\").replace('"', '\\"')
        out = [f"# {note}", "# TYPE shoal_node_info gauge", f'shoal_node_info{{node="{node}",cluster="dev"}} 1',
               "# TYPE shoal_requests_total counter"]
        with self.lock:
            for (op, t), n in sorted(self.requests.items()):
                out.append(f'shoal_requests_total{{operation="{op}",table="{esc(t)}"}} {n}')
            out.append("# TYPE shoal_request_errors_total counter")
            for (op, t, e), n in sorted(self.errors.items()):
                out.append(f'shoal_request_errors_total{{operation="{op}",table="{esc(t)}",error="{e}"}} {n}')
            out.append("# TYPE shoal_request_duration_seconds histogram")
            for (op, t), h in sorted(self.hist.items()):
                lab = f'operation="{op}",table="{esc(t)}"'
                for i, le in enumerate(BUCKETS):
                    out.append(f'shoal_request_duration_seconds_bucket{{{lab},le="{le}"}} {h[i]}')
                out.append(f'shoal_request_duration_seconds_bucket{{{lab},le="+Inf"}} {h[-1]}')
                out.append(f"shoal_request_duration_seconds_sum{{{lab}}} {h[-2]:.6f}")
                out.append(f"shoal_request_duration_seconds_count{{{lab}}} {h[-1]}")
        return "\n".join(out) + "\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def send(self, code, ctype, body, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/console", "/console/"):
            path = "/console/index.html"
        if path == "/console/config.json":
            cfg = {"region": self.server.region, "node": self.server.node_id()}
            return self.send(200, "application/json", json.dumps(cfg).encode())
        if path.startswith("/console/"):
            name = path[len("/console/"):]
            full = os.path.join(CONSOLE, name)
            if "/" in name or name.startswith(".") or not os.path.isfile(full):
                return self.send(404, "text/plain", b"not found")
            with open(full, "rb") as f:
                # The node's policy: nothing is loaded from elsewhere, no inline script or style.
                csp = "default-src 'self'; connect-src *; img-src 'self' data:; frame-ancestors 'none'"
                return self.send(200, TYPES.get(os.path.splitext(name)[1], "application/octet-stream"), f.read(),
                                 [("Content-Security-Policy", csp), ("X-Content-Type-Options", "nosniff")])
        self.forward(b"")

    do_HEAD = do_GET

    def do_OPTIONS(self):
        # The CORS preflight the node answers for /status and /metrics (another node's console).
        if self.path.split("?", 1)[0] in ("/status", "/metrics"):
            return self.send(204, "text/plain", b"", [
                ("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, OPTIONS"),
                ("Access-Control-Allow-Headers", "authorization, x-amz-date, x-amz-content-sha256"),
                ("Access-Control-Max-Age", "600")])
        self.forward(b"")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.forward(self.rfile.read(n) if n else b"")

    def forward(self, body):
        path = self.path.split("?", 1)[0]
        started = time.monotonic()
        conn = http.client.HTTPConnection(self.server.node, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            return self.send(502, "text/plain", f"devproxy: node unreachable: {e}".encode())
        finally:
            conn.close()
        elapsed = time.monotonic() - started
        cors = [("Access-Control-Allow-Origin", "*")] if path in ("/status", "/metrics") else []
        if path == "/metrics" and self.command == "GET" and r.status != 200:
            note = f"fake metrics from devproxy (the node answered {r.status})"
            text = self.server.stats.text(self.server.node_id(), note).encode()
            return self.send(200, "text/plain; version=0.0.4", text, cors)
        target = self.headers.get("X-Amz-Target", "")
        if self.command == "POST" and target:
            op = target.split(".")[-1]
            try:
                table = json.loads(body or b"{}").get("TableName") or ""
            except ValueError:
                table = ""
            error = ""
            if r.status != 200:
                try:
                    error = json.loads(data).get("__type", "").split("#")[-1]
                except ValueError:
                    error = "Unknown"
            self.server.stats.record(op, table, elapsed, error or None)
        extra = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP | {"content-length", "content-type"}]
        extra += [c for c in cors if c[0].lower() not in {k.lower() for k, _ in extra}]
        self.send(r.status, r.getheader("Content-Type", "application/octet-stream"), data, extra)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def node_id(self):
        if self._node_id is None:
            try:
                conn = http.client.HTTPConnection(self.node, timeout=5)
                conn.request("GET", "/status")
                self._node_id = json.loads(conn.getresponse().read()).get("node_id")
            except (OSError, ValueError):
                return None
        return self._node_id


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--node", required=True, help="the node's API address, host:port")
    p.add_argument("--listen", default="127.0.0.1:8080")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    srv = Server((host, int(port)), Handler)
    srv.node, srv.region, srv.verbose, srv._node_id, srv.stats = a.node, a.region, a.verbose, None, Stats()
    print(f"devproxy: console on http://{a.listen}/console/ -> node {a.node}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
