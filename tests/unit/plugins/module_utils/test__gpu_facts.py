from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._gpu_facts import (
    MIB,
    GpuFactsError,
    collect,
    compare,
    cuda_version_string,
    from_declared,
    from_nvml,
    memory_bandwidth_gbps,
    parse_cuda_version,
    parse_nvidia_smi_csv,
    parse_nvlink_status,
)

GIB = 1024 * MIB
H100_TOTAL = 85520809984


class NVMLError(Exception):
    pass


class FakeNVML:
    """The pynvml functions the module uses, answering for ``gpus`` (list of dicts)."""

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_MEM = 2

    def __init__(self, gpus, links=None, fail_init=False, errors=None):
        self.gpus = gpus
        self.links = links or {}  # index -> list of peer indices over active links
        self.fail_init = fail_init
        self.errors = errors or {}  # function name -> message to raise
        self.shutdown_called = False

    def _maybe_fail(self, name):
        if name in self.errors:
            raise NVMLError(self.errors[name])

    def nvmlInit(self):
        if self.fail_init:
            raise NVMLError("Driver Not Loaded")

    def nvmlShutdown(self):
        self.shutdown_called = True

    def nvmlSystemGetDriverVersion(self):
        return "580.159.04"

    def nvmlSystemGetCudaDriverVersion(self):
        return 13000

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUUID(self, h):
        return self.gpus[h].get("uuid", f"GPU-{h}")

    def nvmlDeviceGetName(self, h):
        return self.gpus[h].get("name", "NVIDIA H100 80GB HBM3")

    def nvmlDeviceGetMemoryInfo(self, h):
        total = self.gpus[h].get("total", H100_TOTAL)
        used = self.gpus[h].get("used", 480 * MIB)
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return self.gpus[h].get("cc", (9, 0))

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h):
        return 5

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h):
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(self, h):
        return 16

    def nvmlDeviceGetPowerManagementLimit(self, h):
        return 700000

    def nvmlDeviceGetMemoryBusWidth(self, h):
        self._maybe_fail("bus")
        return self.gpus[h].get("bus", 5120)

    def nvmlDeviceGetMaxClockInfo(self, h, clock):
        assert clock == self.NVML_CLOCK_MEM
        return self.gpus[h].get("mem_clock", 2619)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 37

    def nvmlDeviceGetPersistenceMode(self, h):
        return 1

    def nvmlDeviceGetMigMode(self, h):
        self._maybe_fail("mig")
        return (0, 0)

    def nvmlDeviceGetEccMode(self, h):
        self._maybe_fail("ecc")
        return (1, 1)

    def nvmlDeviceGetPciInfo(self, h):
        return SimpleNamespace(busId=f"00000000:{0x19 + h:02X}:00.0".encode())

    def nvmlDeviceGetNvLinkState(self, h, link):
        peers = self.links.get(h, [])
        if link >= len(peers):
            raise NVMLError("Not Supported")
        return 1

    def nvmlDeviceGetNvLinkRemotePciInfo(self, h, link):
        peer = self.links[h][link]
        return SimpleNamespace(busId=f"00000000:{0x19 + peer:02X}:00.0")


def test_nvml_h100_fields():
    nvml = FakeNVML([{}])
    facts = from_nvml(nvml)
    assert facts["source"] == "nvml"
    assert facts["gpu_count"] == 1
    assert facts["memory_total"] == H100_TOTAL
    assert facts["cuda_driver_version"] == "13.0"
    gpu = facts["gpus"][0]
    assert gpu["compute_capability"] == "9.0"
    assert gpu["memory_used"] == 480 * MIB
    assert gpu["memory_free"] == H100_TOTAL - 480 * MIB
    assert gpu["pcie_gen"] == 5 and gpu["pcie_width"] == 16
    assert gpu["power_limit_w"] == 700.0
    assert gpu["persistence_mode"] is True
    assert gpu["mig_mode"] is False
    assert gpu["ecc_enabled"] is True
    assert gpu["pci_bus_id"] == "0000:19:00.0"
    assert gpu["nvlink_peers"] == []
    assert facts["reason"] is None
    assert nvml.shutdown_called


def test_nvml_not_supported_is_null_without_warning_other_errors_warn():
    facts = from_nvml(FakeNVML([{}], errors={"mig": "Not Supported", "ecc": "Unknown Error"}))
    gpu = facts["gpus"][0]
    assert gpu["mig_mode"] is None
    assert gpu["ecc_enabled"] is None
    assert facts["warnings"] == ["gpu0.ecc: Unknown Error"]


