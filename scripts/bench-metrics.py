#!/usr/bin/env python3
"""What one GET /metrics costs a node with many tables (docs/PERFORMANCE.md, "Metrics scrape cost").

Starts one release node, creates TABLES tables (PutItem and GetItem traffic on each, so every
table has request, latency and capacity series), then scrapes /metrics SCRAPES times in a row and
reports the scrape latency (p50, p99, max), the body size, the number of samples, and the node's
CPU time per scrape (utime+stime of its process over the scrapes).

Usage: python3 scripts/bench-metrics.py [--bin target/release/shoal] [--tables 100] [--scrapes 200]
Needs boto3 (the test venv has it: ~/.cache/shoal-test-venv/bin/python).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config

AK, SK = "AKIDSHOALMETRICSBENCH", "shoal-metrics-bench-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=None)
    ap.add_argument("--tables", type=int, default=100)
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    binary = args.bin or os.path.join(target, "release", "shoal")
    work = tempfile.mkdtemp(prefix="bench-metrics-")
    port, cport = free_port(), free_port()
    env = dict(os.environ, SHOAL_ADMIN_ACCESS_KEY_ID=AK, SHOAL_ADMIN_SECRET_ACCESS_KEY=SK)
    node = subprocess.Popen(
        [binary, "start", "--listen", f"127.0.0.1:{port}", "--cluster-listen",
         f"127.0.0.1:{cport}", "--data-dir", f"{work}/data", "--keys-dir", f"{work}/keys"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/node.log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id=AK, aws_secret_access_key=SK,
                           config=Config(retries={"max_attempts": 10}))
        for t in range(args.tables):
            name = f"metrics{t:03d}"
            ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
            ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"S": "x" * 100}})
            ddb.get_item(TableName=name, Key={"pk": {"S": "a"}})
        took, size, samples = [], 0, 0
        cpu0 = cpu_seconds(node.pid)
        for _ in range(args.scrapes):
            started = time.perf_counter()
            body = urllib.request.urlopen(url + "/metrics", timeout=10).read()
            took.append(time.perf_counter() - started)
            size = len(body)
            samples = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        cpu = (cpu_seconds(node.pid) - cpu0) / args.scrapes
        took.sort()
        pct = lambda p: took[min(len(took) - 1, int(p * len(took)))] * 1000
        print(f"| tables | scrapes | p50 | p99 | max | body | samples | node CPU per scrape |")
        print(f"|---|---|---|---|---|---|---|---|")
        print(f"| {args.tables} | {args.scrapes} | {pct(0.5):.2f} ms | {pct(0.99):.2f} ms | "
              f"{took[-1] * 1000:.2f} ms | {size / 1024:.0f} KiB | {samples} | {cpu * 1000:.2f} ms |")
    finally:
        node.kill()
        node.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
