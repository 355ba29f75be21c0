#!/usr/bin/env python3
"""Buckets perf samples of a Shoal server by what the request path is doing.

Reads `perf script -F tid,ip,sym,dso` output (with call chains) on stdin. Frames are scanned from
the leaf towards the root, generic arguments stripped; the first frame matching a category decides
(categories listed most specific first), so a sample in SHA-256 under SQLCipher counts as
"sqlcipher page crypto", one in malloc under serde_json as "allocation", one in the kernel's
scheduler as "thread hand-offs". Prints one line per category: share of samples.
"""
import re
import sys
from collections import Counter

# (category, regex on a frame's symbol), most specific first.
CATEGORIES = [
    ("sqlcipher page crypto (AES/HMAC)", r"sqlcipher_page_cipher|sqlcipher_page_hmac|sqlcipher_openssl"),
    ("sqlite (b-tree, VDBE, pager)", r"^sqlite3|^pcache|^btree|^pager|^moveTo|^getPage|^readDbPage|^walFindFrame|^walTryBeginRead|^vdbe|^sqlcipher"),
    ("sigv4 verify (hash, HMAC, canonical)", r"shoal_api::sigv4"),
    ("allocation (malloc/free)", r"^malloc|^_int_malloc|^_int_free|^cfree|^free$|^malloc_consolidate|^unlink_chunk|^__rdl_|^realloc|^_int_realloc"),
    ("JSON (serde_json, shoal_types::json)", r"serde_json|shoal_types::json"),
    ("item codec / types", r"shoal_types::"),
    ("expression parsing / evaluation", r"shoal_expr::"),
    ("thread hand-offs (futex, context switches, epoll)", r"futex|epoll|^schedule$|__schedule|finish_task_switch|pick_next|try_to_wake_up|sched_|_raw_spin_unlock_irq"),
    ("TCP send/receive (kernel)", r"tcp_|sock_|__sys_sendto|__sys_recvfrom|sys_writev|sys_readv|ksys_read|ksys_write|vfs_writev|vfs_read|vfs_write|skb|inet_|ip_|__dev_queue|loopback|net_rx|netif"),
    ("file reads (pread of pages, kernel)", r"ksys_pread|filemap_read|pread"),
    ("other kernel (syscall entry/exit, irq)", r"^do_syscall|entry_SYSCALL|syscall_exit|irqentry|exit_to_user|\[k\]"),
    ("hyper HTTP/1.1", r"hyper::|http::header|httparse"),
    ("tokio runtime (tasks, blocking pool)", r"tokio::"),
    ("shoal-api handlers", r"shoal_api::"),
    ("shoal-node / shoal-storage", r"shoal_node::|shoal_storage::"),
]
COMPILED = [(name, re.compile(rx)) for name, rx in CATEGORIES]


def strip_generics(sym):
    while True:
        out = re.sub(r"(?<=[\w\]])<[^<>]*>", "", sym)
        if out == sym:
            return out
        sym = out


def classify(frames):
    for sym in frames:
        sym = strip_generics(sym)
        for name, rx in COMPILED:
            if rx.search(sym):
                return name
    return "other"


def main():
    counts = Counter()
    kernel = 0
    total = 0
    frames = []
    leaf_kernel = None

    def flush():
        nonlocal kernel, total
        if frames:
            total += 1
            counts[classify(frames)] += 1
            if leaf_kernel:
                kernel += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            frames, leaf_kernel = [], None
            continue
        if line.startswith((" ", "\t")) and frames is not None:
            parts = line.split(None, 1)
            if len(parts) == 2:
                sym = parts[1].strip()
                if leaf_kernel is None:
                    leaf_kernel = "kernel.kallsyms" in sym
                sym = re.sub(r"\s*\([^()]*\)$", "", sym)
                frames.append(sym)
        # header lines (tid) start a new sample; nothing to do
    flush()
    if total == 0:
        print("no samples")
        return
    print(f"samples: {total}, leaf in the kernel: {100.0 * kernel / total:.1f}%")
    for name, n in counts.most_common():
        print(f"{100.0 * n / total:6.1f}%  {name}")


if __name__ == "__main__":
    main()