def test_nvml_memory_bandwidth_from_bus_width_and_memory_clock():
    # an H200 read through NVML (tests/gpu run, 2026-12-01): 6016 bits, 3201 MHz max memory clock
    facts = from_nvml(FakeNVML([{"name": "NVIDIA H200", "bus": 6016, "mem_clock": 3201}, {}]))
    assert facts["gpus"][0]["memory_bandwidth_gbps"] == 4814.3  # spec sheet: 4.8 TB/s
    assert facts["gpus"][1]["memory_bandwidth_gbps"] == 3352.3  # H100 SXM: 3.35 TB/s
    assert memory_bandwidth_gbps(384, 10501) == 1008.1  # RTX 4090: 1008 GB/s
    assert memory_bandwidth_gbps(None, 3201) is None


def test_nvml_memory_bandwidth_unreadable_is_null():
    facts = from_nvml(FakeNVML([{}], errors={"bus": "Not Supported"}))
    assert facts["gpus"][0]["memory_bandwidth_gbps"] is None and facts["warnings"] == []

    class OldNVML:  # nvidia-ml-py before the bus-width call
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            if name == "nvmlDeviceGetMemoryBusWidth":
                raise AttributeError(name)
            return getattr(self._inner, name)

    old = from_nvml(OldNVML(FakeNVML([{}])))
    assert old["gpus"][0]["memory_bandwidth_gbps"] is None and old["warnings"] == []


def test_nvml_init_failure_is_empty_with_reason():
    facts = from_nvml(FakeNVML([], fail_init=True))
    assert facts["gpus"] == [] and facts["gpu_count"] == 0
    assert "Driver Not Loaded" in facts["reason"]


def test_nvml_no_gpu():
    facts = from_nvml(FakeNVML([]))
    assert facts["gpu_count"] == 0
    assert facts["reason"] == "NVML found no GPU"
    assert facts["driver_version"] == "580.159.04"


def test_nvml_nvlink_peers_and_totals():
    gpus = [{"total": 24 * GIB, "cc": (8, 6)} for _ in range(4)]
    facts = from_nvml(FakeNVML(gpus, links={0: [1], 1: [0], 2: [3, 3], 3: [2]}))
    assert [g["nvlink_peers"] for g in facts["gpus"]] == [[1], [0], [3], [2]]
    assert facts["memory_total"] == 96 * GIB
    assert facts["gpus"][0]["compute_capability"] == "8.6"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(13000, "13.0"), (12040, "12.4"), (11080, "11.8"), ("12.2", "12.2"), (None, None)],
)
def test_cuda_version_string(value, expected):
    assert cuda_version_string(value) == expected


# the line nvidia-smi printed on the project's H100 (tests/gpu/results/gpu_facts.json)
H100_CSV = (
    "0, GPU-aae531f8-0520-3342-d9ac-dff53bf5b986, NVIDIA H100 80GB HBM3, 81559, 0, 81080, 9.0, "
    "580.159.04, 5, 5, 16, 700.00, 37, Enabled, Disabled, Enabled, 00000000:00:06.0\n"
)


def test_parse_nvidia_smi_h100():
    facts = parse_nvidia_smi_csv(H100_CSV, cuda_driver_version="13.0")
    gpu = facts["gpus"][0]
    assert facts["source"] == "nvidia-smi"
    assert gpu["memory_total"] == 81559 * MIB
    assert gpu["memory_used"] == 0
    assert gpu["compute_capability"] == "9.0"
    assert gpu["power_limit_w"] == 700.0
    assert (gpu["persistence_mode"], gpu["mig_mode"], gpu["ecc_enabled"]) == (True, False, True)
    assert gpu["cuda_driver_version"] == "13.0"
    assert gpu["pci_bus_id"] == "0000:00:06.0"


def test_parse_nvidia_smi_consumer_card_with_na_fields():
    line = (
        "1, GPU-x, NVIDIA GeForce RTX 3090, 24576, 1, 24259, 8.6, 535.261.03, 1, 4, 16, 350.00, 40, "
        "Disabled, [N/A], [N/A], 00000000:2B:00.0\n"
    )
    facts = parse_nvidia_smi_csv(line)
    gpu = facts["gpus"][0]
    assert gpu["index"] == 1
    assert gpu["mig_mode"] is None and gpu["ecc_enabled"] is None
    assert gpu["pcie_gen"] == 1 and gpu["pcie_gen_max"] == 4
    assert facts["cuda_driver_version"] is None


@pytest.mark.parametrize("text", ["", "\n"])
def test_parse_nvidia_smi_empty_is_no_gpu(text):
    facts = parse_nvidia_smi_csv(text)
    assert facts["gpus"] == [] and facts["reason"]


def test_parse_nvidia_smi_wrong_columns():
    with pytest.raises(GpuFactsError, match="columns"):
        parse_nvidia_smi_csv("0, GPU-x, name\n")


