#!/usr/bin/env python3
"""Gateway benchmark: the full gateway vs a bare nginx proxy and vs going direct, side by side.

Runs on this machine, loopback only, with Debian's nginx, its Lua module (the gateway) and njs
(the test backends), and `wrk` (`apt-get install nginx libnginx-mod-http-lua lua-cjson
libnginx-mod-http-js wrk`) and the collection's venv (for ansible,
which renders the gateway role's own templates). Four nginx instances are started in a
temporary directory and stopped at the end:

  backends  127.0.0.1:18001 fixed tiny answer, :18002 answer after 50 ms (njs setTimeout),
            :18003 a stream (first event at once, the rest 20 ms later)
  bare      127.0.0.1:18080 plain reverse proxy (no TLS, no key, routing by path); the same
            with the gateway's TLS settings on :18480 (for reference: TLS's share of the cost)
  gateway   127.0.0.1:18443 the role's nginx.conf/teamllm_gateway.lua/clients.json: TLS 1.2/1.3,
            Bearer key hashed by the Lua module, rate limit zones, routing by the body's `model`, JSON
            access log; the same with gateway_log_tokens false on :18444

  (a) tiny answer: gateway vs bare proxy requests/s (target >= 0.75x)
  (b) 50 ms backend: gateway vs direct requests/s (target >= 0.95x) and median latency
      (target: at most 1 ms added)
  (c) streamed first event: gateway vs direct, median (target: at most 1 ms later)

(a) and (b) alternate the two sides `--rounds` times (wrk, one thread, `--duration` seconds
each) and compare medians. Writes RESULTS.md beside this file (or --results).

  .venv/bin/python benchmarks/gateway/bench.py [--duration 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The gateway as the role's defaults make it, the same without the token-counting filter, and
# without its handler.
GATEWAYS = {"gateway": {}, "gateway_notokens": {"gateway_log_tokens": False, "bench_https_port": 18444,
                                                  "bench_http_port": 18082},
            # for reference: the same nginx.conf with /v1/chat/completions' Lua handler replaced by a
            # fixed upstream (TLS, headers, rate limit, JSON log; no key check, no routing)
            "gateway_static": {"gateway_log_tokens": False, "bench_https_port": 18445, "bench_http_port": 18083}}


def without_handler(conf: str) -> str:
    """The chat endpoint of a rendered nginx.conf with a fixed client and upstream (the tiny
    backend's) instead of its Lua handler."""
    backend = re.search(r"upstream teamllm_(m\d+) \{\n\s*server 127\.0\.0\.1:18001 ", conf).group(1)
    handler = re.compile(r"(location = /v1/chat/completions \{\n)\s*rewrite_by_lua_block \{\n[^}]*\}\n")
    assert handler.search(conf), "the chat endpoint's handler was not found"
    return handler.sub(rf"\1            set $teamllm_client bench;\n            set $teamllm_backend {backend};\n", conf)


TARGETS = {"a": 0.75, "b": 0.95, "b_latency_ms": 1.0, "c_ms": 1.0}


def sh(argv, **kw):
    r = subprocess.run(argv, check=False, text=True, capture_output=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def setup(bench: Path, key: str):
    (bench / "logs").mkdir()
    (bench / "tls").mkdir()
    (bench / "key").write_text(key)
    sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(bench / "tls/gateway.key"), "-out", str(bench / "tls/gateway.crt"), "-days", "2",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
    for name in ("backend.conf", "bare.conf", "backend.js"):
        (bench / name).write_text((HERE / name).read_text().replace("BENCH_DIR", str(bench)))
    venv_bin = ROOT / ".venv/bin"
    env = dict(os.environ, PATH=f"{venv_bin}:{os.environ['PATH']}",
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_LOCALHOST_WARNING="false")
    for out, extra in GATEWAYS.items():
        (bench / out).mkdir(exist_ok=True)
        sh(["ansible-playbook", "-i", "localhost,", str(HERE / "render.yml"), "-e", f"bench_dir={bench}",
            "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"bench_out={out}", "-e", json.dumps(extra)],
           env=env, cwd=HERE)
        conf = (bench / out / "nginx.conf").read_text()
        (bench / "logs" / out).mkdir()
        conf = conf.replace("/run/nginx.pid", f"{bench}/{out}.pid").replace("/var/log/nginx/", f"{bench}/logs/{out}/")
        conf = re.sub(r"(?m)^\s*listen \[::\].*\n", "", conf)
        conf = re.sub(r"(?m)^(\s*listen) (\d+)", r"\1 127.0.0.1:\2", conf)
        if out == "gateway_static":
            conf = without_handler(conf)
        (bench / out / "nginx.conf").write_text(conf)
    for conf_file in ["backend.conf", "bare.conf"] + [f"{out}/nginx.conf" for out in GATEWAYS]:
        sh(["nginx", "-t", "-q", "-c", str(bench / conf_file)])
        sh(["nginx", "-c", str(bench / conf_file)])
    time.sleep(1)


def stop(bench: Path):
    for pid_file in ["backend.pid", "bare.pid"] + [f"{out}.pid" for out in GATEWAYS]:
        pid = bench / pid_file
        if pid.exists():
            subprocess.run(["kill", "-QUIT", pid.read_text().strip()], check=False)


def wrk(url, body, key, connections, duration):
    env = dict(os.environ, BENCH_BODY=json.dumps(body), BENCH_KEY=key or "")
    out = sh(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(HERE / "post.lua"), url],
             env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": float(p50.group(1)) * scale, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1).strip() if errors else ""}


def side_by_side(pairs, rounds, duration, connections):
    """pairs: {name: (url, body, key)}; alternates them `rounds` times; medians per name."""
    runs = {name: [] for name in pairs}
    for _ in range(rounds):
        for name, (url, body, key) in pairs.items():
            runs[name].append(wrk(url, body, key, connections, duration))
    summary = {}
    for name, rs in runs.items():
        summary[name] = {"rps": statistics.median(r["rps"] for r in rs),
                         "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                         "rounds_rps": [round(r["rps"]) for r in rs],
                         "non_2xx": sum(r["non_2xx"] for r in rs),
                         "socket_errors": sorted({r["socket_errors"] for r in rs} - {""})}
    return summary


def verdict(ok):
    return "**pass**" if ok else "**miss**"


def report(res, args, path: Path):
    a, b, c = res["a"], res["b"], res["c"]
    ratio_a = a["gateway"]["rps"] / a["bare"]["rps"]
    ratio_a2 = a["gateway_notokens"]["rps"] / a["bare"]["rps"]
    ratio_b = b["gateway"]["rps"] / b["direct"]["rps"]
    added_b = b["gateway"]["p50_ms"] - b["direct"]["p50_ms"]
    added_c = c["gateway"]["median_ms"] - c["direct"]["median_ms"]
    load = os.getloadavg()
    lines = [
        "# Gateway benchmark results",
        "",
        f"- date: {res['date']}",
        f"- machine: {res['machine']}",
        f"- load average when the run started: {res['load_before']}; when it ended: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- software: {res['nginx']}, its Lua module {res['lua']} (gateway), njs {res['njs']} (test backends), "
        f"{res['wrk']}",
        f"- method: `benchmarks/gateway/bench.py --duration {args.duration} --rounds {args.rounds}`; wrk with one thread, "
        f"{args.connections_a} connections for (a) and {args.connections_b} for (b), each side {args.rounds} times "
        "alternately, medians compared; (c) one kept-alive connection per side, "
        f"{args.first_token_requests} requests each, interleaved. Everything on loopback, on the same 2 cores "
        "(clients, proxies and backends compete for them).",
        "",
        "| test | gateway | compared with | result | target | |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| (a) tiny answer, requests/s | {a['gateway']['rps']:.0f} | bare proxy {a['bare']['rps']:.0f} | "
        f"{ratio_a:.2f}x | >= {TARGETS['a']}x | {verdict(ratio_a >= TARGETS['a'])} |",
        f"| (a) same, `gateway_log_tokens: false` | {a['gateway_notokens']['rps']:.0f} | bare proxy {a['bare']['rps']:.0f} | "
        f"{ratio_a2:.2f}x | >= {TARGETS['a']}x | {verdict(ratio_a2 >= TARGETS['a'])} |",
        f"| (a) for reference: bare proxy with the gateway's TLS | {a['bare_tls']['rps']:.0f} | bare proxy {a['bare']['rps']:.0f} | "
        f"{a['bare_tls']['rps'] / a['bare']['rps']:.2f}x | (no target) | |",
        f"| (a) for reference: the gateway's nginx.conf without its Lua handler (no key check, no routing) | "
        f"{a['gateway_static']['rps']:.0f} | bare proxy {a['bare']['rps']:.0f} | "
        f"{a['gateway_static']['rps'] / a['bare']['rps']:.2f}x | (no target) | |",
        f"| (b) 50 ms backend, requests/s | {b['gateway']['rps']:.0f} | direct {b['direct']['rps']:.0f} | "
        f"{ratio_b:.3f}x | >= {TARGETS['b']}x | {verdict(ratio_b >= TARGETS['b'])} |",
        f"| (b) 50 ms backend, median latency | {b['gateway']['p50_ms']:.2f} ms | direct {b['direct']['p50_ms']:.2f} ms | "
        f"+{added_b:.2f} ms | <= +{TARGETS['b_latency_ms']} ms | {verdict(added_b <= TARGETS['b_latency_ms'])} |",
        f"| (c) first streamed event, median | {c['gateway']['median_ms']:.3f} ms | direct {c['direct']['median_ms']:.3f} ms | "
        f"+{added_c:.3f} ms | <= +{TARGETS['c_ms']} ms | {verdict(added_c <= TARGETS['c_ms'])} |",
        "",
        "Rounds (requests/s): "
        + "; ".join(f"({t}) {name} {res[t][name]['rounds_rps']}" for t in ("a", "b") for name in res[t]) + ".",
        "The gateway ran as the role renders it (defaults: TLS 1.2/1.3, session cache, Bearer key hashed by Lua, "
        "rate-limit zones, routing by the body's `model`, JSON access log with token counts) except loopback "
        "addresses, a self-signed P-256 certificate and limits raised so nothing is refused; "
        "(b) and (c) use the defaults (`gateway_log_tokens: true`).",
        f"Last access log entry of the run: `{res['log_sample']}`.",
        f"(c) 90th percentiles: gateway {c['gateway']['p90_ms']:.3f} ms, direct {c['direct']['p90_ms']:.3f} ms.",
        "Non-2xx answers: " + ", ".join(f"({t}) {name} {res[t][name]['non_2xx']}" for t in ("a", "b") for name in res[t])
        + "; socket errors: " + (", ".join(f"({t}) {n} {res[t][n]['socket_errors']}" for t in ("a", "b")
                                          for n in res[t] if res[t][n]["socket_errors"]) or "none") + ".",
        "",
    ]
    path.write_text("\n".join(lines) + res.get("notes", "") + "\n")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=8, help="seconds per wrk run (bounded: at most 30)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections-a", type=int, default=32)
    p.add_argument("--connections-b", type=int, default=64)
    p.add_argument("--first-token-requests", type=int, default=300)
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--notes", type=Path, help="Markdown appended to the results (analysis)")
    args = p.parse_args()
    args.duration = min(args.duration, 30)
    for tool in ("nginx", "wrk", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install nginx libnginx-mod-http-lua lua-cjson libnginx-mod-http-js wrk openssl")
    key = secrets.token_urlsafe(36)
    load = os.getloadavg()
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
                      f"{_cpu_model()}",
           "load_before": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
           "nginx": sh(["nginx", "-v"]).stderr.strip().replace("nginx version: ", ""),
           "lua": _dpkg_version("libnginx-mod-http-lua"),
           "njs": _dpkg_version("libnginx-mod-http-js"),
           "wrk": "wrk " + _dpkg_version("wrk")}
    bench = Path(tempfile.mkdtemp(prefix="teamllm-gateway-bench-"))
    try:
        setup(bench, key)
        tiny, slow = {"model": "bench-tiny", "messages": []}, {"model": "bench-slow", "messages": []}
        gw = "https://127.0.0.1:18443/v1/chat/completions"
        res["a"] = side_by_side({"bare": ("http://127.0.0.1:18080/tiny", tiny, None), "gateway": (gw, tiny, key),
                                 "gateway_notokens": (gw.replace("18443", "18444"), tiny, key),
                                 "bare_tls": ("https://127.0.0.1:18480/tiny", tiny, None),
                                 "gateway_static": (gw.replace("18443", "18445"), tiny, None)},
                                args.rounds, args.duration, args.connections_a)
        res["b"] = side_by_side({"direct": ("http://127.0.0.1:18002/", slow, None), "gateway": (gw, slow, key)},
                                args.rounds, args.duration, args.connections_b)
        out = sh([sys.executable, str(HERE / "first_token.py"), "--ca", str(bench / "tls/gateway.crt"),
                  "--requests", str(args.first_token_requests)], env=dict(os.environ, BENCH_KEY=key)).stdout
        res["c"] = json.loads(out)
        last = (bench / "logs/gateway/teamllm-access.log").read_text().splitlines()[-1]
        res["log_sample"] = last
    finally:
        stop(bench)
    if args.notes:
        res["notes"] = args.notes.read_text()
    print("\n".join(report(res, args, args.results)))
    print(json.dumps({k: v for k, v in res.items() if k in "abc"}, indent=1))
    shutil.rmtree(bench, ignore_errors=True)


def _dpkg_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=False)
    return r.stdout.strip() or "?"


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


if __name__ == "__main__":
    main()
