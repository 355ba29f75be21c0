#!/usr/bin/env python3
"""Load generator for scripts/soak.sh: floods a Shoal node with hostile and heavy clients while a
prober checks that valid requests keep being answered, and samples the node's RSS.

Python 3 standard library only. Traffic goes to the given endpoint on this machine only; every
loop stops after --secs seconds.

Clients (each a thread unless noted):
  unsigned   announce 15 MiB bodies without credentials and try to send them
  signed     send signed ~10 MiB PutItems (read, verified and parsed, then refused: item too
             large) and signed ~1 MiB BatchWriteItems (25 items of 40 KB, written)
  slow       (one thread) slowloris heads trickled a byte at a time, signed heads whose body
             is trickled, and idle connections, reopened as the server closes them
  prober     a small PutItem then GetItem every 100 ms on a keep-alive connection; latency
             and status recorded
  rss        /proc/<pid>/status VmRSS every 0.5 s

Prints a summary and exits 1 if the RSS reached --max-rss-mib, stayed above --max-rss-after-mib once
the load ended, or a probe went unanswered.
"""

import argparse
import collections
import datetime
import hashlib
import hmac
import json
import socket
import threading
import time

REGION = "us-east-1"


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def sign_headers(host, target, body_hash, key_id, secret, when=None):
    """The headers of a SigV4-signed DynamoDB POST / (body hash given)."""
    now = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-target": "DynamoDB_20120810." + target,
    }
    names = sorted(headers)
    signed = ";".join(names)
    canonical = "\n".join(
        ["POST", "/", "", "".join(f"{n}:{headers[n]}\n" for n in names), signed, body_hash]
    )
    scope = f"{day}/{REGION}/dynamodb/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256_hex(canonical.encode())])
    key = ("AWS4" + secret).encode()
    for part in (day, REGION, "dynamodb", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, "
        f"Signature={signature}"
    )
    return headers