def test_parse_cuda_version():
    banner = "| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: 13.0     |"
    assert parse_cuda_version(banner) == "13.0"
    assert parse_cuda_version("no banner") is None


def test_parse_nvlink_status():
    facts = parse_nvidia_smi_csv(
        H100_CSV.replace("0, GPU-aae", "0, GPU-a") + H100_CSV.replace("0, GPU-aae", "1, GPU-b", 1)
    )
    topo = "\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tNV18\t0-15\nGPU1\tNV18\t X \t0-15\n"
    parse_nvlink_status(topo, facts)
    assert [g["nvlink_peers"] for g in facts["gpus"]] == [[1], [0]]


def test_declared_counts_memory_and_nvlink():
    facts = from_declared(
        [
            {"name": "RTX 3090", "memory_gb": 24, "count": 2, "nvlink": True, "compute_capability": "8.6"},
            {"name": "RTX 4060 Ti", "memory_mib": 16380},
        ]
    )
    assert facts["source"] == "declared"
    assert facts["gpu_count"] == 3
    assert [g["index"] for g in facts["gpus"]] == [0, 1, 2]
    assert facts["gpus"][0]["memory_total"] == 24 * GIB
    assert facts["gpus"][0]["nvlink_peers"] == [1]
    assert facts["gpus"][2]["nvlink_peers"] == []
    assert facts["gpus"][2]["memory_total"] == 16380 * MIB
    assert facts["memory_total"] == 48 * GIB + 16380 * MIB
    assert all(g["source"] == "declared" for g in facts["gpus"])
    assert [g["memory_bandwidth_gbps"] for g in facts["gpus"]] == [None, None, None]


def test_declared_memory_bandwidth():
    facts = from_declared([{"name": "RTX 4060 Ti", "memory_gb": 16, "memory_bandwidth_gbps": "288"}])
    assert facts["gpus"][0]["memory_bandwidth_gbps"] == 288.0


@pytest.mark.parametrize("declared", [None, []])
def test_declared_cpu_host(declared):
    facts = from_declared(declared)
    assert facts["gpus"] == [] and "no GPU declared" in facts["reason"]


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ([{"memory_gb": 24}], "'name' is required"),
        ([{"name": "x"}], "memory_gb"),
        ([{"name": "x", "memory_gb": 0}], "positive"),
        ([{"name": "x", "memory_gb": 8, "count": 0}], "count"),
        ([{"name": "x", "memory_gb": 8, "vram": 8}], "unknown keys"),
        ([{"name": "x", "memory_gb": 8, "memory_bandwidth_gbps": 0}], "memory_bandwidth_gbps"),
        ([{"name": "x", "memory_gb": 8, "memory_bandwidth_gbps": "fast"}], "positive number"),
        (["RTX 3090"], "must be a dict"),
    ],
)
def test_declared_errors(declared, message):
    with pytest.raises(GpuFactsError, match=message):
        from_declared(declared)


def test_compare_finds_differences_and_tolerates_memory_noise():
    a = from_nvml(FakeNVML([{}]))
    b = parse_nvidia_smi_csv(H100_CSV.replace("GPU-aae531f8-0520-3342-d9ac-dff53bf5b986", "GPU-0"))
    b["gpus"][0]["pci_bus_id"] = a["gpus"][0]["pci_bus_id"]
    assert compare(a, b) == []  # used 480 MiB (NVML) vs 0 MiB (nvidia-smi): within tolerance
    b["gpus"][0]["power_limit_w"] = 450.0
    assert compare(a, b) == ["gpu0.power_limit_w: nvml=700.0 nvidia-smi=450.0"]


def test_collect_prefers_declared_then_nvml_then_smi():
    assert collect(declared=[{"name": "x", "memory_gb": 8}])["source"] == "declared"
    assert collect(load_nvml=lambda: FakeNVML([{}]))["source"] == "nvml"

    calls = []

    def run(argv):
        calls.append(argv)
        if argv == ["nvidia-smi"]:
            return 0, "CUDA Version: 12.4", ""
        return 0, H100_CSV, ""

    def no_nvml():
        raise ImportError("No module named 'pynvml'")

    facts = collect(load_nvml=no_nvml, run_command=run)
    assert facts["source"] == "nvidia-smi"
    assert facts["cuda_driver_version"] == "12.4"
    assert calls[0][1].startswith("--query-gpu=index,uuid,name,memory.total")


def test_collect_no_gpu_anywhere_is_not_an_error():
    facts = collect(load_nvml=lambda: FakeNVML([], fail_init=True), nvidia_smi=None)
    assert facts["gpus"] == []
    assert "Driver Not Loaded" in facts["reason"] and "nvidia-smi not found" in facts["reason"]


def test_collect_bad_source():
    with pytest.raises(GpuFactsError):
        collect(source="rocm")
