#!/usr/bin/env python3
"""The plan against reality of tests/gpu/exporter_check.sh: the placement's estimate for the
llama-server instance next to what it holds on the GPU, read from the exporter's two scrapes
and nvidia-smi, written to OUT/plan-vs-reality.json with the date, GPU, UUID and driver.

    exporter_report.py OUT ESTIMATE.json APPS.csv [PID] [UNIT]

PID: llama-server's (a plain process); UNIT: its systemd unit (then its MainPID is the pid).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

MIB = 1 << 20
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(path):
    """[(name, labels, value)] of a Prometheus text exposition."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = SAMPLE.match(line.strip())
            if match and not line.startswith("#"):
                rows.append((match.group(1), dict(LABEL.findall(match.group(2) or "")), float(match.group(3))))
    return rows


def one(rows, name, **want):
    values = [v for n, labels, v in rows if n == name and all(labels.get(k) == w for k, w in want.items())]
    return values[0] if values else None


def report(out, estimate_file, apps_file, pid="", unit="", smi=None):
    with open(estimate_file, encoding="utf-8") as f:
        est = json.load(f)
    idle, loaded = samples(f"{out}/metrics-idle.txt"), samples(f"{out}/metrics-loaded.txt")
    if not pid and unit:
        pid = subprocess.run(["systemctl", "show", "-P", "MainPID", unit], capture_output=True,
                             text=True, check=False).stdout.strip()
    with open(apps_file, encoding="utf-8") as f:
        apps = [[c.strip() for c in line.split(",")] for line in f.read().splitlines() if line.count(",") >= 2]
    app_bytes = {a[0]: float(a[2]) * MIB for a in apps if a[2].replace(".", "", 1).isdigit()}
    if smi is None:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,uuid,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=False).stdout
    name, uuid, driver = ([c.strip() for c in smi.strip().splitlines()[0].split(",")] + ["", "", ""])[:3] \
        if smi.strip() else ("", "", "")
    info = next((labels for n, labels, _ in loaded if n == "nvitop_info"), {})
    estimate = int(est["instance"]["bytes_per_gpu"][0])
    process = one(loaded, "process_gpu_memory_MiB", pid=str(pid))
    matched = "pid"
    if process is None:
        # NVML reports host pids; in a container with a pid namespace of its own they differ from
        # the one the script saw: take the one GPU process that appeared with llama-server
        before = {labels.get("pid") for n, labels, _ in idle if n == "process_gpu_memory_MiB"}
        new = [(labels.get("pid"), v) for n, labels, v in loaded
               if n == "process_gpu_memory_MiB" and labels.get("pid") not in before]
        if len(new) == 1:
            nvml_pid, process = new[0]
            matched = f"the only new GPU process (NVML pid {nvml_pid})"
    used_idle = one(idle, "gpu_memory_used_MiB", index="0")
    used_loaded = one(loaded, "gpu_memory_used_MiB", index="0")
    measured = {
        "pid": str(pid),
        "process_matched_by": matched if process is not None else "not found in NVML's process list",
        "unit": unit or "(a plain process: no systemd on this machine)",
        "nvml_process_bytes": int(process * MIB) if process is not None else None,
        "nvidia_smi_compute_app_bytes": int(app_bytes[str(pid)]) if str(pid) in app_bytes else None,
        "gpu_used_loaded_minus_idle_bytes": (int((used_loaded - used_idle) * MIB)
                                             if None not in (used_idle, used_loaded) else None),
        "teamllm_instance_gpu_memory_bytes": one(loaded, "teamllm_instance_gpu_memory_bytes"),
        "teamllm_instance_gpu_memory_estimate_bytes": one(loaded, "teamllm_instance_gpu_memory_estimate_bytes"),
        "teamllm_gpu_other_memory_bytes": one(loaded, "teamllm_gpu_other_memory_bytes", index="0"),
    }
    result = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": {"name": name, "uuid": uuid, "driver": info.get("driver_version") or driver,
                "cuda_driver": info.get("cuda_driver_version")},
        "plan": {k: est.get(k) for k in ("model", "quantization", "context", "parallel")},
        "settings": est["instance"].get("settings"),
        "estimate_bytes": estimate,
        "estimate_breakdown": est["instance"].get("breakdown"),
        "measured": measured,
        "measured_over_estimate": (round(measured["nvml_process_bytes"] / estimate, 4)
                                   if measured["nvml_process_bytes"] else None),
        "teamllm_metric_names": sorted({n for n, _, _ in loaded if n.startswith("teamllm_")}),
    }
    with open(f"{out}/plan-vs-reality.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return result


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    out, estimate_file, apps_file = argv[:3]
    pid = argv[3] if len(argv) > 3 else ""
    unit = argv[4] if len(argv) > 4 else ""
    result = report(out, estimate_file, apps_file, pid, unit)
    print(json.dumps({k: result[k] for k in ("gpu", "estimate_bytes", "measured", "measured_over_estimate")},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