def head_bytes(headers, length):
    lines = ["POST / HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Conn:
    """One keep-alive HTTP/1.1 connection with a minimal response reader."""

    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    def read_response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body


def error_type(body):
    try:
        return json.loads(body).get("__type", "").rsplit("#", 1)[-1]
    except ValueError:
        return "?"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()

    def add(self, kind, outcome):
        with self.lock:
            self.counts[(kind, outcome)] += 1


def unsigned_client(args, stats, stop):
    body_chunk = b" " * (1024 * 1024)
    while not stop.is_set():
        try:
            c = Conn(args.host, args.port, 10)
            c.sock.sendall(
                head_bytes(
                    {
                        "host": f"{args.host}:{args.port}",
                        "content-type": "application/x-amz-json-1.0",
                        "x-amz-target": "DynamoDB_20120810.PutItem",
                    },
                    15 * 1024 * 1024,
                )
            )
            try:
                for _ in range(15):
                    c.sock.sendall(body_chunk)
            except OSError:
                pass
            status, _, body = c.read_response()
            stats.add("unsigned", f"{status} {error_type(body)}")
        except (OSError, ConnectionError, ValueError, IndexError) as e:
            stats.add("unsigned", f"conn {type(e).__name__}")
        finally:
            try:
                c.close()
            except NameError:
                pass


def signed_client(args, stats, stop, index):
    big = json.dumps(
        {"TableName": "soak", "Item": {"pk": {"S": f"big{index}"}, "blob": {"S": "x" * (10 << 20)}}}
    ).encode()
    items = [
        {"PutRequest": {"Item": {"pk": {"S": f"b{index}-{i}"}, "blob": {"S": "y" * 40_000}}}}
        for i in range(25)
    ]
    batch = json.dumps({"RequestItems": {"soak": items}}).encode()
    bodies = [("PutItem", big, sha256_hex(big)), ("BatchWriteItem", batch, sha256_hex(batch))]
    if args.no_batches:
        bodies = bodies[:1]
    n = 0
    c = None
    while not stop.is_set():
        target, body, digest = bodies[n % len(bodies)]
        n += 1
        try:
            if c is None:
                c = Conn(args.host, args.port, 30)
            headers = sign_headers(f"{args.host}:{args.port}", target, digest, args.key_id, args.secret)
            c.sock.sendall(head_bytes(headers, len(body)) + body)
            status, headers, rbody = c.read_response()
            stats.add("signed " + target, f"{status} {error_type(rbody) if status != 200 else ''}".strip())
            if headers.get("connection") == "close":
                c.close()
                c = None
        except (OSError, ConnectionError, ValueError, IndexError) as e:
            stats.add("signed " + target, f"conn {type(e).__name__}")
            if c:
                c.close()
            c = None


def slow_clients(args, stats, stop):
    """Slowloris heads, trickled bodies and idle sockets, all from one thread."""
    addr = (args.host, args.port)
    head = (
        f"POST / HTTP/1.1\r\nhost: {args.host}:{args.port}\r\n"
        "x-amz-target: DynamoDB_20120810.ListTables\r\n"
    ).encode()
    body = json.dumps({"Limit": 1}).encode() + b" " * 4000
    pool = []  # [socket, kind, bytes to trickle, position]

    def open_one(kind):
        try:
            s = socket.create_connection(addr, timeout=5)
            s.setblocking(False)
        except OSError as e:
            stats.add("slow " + kind, f"connect {type(e).__name__}")
            return
        data = b""
        if kind == "slowloris":
            data = head
        elif kind == "slow body":
            h = sign_headers(f"{args.host}:{args.port}", "ListTables", sha256_hex(body), args.key_id, args.secret)
            try:
                s.send(head_bytes(h, len(body)))
            except OSError:
                pass
            data = body
        pool.append([s, kind, data, 0, time.monotonic()])

    for _ in range(args.slowloris):
        open_one("slowloris")
    for _ in range(args.slow_bodies):
        open_one("slow body")
    for _ in range(args.idle):
        open_one("idle")
    while not stop.wait(0.5):
        for entry in list(pool):
            s, kind, data, pos, opened = entry
            closed = False
            try:
                got = s.recv(4096)
                closed = True  # an answer (408) or EOF: the server ended it
                if got:
                    stats.add("slow " + kind, "answered " + got.split(b"\r\n", 1)[0].decode("latin-1", "replace"))
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            if not closed and pos < len(data):
                try:
                    s.send(data[pos : pos + 1])
                    entry[3] = pos + 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
            if closed:
                stats.add("slow " + kind, "closed by server after %.0f s" % (time.monotonic() - opened))
                s.close()
                pool.remove(entry)
                open_one(kind)
    for entry in pool:
        entry[0].close()


def prober(args, stop, samples, failures):
    host = f"{args.host}:{args.port}"
    c = None
    n = 0
    while not stop.wait(0.1):
        n += 1
        for target, payload in (
            ("PutItem", {"TableName": "soak", "Item": {"pk": {"S": f"probe{n % 100}"}, "n": {"N": str(n)}}}),
            ("GetItem", {"TableName": "soak", "Key": {"pk": {"S": f"probe{n % 100}"}}}),
        ):
            body = json.dumps(payload).encode()
            started = time.monotonic()
            try:
                if c is None:
                    c = Conn(args.host, args.port, 5)
                headers = sign_headers(host, target, sha256_hex(body), args.key_id, args.secret)
                c.sock.sendall(head_bytes(headers, len(body)) + body)
                status, rheaders, rbody = c.read_response()
                samples.append((time.monotonic() - started, status, error_type(rbody) if status != 200 else ""))
                if rheaders.get("connection") == "close":
                    c.close()
                    c = None
            except (OSError, ConnectionError, ValueError, IndexError) as e:
                failures.append(f"{target}: {type(e).__name__}: {e}")
                if c:
                    c.close()
                c = None


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_sampler(pid, stop, series):
    while not stop.wait(0.5):
        try:
            series.append((time.monotonic(), rss_mib(pid)))
        except OSError:
            return


def setup_table(args):
    host = f"{args.host}:{args.port}"
    c = Conn(args.host, args.port, 30)
    body = json.dumps(
        {
            "TableName": "soak",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
    ).encode()
    headers = sign_headers(host, "CreateTable", sha256_hex(body), args.key_id, args.secret)
    c.sock.sendall(head_bytes(headers, len(body)) + body)
    status, _, rbody = c.read_response()
    if status != 200 and b"ResourceInUse" not in rbody:
        raise SystemExit(f"CreateTable failed: {status} {rbody[:200]!r}")
    c.close()
    time.sleep(1)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default="127.0.0.1:8000", help="host:port of the node (this machine)")
    ap.add_argument("--pid", type=int, required=True, help="the node's process id (for RSS)")
    ap.add_argument("--key-id", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--secs", type=float, default=120)
    ap.add_argument("--unsigned", type=int, default=16)
    ap.add_argument("--signed", type=int, default=6)
    ap.add_argument("--slowloris", type=int, default=200)
    ap.add_argument("--slow-bodies", type=int, default=20)
    ap.add_argument("--idle", type=int, default=300)
    ap.add_argument("--no-batches", action="store_true", help="signed clients send only the refused 10 MiB PutItems (no writes)")
    ap.add_argument("--settle-secs", type=float, default=10, help="wait after the load, then sample RSS again")
    ap.add_argument("--max-rss-mib", type=float, default=1024)
    ap.add_argument("--max-rss-after-mib", type=float, default=None,
                    help="fail if RSS --settle-secs after the load is above this (default: start + half the"
                         " rise to the maximum + 32 MiB, so memory a flood left behind and the allocator kept fails)")
    args = ap.parse_args()
    args.host, _, port = args.endpoint.rpartition(":")
    args.port = int(port)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("soak.py only targets this machine (127.0.0.1)")

    setup_table(args)
    rss_start = rss_mib(args.pid)
    stats, stop = Stats(), threading.Event()
    samples, failures, series = [], [], []
    threads = [threading.Thread(target=rss_sampler, args=(args.pid, stop, series))]
    threads.append(threading.Thread(target=prober, args=(args, stop, samples, failures)))
    threads.append(threading.Thread(target=slow_clients, args=(args, stats, stop)))
    threads += [threading.Thread(target=unsigned_client, args=(args, stats, stop)) for _ in range(args.unsigned)]
    threads += [threading.Thread(target=signed_client, args=(args, stats, stop, i)) for i in range(args.signed)]
    started = time.monotonic()
    for t in threads:
        t.daemon = True
        t.start()
    next_report = started + 10
    while time.monotonic() - started < args.secs:
        time.sleep(0.5)
        if time.monotonic() >= next_report:
            next_report += 10
            rss = series[-1][1] if series else float("nan")
            print(f"  t={time.monotonic() - started:5.0f}s  rss={rss:6.0f} MiB  probes={len(samples)}  "
                  f"probe failures={len(failures)}", flush=True)
    stop.set()
    for t in threads:
        t.join(timeout=40)
    elapsed = time.monotonic() - started
    time.sleep(args.settle_secs)
    rss_after = rss_mib(args.pid)

    rss_max = max((r for _, r in series), default=rss_start)
    lat = sorted(s[0] * 1000 for s in samples)
    statuses = collections.Counter(f"{s[1]} {s[2]}".strip() for s in samples)
    ok = statuses.get("200", 0)
    print(f"\nsoak summary ({elapsed:.0f} s of load)")
    print(f"  RSS: start {rss_start:.0f} MiB, max {rss_max:.0f} MiB, {args.settle_secs:.0f} s after the load {rss_after:.0f} MiB (limit {args.max_rss_mib:.0f} MiB)")
    print(f"  probes: {len(samples)} answered ({ok} OK), {len(failures)} unanswered; statuses {dict(statuses)}")
    print(f"  probe latency ms: p50 {percentile(lat, 50):.1f}  p99 {percentile(lat, 99):.1f}  max {max(lat, default=float('nan')):.1f}")
    print("  load:")
    for (kind, outcome), n in sorted(stats.counts.items()):
        print(f"    {kind:<24} {outcome:<45} {n}")
    for f in failures[:10]:
        print(f"  unanswered probe: {f}")
    bad = []
    if rss_max >= args.max_rss_mib:
        bad.append(f"RSS reached {rss_max:.0f} MiB")
    after_limit = args.max_rss_after_mib
    if after_limit is None:
        after_limit = rss_start + (rss_max - rss_start) / 2 + 32
    print(f"  RSS after the load must be at most {after_limit:.0f} MiB (memory goes back)")
    if rss_after > after_limit:
        bad.append(f"RSS {rss_after:.0f} MiB {args.settle_secs:.0f} s after the load, above {after_limit:.0f} MiB: freed memory did not go back")
    if failures:
        bad.append(f"{len(failures)} probes unanswered")
    if not samples or ok < 0.9 * len(samples):
        bad.append(f"only {ok} of {len(samples)} probes succeeded")
    print("  result: " + ("FAIL: " + "; ".join(bad) if bad else "PASS"))
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
