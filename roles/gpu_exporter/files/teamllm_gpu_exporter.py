# Copyright: teamllm.stack contributors
# Apache License 2.0
"""teamllm.stack's GPU exporter: nvitop-exporter (nvitop's Prometheus exporter, PyPI) with the
metrics it lacks, in one process and on one port.

nvitop-exporter already exports, per GPU with its UUID, utilisation, memory used/total,
temperature, power and its limit, clocks, fan, PCIe and NVLink throughput, and the GPU memory
of every process. It lacks what a team most needs to be told about; this adds it, read
through NVML (nvidia-ml-py, nvitop's own dependency), on each scrape:

- ``teamllm_gpu_clocks_event_reason{reason}``: 1 while a clocks event (throttle) reason is
  active - hardware slowdown, thermal slowdown, power brake, power cap, ...;
- ``teamllm_gpu_xid_errors_total{xid, action}``: Xid errors, counted from NVML's critical-error
  events by a background thread, each with the action NVIDIA's Xid catalog gives for it
  (``XID_ACTIONS``); ``teamllm_gpu_xid_events_supported`` says whether the GPU reports them;
- ``teamllm_gpu_ecc_mode_enabled`` and ``teamllm_gpu_ecc_errors_total{type}`` (volatile
  counts since the driver loaded) where the GPU has ECC; ``teamllm_gpu_remapped_rows{type}``,
  ``teamllm_gpu_row_remap_pending`` and ``teamllm_gpu_row_remap_failure`` where it remaps rows;
- plan against reality: for every engine unit the placement put on this GPU (``--plan``, a
  JSON file written by the role from the published plan), ``teamllm_instance_gpu_memory_bytes``
  (what NVML reports for the unit's processes, found by their systemd cgroup) next to
  ``teamllm_instance_gpu_memory_estimate_bytes`` (the placement's estimate), and
  ``teamllm_gpu_other_memory_bytes`` for processes of no planned unit.

Every metric carries ``uuid`` and ``index`` as nvitop's do. Run it as nvitop-exporter, with
``--plan FILE`` added:

    python3 teamllm_gpu_exporter.py --bind-address 10.0.0.5 --port 9400 --plan /etc/teamllm/gpu-plan.json
"""

from __future__ import annotations

import json
import re
import sys
import threading

# Xid -> the action NVIDIA's Xid catalog (docs.nvidia.com/deploy/xid-errors) gives for it:
#   restart_app  the application (here: the engine) faulted; restarting it clears the state
#   reset_gpu    the GPU must be reset (or the node rebooted) before it can be trusted again
#   reboot       the GPU fell off the bus or its firmware hung: reboot, then check the hardware
#   check_hw     a hardware or link problem to investigate (cooling, power, seating, NVLink)
#   watch        informational or self-corrected: watch the rate
XID_ACTIONS = {
    8: "restart_app", 13: "restart_app", 31: "restart_app", 43: "restart_app",
    45: "watch", 48: "reset_gpu", 61: "reset_gpu", 62: "reset_gpu", 63: "watch", 64: "reset_gpu",
    68: "restart_app", 69: "restart_app", 74: "check_hw", 79: "reboot", 92: "watch",
    94: "restart_app", 95: "reset_gpu", 109: "restart_app", 119: "reset_gpu", 120: "reset_gpu",
    121: "check_hw", 140: "reset_gpu", 154: "reset_gpu",
}
# NVML's clocks event (throttle) reason bits.
REASONS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap",
    0x8: "hw_slowdown", 0x10: "sync_boost", 0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting",
}
UNIT = re.compile(r"/([^/]+\.service)(?:/.*)?$")


def xid_action(xid):
    return XID_ACTIONS.get(int(xid), "unknown")


def unit_of(pid, proc="/proc"):
    """The systemd service a process runs in (from its cgroup), or ""."""
    try:
        with open(f"{proc}/{int(pid)}/cgroup", encoding="utf-8") as f:
            for line in f:
                path = line.rstrip("\n").split(":", 2)[-1]
                match = UNIT.search(path)
                if match:
                    return match.group(1)
    except OSError:
        pass
    return ""


