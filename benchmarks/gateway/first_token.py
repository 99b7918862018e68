#!/usr/bin/env python3
"""Time to the first streamed event, direct to the backend and through the gateway, interleaved.

Each target is asked N times on one kept-alive connection (TLS set up once for the gateway):
the clock runs from sending the request to reading the first body bytes. Prints JSON with the
median and 90th percentile (ms) of each target.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import statistics
import sys
import time


def ask(conn, path, headers, body):
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    first = resp.read1(65536)
    elapsed = time.perf_counter() - start
    while resp.read1(65536):
        pass
    if resp.status != 200 or not first.startswith(b"data: "):
        raise SystemExit(f"{path}: status {resp.status}, first bytes {first[:60]!r}")
    return elapsed * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--ca", required=True)
    args = p.parse_args()
    body = json.dumps({"model": "bench-stream", "stream": True, "messages": []})
    direct = http.client.HTTPConnection("127.0.0.1", 18003)
    gateway = http.client.HTTPSConnection("127.0.0.1", 18443, context=ssl.create_default_context(cafile=args.ca))
    hdr = {"Content-Type": "application/json"}
    ghdr = dict(hdr, Authorization="Bearer " + os.environ["BENCH_KEY"])
    times = {"direct": [], "gateway": []}
    for _ in range(10):  # warm up both connections
        ask(direct, "/", hdr, body)
        ask(gateway, "/v1/chat/completions", ghdr, body)
    for _ in range(args.requests):
        times["direct"].append(ask(direct, "/", hdr, body))
        times["gateway"].append(ask(gateway, "/v1/chat/completions", ghdr, body))
    out = {}
    for name, t in times.items():
        t.sort()
        out[name] = {"median_ms": round(statistics.median(t), 3), "p90_ms": round(t[int(len(t) * 0.9)], 3)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
