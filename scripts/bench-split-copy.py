#!/usr/bin/env python3
"""How long one automatic partition split takes, and how fast the child's rows are copied
(docs/PERFORMANCE.md, "Split copy rate").

Starts NODES release nodes with `--split-size-bytes SPLIT` (JSON logs), loads one on-demand
table through `shoal bench --preload` with items of ITEM_SIZE bytes to OVER times the split size,
and waits until the table has two partitions and every node dropped the rows it copied to the
child. From the node logs it reports, for the split:
  - the size the leader saw when it decided to split ("splitting a partition", size_bytes),
  - decision -> split applied to the partition's log ("partition split"),
  - per node: the copy of the child's rows ("child partition's rows copied from its parent",
    elapsed_ms) and its rate (the child's bytes from /status over elapsed_ms),
  - decision -> the last node dropped the parent's copy of the rows (end to end).

Usage: python3 scripts/bench-split-copy.py [--bin target/release/shoal] [--nodes 1]
       [--split-mib 64] [--item-size 4096] [--over 1.04]
No build: point --bin at a release binary (and --bench-bin at shoal-bench, else `shoal bench`).
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

AK, SK = "AKIDSHOALSPLITBENCH", "shoal-split-bench-secret"
TABLE = "splitcopy"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        return json.load(r)


def log_lines(path):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def ts(entry):
    t = entry["timestamp"].rstrip("Z")
    if "." in t:
        head, frac = t.split(".", 1)
        t = f"{head}.{frac[:6]}"
    return datetime.datetime.fromisoformat(t).replace(tzinfo=datetime.timezone.utc).timestamp()


def find(entries, message):
    return [e for e in entries if e.get("fields", {}).get("message") == message]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/shoal")
    ap.add_argument("--bench-bin", default=None)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--split-mib", type=float, default=64)
    ap.add_argument("--item-size", type=int, default=4096)
    ap.add_argument("--over", type=float, default=1.04)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()

    split = int(args.split_mib * (1 << 20))
    items = int(split * args.over / args.item_size) + 1
    work = tempfile.mkdtemp(prefix="shoal-split-copy-")
    shoal = os.path.join(work, "shoal")
    shutil.copy(args.bin, shoal)
    bench = [args.bench_bin] if args.bench_bin else [shoal, "bench"]
    env = dict(os.environ, SHOAL_ADMIN_ACCESS_KEY_ID=AK, SHOAL_ADMIN_SECRET_ACCESS_KEY=SK,
               SHOAL_LOG_FORMAT="json")
    env.pop("SHOAL_LOG", None)
    env.pop("RUST_LOG", None)
    procs, api, logs = [], [], []
    try:
        cluster = []
        for n in range(1, args.nodes + 1):
            a, c = free_port(), free_port()
            cmd = [shoal, "start", "--listen", f"127.0.0.1:{a}", "--cluster-listen", f"127.0.0.1:{c}",
                   "--data-dir", f"{work}/d{n}", "--keys-dir", f"{work}/k{n}",
                   "--split-size-bytes", str(split)]
            if n > 1:
                token = subprocess.run(
                    [shoal, "cluster", "join-token", "--data-dir", f"{work}/d1", "--keys-dir", f"{work}/k1"],
                    env=env, check=True, capture_output=True, text=True).stdout.strip()
                cmd += ["--join", cluster[0], "--join-token", token]
            path = f"{work}/n{n}.log"
            procs.append(subprocess.Popen(cmd, env=env, stdout=open(path, "w"), stderr=subprocess.STDOUT))
            api.append(a)
            cluster.append(f"127.0.0.1:{c}")
            logs.append(path)
            for _ in range(300):
                if port_open(a):
                    break
                time.sleep(0.1)
            else:
                sys.exit(f"node {n} did not start; see {path}")
        for _ in range(100):
            if len(status(api[0])["nodes"]) == args.nodes:
                break
            time.sleep(0.2)
        print(f"{args.nodes} node(s), split size {split} bytes; loading {items} items of "
              f"{args.item_size} bytes ({items * args.item_size / 1e6:.1f} MB)", file=sys.stderr)
        load_start = time.time()
        subprocess.run(bench + ["--endpoint", f"http://127.0.0.1:{api[0]}", "--access-key-id", AK,
                                "--secret-access-key", SK, "--table", TABLE, "--item-size",
                                str(args.item_size), "--items", str(items), "--preload", "--keep-table",
                                "--workload", "get", "--concurrency", "1", "--duration", "1s"],
                       check=True, stdout=subprocess.DEVNULL, stderr=open(f"{work}/bench.log", "w"))
        load_end = time.time()
        print(f"loaded in {load_end - load_start:.1f} s", file=sys.stderr)
        deadline = time.time() + args.timeout
        while True:
            s = status(api[0])
            parts = [g for g in s["groups"] if g["kind"] == "partition" and g["table"] == TABLE]
            dropped = [find(log_lines(p), "rows split off to the child partition dropped here") for p in logs]
            if len(parts) >= 2 and all(dropped) and not s["moves"]:
                break
            if time.time() > deadline:
                print(json.dumps({"moves": s["moves"], "partitions": parts}), file=sys.stderr)
                sys.exit("the split did not complete in time (logs: %s)" % work)
            time.sleep(0.5)
        done = time.time()
        entries = [log_lines(p) for p in logs]
        decided = [e for es in entries for e in find(es, "splitting a partition")]
        applied = [e for es in entries for e in find(es, "partition split")]
        first = min(decided, key=ts)
        parent = first["fields"]["group"]
        child_id = min((e for e in applied if e["fields"]["group"] == parent), key=ts)["fields"]["child"]
        child = next(g for g in parts if g["group"] == child_id)
        par = next(g for g in parts if g["group"] == parent)
        print(f"| | |")
        print(f"|---|---|")
        print(f"| nodes | {args.nodes} |")
        print(f"| table loaded | {items} items of {args.item_size} B in {load_end - load_start:.1f} s |")
        print(f"| partition size when the split was decided | {first['fields']['size_bytes'] / 1e6:.1f} MB "
              f"({'during' if ts(first) < load_end else 'after'} the load) |")
        print(f"| after: parent / child | {par['bytes'] / 1e6:.1f} MB ({par['items']} items) / "
              f"{child['bytes'] / 1e6:.1f} MB ({child['items']} items) |")
        split_applied = min(ts(e) for e in applied if e["fields"]["group"] == parent)
        print(f"| decision -> split applied to the parent's log | {split_applied - ts(first):.2f} s |")
        # The rows copied are the child's range as of the split: the child's size now when the
        # load had ended by then, else about half the parent's size at the decision.
        if split_applied >= load_end:
            copied, how = child["bytes"], "the child's size"
        else:
            copied, how = first["fields"]["size_bytes"] / 2, "about half the size at the decision"
        print(f"| bytes copied to the child | {copied / 1e6:.1f} MB ({how}) |")
        for n, es in enumerate(entries, 1):
            for e in find(es, "child partition's rows copied from its parent"):
                if e["fields"]["child"] != child_id:
                    continue
                ms = e["fields"]["elapsed_ms"]
                rate = copied / 1e6 / (ms / 1000) if ms else float("inf")
                print(f"| node {n}: copy of the child's rows | {ms / 1000:.2f} s, {rate:.1f} MB/s "
                      f"(ended {ts(e) - ts(first):.2f} s after the decision) |")
        last_drop = max(ts(e) for d in dropped for e in d if e["fields"]["child"] == child_id)
        print(f"| decision -> parent's copy of the rows dropped on every node (end to end) | "
              f"{last_drop - ts(first):.2f} s |")
        print(f"(observed by polling {done - ts(first):.1f} s after the decision; "
              f"{len(decided)} split decision(s) logged)", file=sys.stderr)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("KEEP_LOGS"):
            os.makedirs(os.environ["KEEP_LOGS"], exist_ok=True)
            for p in logs:
                shutil.copy(p, os.environ["KEEP_LOGS"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