def load_plan(path):
    """The role's plan file: [{unit, engine, instance_id, model, gpus: [{index, uuid,
    estimate_bytes}]}]; [] without one."""
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class XidWatcher:
    """Counts Xid errors from NVML's critical-error events, in a daemon thread."""

    def __init__(self, nvml, handles):
        self.nvml = nvml
        self.counts = {}
        self.supported = {}
        self.lock = threading.Lock()
        self.event_set = None
        try:
            self.event_set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError:
            return
        for uuid, handle in handles.items():
            try:
                nvml.nvmlDeviceRegisterEvents(handle, nvml.nvmlEventTypeXidCriticalError, self.event_set)
                self.supported[uuid] = 1
            except nvml.NVMLError:
                self.supported[uuid] = 0

    def start(self):
        if self.event_set is not None and any(self.supported.values()):
            threading.Thread(target=self.run, name="xid-events", daemon=True).start()

    def poll(self, timeout_ms=5000):
        """Wait for one event; count it when it is an Xid error."""
        try:
            data = self.nvml.nvmlEventSetWait_v2(self.event_set, timeout_ms)
        except self.nvml.NVMLError_Timeout:
            return
        if data.eventType & self.nvml.nvmlEventTypeXidCriticalError:
            uuid = _text(self.nvml.nvmlDeviceGetUUID(data.device))
            with self.lock:
                key = (uuid, int(data.eventData))
                self.counts[key] = self.counts.get(key, 0) + 1

    def run(self):
        while True:
            try:
                self.poll()
            except self.nvml.NVMLError as exc:  # a GPU lost: keep counting the others
                print(f"teamllm-gpu-exporter: NVML event wait failed: {exc}", file=sys.stderr)
                threading.Event().wait(5)


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class TeamllmCollector:
    """The metrics nvitop-exporter lacks, collected on every scrape (prometheus_client's
    custom collector)."""

    def __init__(self, nvml, plan=(), proc="/proc", watcher=None):
        self.nvml = nvml
        self.plan = list(plan)
        self.proc = proc
        self.devices = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            self.devices.append((str(index), _text(nvml.nvmlDeviceGetUUID(handle)), handle))
        self.watcher = watcher if watcher is not None else XidWatcher(
            nvml, {uuid: handle for _index, uuid, handle in self.devices})

    def _try(self, call, *args):
        try:
            return call(*args)
        except self.nvml.NVMLError:
            return None

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        gpu = ["uuid", "index"]
        reasons = GaugeMetricFamily("teamllm_gpu_clocks_event_reason",
                                    "1 while this clocks event (throttle) reason is active (NVML).",
                                    labels=gpu + ["reason"])
        ecc_mode = GaugeMetricFamily("teamllm_gpu_ecc_mode_enabled", "1 when ECC is on (GPUs with ECC).",
                                     labels=gpu)
        ecc = CounterMetricFamily("teamllm_gpu_ecc_errors", "ECC errors since the driver loaded (volatile).",
                                  labels=gpu + ["type"])
        remapped = GaugeMetricFamily("teamllm_gpu_remapped_rows", "Memory rows remapped (GPUs that remap rows).",
                                     labels=gpu + ["type"])
        remap_pending = GaugeMetricFamily("teamllm_gpu_row_remap_pending",
                                          "1 when a row remap waits for a GPU reset.", labels=gpu)
        remap_failure = GaugeMetricFamily("teamllm_gpu_row_remap_failure",
                                          "1 when a row remap failed (the GPU needs service).", labels=gpu)
        xid = CounterMetricFamily("teamllm_gpu_xid_errors",
                                  "Xid errors since the exporter started, with the action NVIDIA's Xid catalog gives.",
                                  labels=gpu + ["xid", "action"])
        xid_supported = GaugeMetricFamily("teamllm_gpu_xid_events_supported",
                                          "1 when the GPU reports Xid errors as NVML events.", labels=gpu)
        instance_labels = gpu + ["unit", "engine", "instance_id", "model"]
        used = GaugeMetricFamily("teamllm_instance_gpu_memory_bytes",
                                 "GPU memory the processes of an engine unit hold (NVML).",
                                 labels=instance_labels)
        estimate = GaugeMetricFamily("teamllm_instance_gpu_memory_estimate_bytes",
                                     "GPU memory the placement estimated for the engine unit.",
                                     labels=instance_labels)
        other = GaugeMetricFamily("teamllm_gpu_other_memory_bytes",
                                  "GPU memory held by processes of no planned engine unit.", labels=gpu)

        planned = {}
        for entry in self.plan:
            for g in entry.get("gpus") or []:
                planned[(entry["unit"], str(g.get("uuid") or ""), str(g["index"]))] = (entry, g)
        watcher_counts = {}
        if self.watcher is not None:
            with self.watcher.lock:
                watcher_counts = dict(self.watcher.counts)
        for index, uuid, handle in self.devices:
            ids = [uuid, index]
            mask = self._try(getattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
                             or self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons, handle)
            if mask is not None:
                for bit, name in REASONS.items():
                    reasons.add_metric(ids + [name], 1 if int(mask) & bit else 0)
            mode = self._try(self.nvml.nvmlDeviceGetEccMode, handle)
            if mode is not None:
                ecc_mode.add_metric(ids, 1 if mode[0] else 0)
                if mode[0]:
                    for kind, code in (("corrected", self.nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
                                       ("uncorrected", self.nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)):
                        count = self._try(self.nvml.nvmlDeviceGetTotalEccErrors, handle, code,
                                          self.nvml.NVML_VOLATILE_ECC)
                        if count is not None:
                            ecc.add_metric(ids + [kind], int(count))
            rows = self._try(getattr(self.nvml, "nvmlDeviceGetRemappedRows", lambda h: None), handle)
            if rows is not None:
                remapped.add_metric(ids + ["correctable"], int(rows[0]))
                remapped.add_metric(ids + ["uncorrectable"], int(rows[1]))
                remap_pending.add_metric(ids, 1 if rows[2] else 0)
                remap_failure.add_metric(ids, 1 if rows[3] else 0)
            if self.watcher is not None:
                xid_supported.add_metric(ids, self.watcher.supported.get(uuid, 0))
            for (xuuid, code), count in sorted(watcher_counts.items()):
                if xuuid == uuid:
                    xid.add_metric(ids + [str(code), xid_action(code)], count)

            held, others = {}, 0
            for process in self._try(self.nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []:
                memory = getattr(process, "usedGpuMemory", None)
                if memory is None:  # NVML_VALUE_NOT_AVAILABLE
                    continue
                unit = unit_of(process.pid, self.proc)
                key = next(((u, k_uuid, k_index) for (u, k_uuid, k_index) in planned
                            if u == unit and (k_uuid == uuid or (not k_uuid and k_index == index))), None)
                if key:
                    held[key] = held.get(key, 0) + int(memory)
                else:
                    others += int(memory)
            for key, (entry, g) in sorted(planned.items()):
                if key[1] != uuid and not (not key[1] and key[2] == index):
                    continue
                labels = ids + [entry["unit"], entry["engine"], entry["instance_id"], entry["model"]]
                used.add_metric(labels, held.get(key, 0))
                estimate.add_metric(labels, int(g.get("estimate_bytes") or 0))
            other.add_metric(ids, others)
        yield from (reasons, ecc_mode, ecc, remapped, remap_pending, remap_failure, xid,
                    xid_supported, used, estimate, other)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    plan_path = ""
    if "--plan" in argv:
        at = argv.index("--plan")
        plan_path = argv[at + 1] if at + 1 < len(argv) else ""
        del argv[at:at + 2]
    if any(a in ("-h", "--help", "-V", "--version") for a in argv):
        sys.argv = ["teamllm-gpu-exporter", *argv]
        from nvitop_exporter.cli import main as nvitop_main
        return nvitop_main()
    import pynvml
    from prometheus_client import REGISTRY

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        print(f"teamllm-gpu-exporter: NVML is not usable ({exc}): no NVIDIA driver on this host?",
              file=sys.stderr)
        return 1
    collector = TeamllmCollector(pynvml, load_plan(plan_path))
    collector.watcher.start()
    REGISTRY.register(collector)
    sys.argv = ["teamllm-gpu-exporter", *argv]
    from nvitop_exporter.cli import main as nvitop_main
    return nvitop_main()


if __name__ == "__main__":
    sys.exit(main())
