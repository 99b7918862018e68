#!/usr/bin/env python3
"""Start llama-server on one GGUF file, read GPU memory through NVML, append one JSON line.

    python3 tests/gpu/measure_server.py SERVER MODEL.gguf LABEL CTX PARALLEL OUT.jsonl LOGDIR [ARGS...]

Extra ARGS go to llama-server (e.g. -ngl 20 for a partial offload; the default is -ngl 999).

Readings (bytes): the device's used memory before start (baseline), after the model is
loaded (/health answers 200), after one ~600-token completion; the server process's own
usage as NVML lists it; the host RSS of the server; and llama.cpp's own buffer-size log lines.
The server runs with -ngl 999 (full offload), -fa off, --fit off, -c CTX*PARALLEL -np PARALLEL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pynvml

PORT = 18091


def used(handle) -> int:
    return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)


def process_used(handle, pid: int) -> int | None:
    try:
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except pynvml.NVMLError:
        return None
    for proc in procs:
        if proc.pid == pid and proc.usedGpuMemory is not None:
            return int(proc.usedGpuMemory)
    return None


def rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def http(path: str, body: dict | None = None, timeout: float = 5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return resp.status, resp.read()


BUFFER_RE = re.compile(r"(\S+) (model|KV|compute|output|RS) buffer size\s*=\s*([0-9.]+) MiB")


def main(argv: list[str]) -> int:
    server, model, label, ctx, parallel, out, logdir = argv[1:8]
    extra = argv[8:]
    ctx, parallel = int(ctx), int(parallel)
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    baseline = used(handle)
    log_path = os.path.join(logdir, f"{label}.log")
    cmd = [
        server,
        "-m",
        model,
        "-c",
        str(ctx * parallel),
        "-np",
        str(parallel),
        "-ngl",
        "999",
        *extra,
        "-fa",
        "off",
        "--fit",
        "off",
        "--host",
        "127.0.0.1",
        "--port",
        str(PORT),
        "-t",
        "8",
    ]
    record = {
        "label": label,
        "model": model,
        "ctx": ctx,
        "parallel": parallel,
        "cmd": cmd,
        "extra": extra,
        "file_bytes": os.path.getsize(model),
        "baseline_used": baseline,
    }
    t0 = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            ok = False
            while time.time() - t0 < 120 and proc.poll() is None:
                try:
                    if http("/health", timeout=2)[0] == 200:
                        ok = True
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            record["load_s"] = round(time.time() - t0, 1)
            record["loaded"] = ok
            if ok:
                time.sleep(1.0)
                record["after_load_used"] = used(handle)
                record["after_load_process"] = process_used(handle, proc.pid)
                prompt = " ".join(["the of and to in is that it for on"] * max(1, min(60, ctx // 64)))
                t1 = time.time()
                try:
                    status, _ = http(
                        "/completion", {"prompt": prompt, "n_predict": 16, "temperature": 0}, timeout=120
                    )
                    record["request_status"] = status
                except OSError as exc:
                    record["request_error"] = str(exc)
                record["request_s"] = round(time.time() - t1, 2)
                time.sleep(0.5)
                record["after_request_used"] = used(handle)
                record["after_request_process"] = process_used(handle, proc.pid)
                record["host_rss"] = rss(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    record["exit_code"] = proc.returncode
    buffers = []
    with open(log_path, errors="replace") as fh:
        text = fh.read()
    for match in BUFFER_RE.finditer(text):
        buffers.append([match.group(1), match.group(2), float(match.group(3))])
    record["buffers_mib"] = buffers
    for key in ("n_ctx", "n_ctx_seq", "n_batch", "n_ubatch", "flash_attn", "kv_unified"):
        found = re.search(rf"llama_context: {key}\s*=\s*(\S+)", text)
        if found:
            record[key] = found.group(1)
    with open(out, "a") as fh:
        fh.write(json.dumps(record) + "\n")
    mib = 1024 * 1024
    delta = (record.get("after_request_used", baseline) - baseline) / mib
    print(
        f"{label}: loaded={record['loaded']} load={record['load_s']}s "
        f"delta_used={delta:.0f}MiB proc={record.get('after_request_process')} "
        f"buffers={buffers}",
        flush=True,
    )
    pynvml.nvmlShutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
