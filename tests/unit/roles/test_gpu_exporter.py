# Copyright: teamllm.stack contributors
# Apache License 2.0
"""teamllm's additions to nvitop-exporter (roles/gpu_exporter/files/teamllm_gpu_exporter.py),
against a fake NVML: throttle reasons, ECC, remapped rows, Xid errors counted from events with
their catalog action, and each planned engine unit's GPU memory next to its estimate. The real
exporter is run on a real GPU by tests/gpu/exporter_check.sh (results in tests/gpu/results/)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

ROOT = Path(__file__).resolve().parents[3]
SPEC = importlib.util.spec_from_file_location(
    "teamllm_gpu_exporter", ROOT / "roles" / "gpu_exporter" / "files" / "teamllm_gpu_exporter.py")
exporter = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(exporter)
MIB = 1 << 20


class FakeNvml:
    NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0
    nvmlEventTypeXidCriticalError = 0x8

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801
        pass

    class NVMLError_Timeout(NVMLError):  # noqa: N801
        pass

    def __init__(self):
        # GPU 0: a data-center card (ECC, row remapping); GPU 1: a GeForce card (neither)
        self.gpus = [
            {"uuid": "GPU-aaaa", "reasons": 0x4 | 0x40, "ecc": (1, 1), "errors": (3, 1),
             "rows": (2, 0, True, False),
             "procs": [(101, 900 * MIB), (102, 100 * MIB), (103, None)]},
            {"uuid": "GPU-bbbb", "reasons": 0x1, "ecc": None, "rows": None,
             "procs": [(201, 500 * MIB)]},
        ]
        self.events = []

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetUUID(self, handle):
        return self.gpus[handle]["uuid"]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self.gpus[handle]["reasons"]

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        raise AssertionError("the newer call is used when present")

    def nvmlDeviceGetEccMode(self, handle):
        if self.gpus[handle]["ecc"] is None:
            raise self.NVMLError_NotSupported()
        return list(self.gpus[handle]["ecc"])

    def nvmlDeviceGetTotalEccErrors(self, handle, kind, counter):
        return self.gpus[handle]["errors"][kind]

    def nvmlDeviceGetRemappedRows(self, handle):
        if self.gpus[handle]["rows"] is None:
            raise self.NVMLError_NotSupported()
        return self.gpus[handle]["rows"]

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in self.gpus[handle]["procs"]]

    def nvmlEventSetCreate(self):
        return "set"

    def nvmlDeviceRegisterEvents(self, handle, kinds, event_set):
        if handle == 1:
            raise self.NVMLError_NotSupported()

    def nvmlEventSetWait_v2(self, event_set, timeout_ms):
        if not self.events:
            raise self.NVMLError_Timeout()
        return self.events.pop(0)


@pytest.fixture
def proc(tmp_path):
    for pid, unit in ((101, "teamllm-llama-server@tiny-0.service"), (102, "user@1000.service"),
                      (201, "teamllm-ollama.service")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text(
            f"0::/system.slice/system-teamllm.slice/{unit}\n")
    return tmp_path


PLAN = [
    {"unit": "teamllm-llama-server@tiny-0.service", "engine": "llama_cpp", "instance_id": "tiny-0",
     "model": "tiny", "gpus": [{"index": 0, "uuid": "GPU-aaaa", "estimate_bytes": 800 * MIB}]},
    # declared GPUs have no UUID: matched by index
    {"unit": "teamllm-ollama.service", "engine": "ollama", "instance_id": "ollama",
     "model": "a,b", "gpus": [{"index": 1, "uuid": "", "estimate_bytes": 600 * MIB}]},
]


class Samples(dict):
    """Samples by (name, labels); ``m("name", label=value, ...)`` reads one."""

    def __call__(self, name, **labels):
        return self[(name, frozenset(labels.items()))]


def _scrape(collector):
    registry = prometheus_client.CollectorRegistry()
    registry.register(collector)
    samples = Samples()
    for family in registry.collect():
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


GPU0 = {"uuid": "GPU-aaaa", "index": "0"}
GPU1 = {"uuid": "GPU-bbbb", "index": "1"}


def test_throttle_reasons_ecc_rows_and_plan_against_reality(proc):
    nvml = FakeNvml()
    collector = exporter.TeamllmCollector(nvml, PLAN, proc=str(proc))
    m = _scrape(collector)
    assert m("teamllm_gpu_clocks_event_reason", **GPU0, reason="hw_thermal_slowdown") == 1
    assert m("teamllm_gpu_clocks_event_reason", **GPU0, reason="sw_power_cap") == 1
    assert m("teamllm_gpu_clocks_event_reason", **GPU0, reason="hw_slowdown") == 0
    assert m("teamllm_gpu_clocks_event_reason", **GPU1, reason="gpu_idle") == 1
    assert m("teamllm_gpu_ecc_mode_enabled", **GPU0) == 1
    assert m("teamllm_gpu_ecc_errors_total", **GPU0, type="uncorrected") == 1
    assert m("teamllm_gpu_remapped_rows", **GPU0, type="correctable") == 2
    assert m("teamllm_gpu_row_remap_pending", **GPU0) == 1
    # a GeForce card without ECC or row remapping: no such series, nothing fails
    assert not [k for k in m if dict(k[1]).get("uuid") == "GPU-bbbb" and ("ecc" in k[0] or "remap" in k[0])]
    # the llama.cpp unit holds 900 MiB where 800 were planned; 100 MiB belong to no plan
    llama = dict(GPU0, unit="teamllm-llama-server@tiny-0.service", engine="llama_cpp",
                 instance_id="tiny-0", model="tiny")
    assert m("teamllm_instance_gpu_memory_bytes", **llama) == 900 * MIB
    assert m("teamllm_instance_gpu_memory_estimate_bytes", **llama) == 800 * MIB
    assert m("teamllm_gpu_other_memory_bytes", **GPU0) == 100 * MIB
    ollama = dict(GPU1, unit="teamllm-ollama.service", engine="ollama", instance_id="ollama", model="a,b")
    assert m("teamllm_instance_gpu_memory_bytes", **ollama) == 500 * MIB
    assert m("teamllm_instance_gpu_memory_estimate_bytes", **ollama) == 600 * MIB


def test_xid_errors_are_counted_from_events_with_their_catalog_action(proc):
    nvml = FakeNvml()
    collector = exporter.TeamllmCollector(nvml, [], proc=str(proc))
    watcher = collector.watcher
    assert watcher.supported == {"GPU-aaaa": 1, "GPU-bbbb": 0}
    event = SimpleNamespace(device=0, eventType=nvml.nvmlEventTypeXidCriticalError, eventData=79)
    nvml.events = [event, SimpleNamespace(device=0, eventType=0x8, eventData=13), event]
    for _ in range(4):  # the fourth wait times out and counts nothing
        watcher.poll(timeout_ms=1)
    m = _scrape(collector)
    assert m("teamllm_gpu_xid_errors_total", **GPU0, xid="79", action="reboot") == 2
    assert m("teamllm_gpu_xid_errors_total", **GPU0, xid="13", action="restart_app") == 1
    assert m("teamllm_gpu_xid_events_supported", **GPU0) == 1
    assert m("teamllm_gpu_xid_events_supported", **GPU1) == 0


def test_xid_actions_follow_the_catalog_and_unknown_ones_say_so():
    assert exporter.xid_action(48) == "reset_gpu"  # double-bit ECC
    assert exporter.xid_action(79) == "reboot"  # fallen off the bus
    assert exporter.xid_action(13) == "restart_app"
    assert exporter.xid_action(999) == "unknown"
    assert set(exporter.XID_ACTIONS.values()) <= {"restart_app", "reset_gpu", "reboot", "check_hw", "watch"}


def test_units_are_read_from_the_cgroup_and_the_plan_from_its_file(proc, tmp_path):
    assert exporter.unit_of(101, str(proc)) == "teamllm-llama-server@tiny-0.service"
    assert exporter.unit_of(999, str(proc)) == ""
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(PLAN))
    assert exporter.load_plan(str(path)) == PLAN
    assert exporter.load_plan("") == []
