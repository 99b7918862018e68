#!/usr/bin/env python3
"""CPU the gateway's nginx spends per request, with and without a change to its Lua handlers:
a measurement that other load on the machine barely moves (bench.py's requests per second move
with every other job on the two cores; CPU time per request does not, to first order).

Starts bench.py's backends and the gateway as the role renders it (bench.setup), plus the same
gateway with its rendered teamllm_gateway.lua patched by --without (a Python file defining
PATCHES: [(old text, new text)], e.g. the lines a change added), on its own port. Then
alternates wrk runs against both, `--rounds` times, for the tiny answer and for a stream, and
reads the CPU time (utime + stime, /proc) of each nginx's processes before and after each run.

    .venv/bin/python benchmarks/gateway/cpu_cost.py --without benchmarks/gateway/without_first_byte.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = importlib.util.spec_from_file_location("bench", HERE / "bench.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(master_pid: int) -> float:
    """utime + stime of an nginx master and its workers."""
    pids = [master_pid] + [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(master_pid)], capture_output=True, text=True, check=False).stdout.split()]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def wrk_count(url, body, key, connections, duration):
    env = dict(os.environ, BENCH_BODY=json.dumps(body), BENCH_KEY=key)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(HERE / "post.lua"), url],
                         env=env, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return requests, int(bad.group(1)) if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--without", type=Path, required=True, help="file with PATCHES to the rendered Lua")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=6)
    p.add_argument("--connections", type=int, default=16)
    args = p.parse_args()
    spec = importlib.util.spec_from_file_location("patches", args.without)
    patches = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(patches)
    for tool in ("nginx", "wrk", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (apt-get install nginx libnginx-mod-http-lua lua-cjson "
                             "libnginx-mod-http-js wrk)")
    key = secrets.token_urlsafe(36)
    work = Path(tempfile.mkdtemp(prefix="gateway-cpu-"))
    try:
        bench.setup(work, key)
        # the same gateway without the change, on 18446
        before = work / "gateway_before"
        shutil.copytree(work / "gateway", before)
        lua = (before / "teamllm_gateway.lua").read_text()
        for old, new in patches.PATCHES:
            assert old in lua, f"patch not applicable: {old[:60]!r}"
            lua = lua.replace(old, new)
        (before / "teamllm_gateway.lua").write_text(lua)
        conf = (before / "nginx.conf").read_text().replace(str(work / "gateway"), str(before))
        conf = conf.replace(f"{work}/gateway.pid", f"{work}/gateway_before.pid")
        conf = conf.replace("127.0.0.1:18443", "127.0.0.1:18446").replace("127.0.0.1:18081", "127.0.0.1:18084")
        (work / "logs" / "gateway_before").mkdir()
        conf = conf.replace(f"{work}/logs/gateway/", f"{work}/logs/gateway_before/")
        (before / "nginx.conf").write_text(conf)
        bench.sh(["nginx", "-t", "-q", "-c", str(before / "nginx.conf")])
        bench.sh(["nginx", "-c", str(before / "nginx.conf")])
        time.sleep(1)
        sides = {"with the change": (18443, "gateway.pid"), "without": (18446, "gateway_before.pid")}
        loads = {"tiny answer": {"model": "bench-tiny", "messages": []},
                 "stream": {"model": "bench-stream", "messages": [], "stream": True}}
        results = {load: {side: [] for side in sides} for load in loads}
        for _ in range(args.rounds):
            for load, body in loads.items():
                for side, (port, pid_file) in sides.items():
                    master = int((work / pid_file).read_text())
                    start = cpu_seconds(master)
                    n, bad = wrk_count(f"https://127.0.0.1:{port}/v1/chat/completions", body, key,
                                       args.connections, args.duration)
                    used = cpu_seconds(master) - start
                    results[load][side].append({"us_per_request": 1e6 * used / max(n, 1), "requests": n,
                                                "non_2xx": bad})
        summary = {}
        for load, per_side in results.items():
            med = {side: statistics.median(r["us_per_request"] for r in runs) for side, runs in per_side.items()}
            summary[load] = {
                "median_us_per_request": {k: round(v, 1) for k, v in med.items()},
                "added_us": round(med["with the change"] - med["without"], 1),
                "added_share": round(med["with the change"] / med["without"] - 1, 4),
                "rounds_us": {side: [round(r["us_per_request"], 1) for r in runs] for side, runs in per_side.items()},
                "non_2xx": sum(r["non_2xx"] for runs in per_side.values() for r in runs),
            }
        summary["load_average"] = os.getloadavg()
        summary["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        print(json.dumps(summary, indent=1))
    finally:
        bench.stop(work)
        stop = work / "gateway_before.pid"
        if stop.exists():
            subprocess.run(["kill", "-QUIT", stop.read_text().strip()], check=False)
        time.sleep(1)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
