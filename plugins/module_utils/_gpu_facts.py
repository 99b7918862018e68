# Copyright (c) teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""GPU facts: NVML readings, ``nvidia-smi`` CSV output or inventory declarations, normalised.

Private to the collection (the leading underscore): pure Python, standard library only,
importable and tested without Ansible. The NVML library is passed in (``nvml=``) so tests use
a fake; the module passes ``pynvml`` from nvidia-ml-py.

Every source gives the same shape (see ``empty_facts``)::

    {
      "source": "nvml" | "nvidia-smi" | "declared" | "none",
      "gpu_count": 1,
      "memory_total": 85520809984,          # bytes, sum over GPUs
      "driver_version": "580.159.04",        # None when declared
      "cuda_driver_version": "13.0",         # None when unknown
      "gpus": [ {index, uuid, name, memory_total, memory_used, memory_free,
                 compute_capability, driver_version, cuda_driver_version,
                 pcie_gen, pcie_gen_max, pcie_width, power_limit_w, memory_bandwidth_gbps,
                 temperature_c, persistence_mode, mig_mode, ecc_enabled, nvlink_peers,
                 source}, ...],
      "reason": None,                       # why the list is empty, when it is
      "warnings": [],                       # fields that could not be read
    }

A host without an NVIDIA GPU is not an error: ``gpus`` is empty and ``reason`` says why.
"""

from __future__ import annotations

import csv
import io
import re

MIB = 1024 * 1024
GIB = 1024 * MIB

SOURCES = ("nvml", "nvidia-smi", "declared", "none")

GPU_FIELDS = (
    "index",
    "uuid",
    "pci_bus_id",
    "name",
    "memory_total",
    "memory_used",
    "memory_free",
    "compute_capability",
    "driver_version",
    "cuda_driver_version",
    "pcie_gen",
    "pcie_gen_max",
    "pcie_width",
    "power_limit_w",
    "memory_bandwidth_gbps",
    "temperature_c",
    "persistence_mode",
    "mig_mode",
    "ecc_enabled",
    "nvlink_peers",
    "source",
)

# The query the nvidia-smi fallback runs; parse_nvidia_smi_csv expects these columns in order.
NVIDIA_SMI_FIELDS = (
    "index",
    "uuid",
    "name",
    "memory.total",
    "memory.used",
    "memory.free",
    "compute_cap",
    "driver_version",
    "pcie.link.gen.current",
    "pcie.link.gen.max",
    "pcie.link.width.current",
    "power.limit",
    "temperature.gpu",
    "persistence_mode",
    "mig.mode.current",
    "ecc.mode.current",
    "pci.bus_id",
)
NVIDIA_SMI_QUERY = ",".join(NVIDIA_SMI_FIELDS)


def nvidia_smi_command(binary: str = "nvidia-smi") -> list[str]:
    """The argv of the fallback query."""
    return [binary, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"]


class GpuFactsError(ValueError):
    """Input that cannot be turned into facts (malformed CSV or declaration)."""


def empty_facts(reason: str | None = None, source: str = "none") -> dict:
    return {
        "source": source,
        "gpu_count": 0,
        "memory_total": 0,
        "driver_version": None,
        "cuda_driver_version": None,
        "gpus": [],
        "reason": reason,
        "warnings": [],
    }


def _blank_gpu(index: int, source: str) -> dict:
    gpu = dict.fromkeys(GPU_FIELDS)
    gpu["index"] = index
    gpu["nvlink_peers"] = []
    gpu["source"] = source
    return gpu


def _finish(gpus: list[dict], source: str, warnings: list[str] | None = None) -> dict:
    facts = empty_facts(None if gpus else "no GPU found", source)
    facts["gpus"] = sorted(gpus, key=lambda g: g["index"])
    facts["gpu_count"] = len(gpus)
    facts["memory_total"] = sum(g["memory_total"] or 0 for g in gpus)
    drivers = {g["driver_version"] for g in gpus if g["driver_version"]}
    cudas = {g["cuda_driver_version"] for g in gpus if g["cuda_driver_version"]}
    facts["driver_version"] = drivers.pop() if len(drivers) == 1 else None
    facts["cuda_driver_version"] = cudas.pop() if len(cudas) == 1 else None
    facts["warnings"] = list(warnings or [])
    return facts


def cuda_version_string(value: int | str | None) -> str | None:
    """NVML's ``nvmlSystemGetCudaDriverVersion`` integer (13000) as "13.0"."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip() or None
    major, rest = divmod(int(value), 1000)
    return f"{major}.{rest // 10}"


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _norm_bus_id(bus_id) -> str:
    """PCI bus ids as NVML ("00000000:19:00.0") and nvidia-smi print them, comparable."""
    text = _text(bus_id).strip().strip("\x00").lower()
    parts = text.split(":")
    if len(parts) == 3:
        try:
            return f"{int(parts[0], 16):04x}:{parts[1]}:{parts[2]}"
        except ValueError:
            return text
    return text


# ---------------------------------------------------------------------------- NVML


def from_nvml(nvml, shutdown: bool = True) -> dict:
    """Read every GPU through an NVML binding (``pynvml`` or a fake with the same names).

    A failure to initialise (no driver, no GPU) gives empty facts with a ``reason``; a field a
    GPU does not support (MIG on consumer cards, ECC on GeForce) is ``None`` and the error is
    listed in ``warnings`` only when it is not a plain "not supported".
    """
    try:
        nvml.nvmlInit()
    # pynvml raises NVMLError subclasses made at run time; any failure means "no NVML"
    except Exception as exc:  # noqa: BLE001
        return empty_facts(f"NVML could not be initialised: {exc}")
    warnings: list[str] = []
    try:
        return _read_nvml(nvml, warnings)
    finally:
        if shutdown:
            try:
                nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001, S110 - nothing to do on a failed shutdown
                pass


def memory_bandwidth_gbps(bus_width_bits, max_memory_clock_mhz) -> float | None:
    """Peak memory bandwidth in GB/s from NVML's memory bus width (bits) and maximum memory
    clock (MHz): two transfers per clock, as NVML reports the clock for GDDR6/6X and HBM alike
    (an H200 reads 6016 bits x 3201 MHz = 4814 GB/s, its spec sheet says 4.8 TB/s; an RTX
    4090 384 bits x 10501 MHz = 1008 GB/s)."""
    if not bus_width_bits or not max_memory_clock_mhz:
        return None
    return round(int(bus_width_bits) / 8 * int(max_memory_clock_mhz) * 2 / 1000, 1)


def _not_supported(exc: Exception) -> bool:
    text = str(exc).lower()
    return "not supported" in text or "not_supported" in text


def _read_nvml(nvml, warnings: list[str]) -> dict:
    def get(what, func, *args):
        try:
            return func(*args)
        except Exception as exc:  # noqa: BLE001 - NVMLError subclasses are made at run time
            if not _not_supported(exc):
                warnings.append(f"{what}: {exc}")
            return None

    driver = get("driver_version", nvml.nvmlSystemGetDriverVersion)
    driver = _text(driver) if driver is not None else None
    cuda = cuda_version_string(get("cuda_driver_version", nvml.nvmlSystemGetCudaDriverVersion))
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except Exception as exc:  # noqa: BLE001
        facts = empty_facts(f"NVML could not count GPUs: {exc}", "nvml")
        return facts
    if count == 0:
        facts = empty_facts("NVML found no GPU", "nvml")
        facts["driver_version"] = driver
        facts["cuda_driver_version"] = cuda
        return facts

    temp_sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
    max_links = int(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18))
    gpus: list[dict] = []
    handles = []
    bus_ids: dict[str, int] = {}
    for index in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        handles.append(handle)
        gpu = _blank_gpu(index, "nvml")
        gpu["driver_version"] = driver
        gpu["cuda_driver_version"] = cuda
        uuid = get(f"gpu{index}.uuid", nvml.nvmlDeviceGetUUID, handle)
        gpu["uuid"] = _text(uuid) if uuid is not None else None
        name = get(f"gpu{index}.name", nvml.nvmlDeviceGetName, handle)
        gpu["name"] = _text(name) if name is not None else None
        mem = get(f"gpu{index}.memory", nvml.nvmlDeviceGetMemoryInfo, handle)
        if mem is not None:
            gpu["memory_total"] = int(mem.total)
            gpu["memory_used"] = int(mem.used)
            gpu["memory_free"] = int(mem.free)
        cc = get(
            f"gpu{index}.compute_capability",
            nvml.nvmlDeviceGetCudaComputeCapability,
            handle,
        )
        if cc is not None:
            gpu["compute_capability"] = f"{int(cc[0])}.{int(cc[1])}"
        gpu["pcie_gen"] = get(f"gpu{index}.pcie_gen", nvml.nvmlDeviceGetCurrPcieLinkGeneration, handle)
        gpu["pcie_gen_max"] = get(f"gpu{index}.pcie_gen_max", nvml.nvmlDeviceGetMaxPcieLinkGeneration, handle)
        gpu["pcie_width"] = get(f"gpu{index}.pcie_width", nvml.nvmlDeviceGetCurrPcieLinkWidth, handle)
        limit = get(f"gpu{index}.power_limit", nvml.nvmlDeviceGetPowerManagementLimit, handle)
        gpu["power_limit_w"] = round(limit / 1000.0, 2) if limit is not None else None
        if hasattr(nvml, "nvmlDeviceGetMemoryBusWidth"):  # nvidia-ml-py 11.515 and later
            bus = get(f"gpu{index}.memory_bus_width", nvml.nvmlDeviceGetMemoryBusWidth, handle)
            clock = get(f"gpu{index}.max_memory_clock", nvml.nvmlDeviceGetMaxClockInfo, handle,
                        getattr(nvml, "NVML_CLOCK_MEM", 2))
            gpu["memory_bandwidth_gbps"] = memory_bandwidth_gbps(bus, clock)
        gpu["temperature_c"] = get(
            f"gpu{index}.temperature",
            nvml.nvmlDeviceGetTemperature,
            handle,
            temp_sensor,
        )
        pm = get(f"gpu{index}.persistence_mode", nvml.nvmlDeviceGetPersistenceMode, handle)
        gpu["persistence_mode"] = bool(pm) if pm is not None else None
        mig = get(f"gpu{index}.mig_mode", nvml.nvmlDeviceGetMigMode, handle)
        gpu["mig_mode"] = bool(mig[0]) if mig is not None else None
        ecc = get(f"gpu{index}.ecc", nvml.nvmlDeviceGetEccMode, handle)
        gpu["ecc_enabled"] = bool(ecc[0]) if ecc is not None else None
        pci = get(f"gpu{index}.pci", nvml.nvmlDeviceGetPciInfo, handle)
        if pci is not None:
            bus = getattr(pci, "busId", None) or getattr(pci, "busIdLegacy", None)
            if bus is not None:
                gpu["pci_bus_id"] = _norm_bus_id(bus)
                bus_ids[gpu["pci_bus_id"]] = index
        gpus.append(gpu)

    # NVLink: a peer is a GPU of this host at the remote end of an active link.
    for index, handle in enumerate(handles):
        peers: set[int] = set()
        for link in range(max_links):
            try:
                state = nvml.nvmlDeviceGetNvLinkState(handle, link)
            except Exception:  # noqa: BLE001
                break  # no NVLink, or past the last link: NVML answers "not supported"/"invalid"
            if not state:
                continue
            try:
                remote = nvml.nvmlDeviceGetNvLinkRemotePciInfo(handle, link)
            except Exception as exc:  # noqa: BLE001
                warnings.append(f"gpu{index}.nvlink{link}: {exc}")
                continue
            bus = getattr(remote, "busId", None) or getattr(remote, "busIdLegacy", None)
            peer = bus_ids.get(_norm_bus_id(bus)) if bus is not None else None
            if peer is not None and peer != index:
                peers.add(peer)
        gpus[index]["nvlink_peers"] = sorted(peers)
    return _finish(gpus, "nvml", warnings)


# ---------------------------------------------------------------------------- nvidia-smi

_NA = {
    "",
    "n/a",
    "[n/a]",
    "[not supported]",
    "not supported",
    "[unknown error]",
    "[insufficient permissions]",
}


def _na(value: str) -> bool:
    return value.strip().lower() in _NA


def _int(value: str) -> int | None:
    return None if _na(value) else int(float(value))


def _float(value: str) -> float | None:
    return None if _na(value) else round(float(value), 2)


def _flag(value: str) -> bool | None:
    if _na(value):
        return None
    text = value.strip().lower()
    if text in ("enabled", "enable", "on", "1", "yes"):
        return True
    if text in ("disabled", "disable", "off", "0", "no"):
        return False
    raise GpuFactsError(f"nvidia-smi: unexpected mode value {value!r}")


def parse_cuda_version(banner: str) -> str | None:
    """The "CUDA Version: 13.0" of plain ``nvidia-smi`` output, or None."""
    match = re.search(r"CUDA Version:\s*([0-9]+\.[0-9]+)", banner or "")
    return match.group(1) if match else None


def parse_nvidia_smi_csv(text: str, fields=NVIDIA_SMI_FIELDS, cuda_driver_version: str | None = None) -> dict:
    """Parse ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits`` output.

    Memory is in MiB there (``nounits``); it becomes bytes. An empty output means no GPU.
    """
    fields = tuple(fields)
    gpus: list[dict] = []
    rows = [row for row in csv.reader(io.StringIO(text or ""), skipinitialspace=True) if row]
    if not rows:
        return empty_facts("nvidia-smi listed no GPU", "nvidia-smi")
    bus_ids: dict[str, int] = {}
    for row in rows:
        if len(row) != len(fields):
            raise GpuFactsError(
                f"nvidia-smi: expected {len(fields)} columns ({','.join(fields)}), got {len(row)}: {row!r}"
            )
        raw = {name: value.strip() for name, value in zip(fields, row, strict=True)}
        index = int(raw["index"]) if "index" in raw else len(gpus)
        gpu = _blank_gpu(index, "nvidia-smi")
        gpu["uuid"] = None if _na(raw.get("uuid", "")) else raw["uuid"]
        gpu["name"] = None if _na(raw.get("name", "")) else raw["name"]
        for key, col in (
            ("memory_total", "memory.total"),
            ("memory_used", "memory.used"),
            ("memory_free", "memory.free"),
        ):
            mib = _int(raw.get(col, ""))
            gpu[key] = mib * MIB if mib is not None else None
        cc = raw.get("compute_cap", "")
        gpu["compute_capability"] = None if _na(cc) else cc
        gpu["driver_version"] = None if _na(raw.get("driver_version", "")) else raw["driver_version"]
        gpu["cuda_driver_version"] = cuda_driver_version
        gpu["pcie_gen"] = _int(raw.get("pcie.link.gen.current", ""))
        gpu["pcie_gen_max"] = _int(raw.get("pcie.link.gen.max", ""))
        gpu["pcie_width"] = _int(raw.get("pcie.link.width.current", ""))
        gpu["power_limit_w"] = _float(raw.get("power.limit", ""))
        gpu["temperature_c"] = _int(raw.get("temperature.gpu", ""))
        gpu["persistence_mode"] = _flag(raw.get("persistence_mode", ""))
        gpu["mig_mode"] = _flag(raw.get("mig.mode.current", ""))
        gpu["ecc_enabled"] = _flag(raw.get("ecc.mode.current", ""))
        if not _na(raw.get("pci.bus_id", "")):
            gpu["pci_bus_id"] = _norm_bus_id(raw["pci.bus_id"])
            bus_ids[gpu["pci_bus_id"]] = index
        gpus.append(gpu)
    return _finish(gpus, "nvidia-smi")


def parse_nvlink_status(text: str, facts: dict) -> dict:
    """Fill ``nvlink_peers`` from ``nvidia-smi topo -m`` output (NV# entries in the matrix)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return facts
    header = lines[0].split()
    gpu_cols = [i for i, name in enumerate(header) if re.fullmatch(r"GPU\d+", name)]
    by_index = {g["index"]: g for g in facts["gpus"]}
    for line in lines[1:]:
        cells = line.split()
        if not cells or not re.fullmatch(r"GPU\d+", cells[0]):
            continue
        me = int(cells[0][3:])
        peers = []
        for col_pos, col in enumerate(gpu_cols):
            cell = cells[col_pos + 1] if col_pos + 1 < len(cells) else ""
            if re.fullmatch(r"NV\d+", cell):
                peers.append(int(header[col][3:]))
        if me in by_index:
            by_index[me]["nvlink_peers"] = sorted(peers)
    return facts


# ---------------------------------------------------------------------------- declared

_DECLARED_KEYS = {
    "name",
    "memory_gb",
    "memory_mib",
    "memory_bytes",
    "count",
    "compute_capability",
    "nvlink",
    "pcie_gen",
    "pcie_width",
    "power_limit_w",
    "memory_bandwidth_gbps",
}


def from_declared(declared: list[dict] | None) -> dict:
    """Facts for GPUs declared in the inventory (planning before the boxes arrive).

    Each entry: ``name``, memory as ``memory_gb`` (GiB, as cards are sold: a "24 GB" card has
    24 GiB), ``memory_mib`` or ``memory_bytes``, optional ``count`` (default 1),
    ``compute_capability``, ``nvlink`` (true: the entry's GPUs are all NVLinked together),
    ``pcie_gen``, ``pcie_width``, ``power_limit_w``, ``memory_bandwidth_gbps`` (GB/s, for the
    plan report's throughput). An empty list declares a CPU-only host.
    """
    if not declared:
        return empty_facts("no GPU declared for this host", "declared")
    if not isinstance(declared, list):
        raise GpuFactsError("declared GPUs must be a list of dicts (name, memory_gb, count)")
    gpus: list[dict] = []
    for pos, entry in enumerate(declared):
        if not isinstance(entry, dict):
            raise GpuFactsError(f"declared GPU #{pos} must be a dict, got {type(entry).__name__}")
        unknown = set(entry) - _DECLARED_KEYS
        if unknown:
            raise GpuFactsError(
                f"declared GPU #{pos}: unknown keys {sorted(unknown)}; known: {sorted(_DECLARED_KEYS)}"
            )
        name = entry.get("name")
        if not name:
            raise GpuFactsError(f"declared GPU #{pos}: 'name' is required")
        if "memory_bytes" in entry:
            total = int(entry["memory_bytes"])
        elif "memory_mib" in entry:
            total = int(float(entry["memory_mib"]) * MIB)
        elif "memory_gb" in entry:
            total = int(float(entry["memory_gb"]) * GIB)
        else:
            raise GpuFactsError(f"declared GPU #{pos} ({name}): give memory_gb, memory_mib or memory_bytes")
        if total <= 0:
            raise GpuFactsError(f"declared GPU #{pos} ({name}): memory must be positive")
        count = int(entry.get("count", 1))
        if count < 1:
            raise GpuFactsError(f"declared GPU #{pos} ({name}): count must be at least 1")
        cc = entry.get("compute_capability")
        bandwidth = entry.get("memory_bandwidth_gbps")
        if bandwidth is not None:
            try:
                bandwidth = float(bandwidth)
            except (TypeError, ValueError):
                bandwidth = -1.0
            if bandwidth <= 0:
                raise GpuFactsError(
                    f"declared GPU #{pos} ({name}): memory_bandwidth_gbps must be a positive number")
        first = len(gpus)
        members = list(range(first, first + count))
        for index in members:
            gpu = _blank_gpu(index, "declared")
            gpu["name"] = str(name)
            gpu["memory_total"] = total
            gpu["memory_used"] = 0
            gpu["memory_free"] = total
            gpu["compute_capability"] = str(cc) if cc is not None else None
            gpu["pcie_gen"] = entry.get("pcie_gen")
            gpu["pcie_gen_max"] = entry.get("pcie_gen")
            gpu["pcie_width"] = entry.get("pcie_width")
            gpu["power_limit_w"] = entry.get("power_limit_w")
            gpu["memory_bandwidth_gbps"] = bandwidth
            if entry.get("nvlink"):
                gpu["nvlink_peers"] = [m for m in members if m != index]
            gpus.append(gpu)
    return _finish(gpus, "declared")


# ---------------------------------------------------------------------------- comparison


def compare(nvml_facts: dict, smi_facts: dict, memory_tolerance: int = 512 * MIB) -> list[str]:
    """Differences between two readings of the same host (used by tests/gpu/check_gpu_facts.py).

    Memory used/free move between readings and NVML counts driver-reserved memory that
    nvidia-smi does not, so those compare within ``memory_tolerance``; everything else exactly.
    """
    problems: list[str] = []
    if nvml_facts["gpu_count"] != smi_facts["gpu_count"]:
        return [f"gpu_count {nvml_facts['gpu_count']} != {smi_facts['gpu_count']}"]
    exact = (
        "uuid",
        "name",
        "compute_capability",
        "driver_version",
        "pcie_gen",
        "pcie_gen_max",
        "pcie_width",
        "power_limit_w",
        "persistence_mode",
        "mig_mode",
        "ecc_enabled",
    )
    for a, b in zip(nvml_facts["gpus"], smi_facts["gpus"], strict=True):
        for key in exact:
            if a.get(key) != b.get(key):
                problems.append(f"gpu{a['index']}.{key}: nvml={a.get(key)!r} nvidia-smi={b.get(key)!r}")
        # nvidia-smi prints MiB, rounding down
        totals = (a["memory_total"], b["memory_total"])
        if None not in totals and totals[0] // MIB != totals[1] // MIB:
            problems.append(f"gpu{a['index']}.memory_total: {a['memory_total']} vs {b['memory_total']}")
        for key in ("memory_used", "memory_free"):
            if a[key] is not None and b[key] is not None and abs(a[key] - b[key]) > memory_tolerance:
                problems.append(f"gpu{a['index']}.{key}: nvml={a[key]} nvidia-smi={b[key]}")
        temps = (a["temperature_c"], b["temperature_c"])
        if None not in temps and abs(temps[0] - temps[1]) > 3:
            problems.append(f"gpu{a['index']}.temperature_c: {a['temperature_c']} vs {b['temperature_c']}")
    return problems


# ---------------------------------------------------------------------------- one entry point


def collect(
    declared: list[dict] | None = None,
    source: str = "auto",
    load_nvml=None,
    run_command=None,
    nvidia_smi: str | None = "nvidia-smi",
) -> dict:
    """Facts from the first source that answers, as the gpu_facts module gathers them.

    ``source``: ``auto`` (declared when given, else NVML, else nvidia-smi), ``declared``,
    ``nvml`` or ``nvidia-smi``. ``load_nvml()`` returns the NVML binding or raises
    ImportError; ``run_command(argv)`` returns ``(rc, stdout, stderr)``; ``nvidia_smi`` is the
    binary's path, or None when it is not installed.
    """
    if source not in ("auto", "declared", "nvml", "nvidia-smi"):
        raise GpuFactsError(f"source must be auto, declared, nvml or nvidia-smi, not {source!r}")
    if source == "declared" or (source == "auto" and declared is not None):
        return from_declared(declared)
    reasons: list[str] = []
    if source in ("auto", "nvml"):
        nvml = None
        if load_nvml is not None:
            try:
                nvml = load_nvml()
            except ImportError as exc:
                reasons.append(f"nvidia-ml-py (pynvml) is not installed: {exc}")
        if nvml is not None:
            facts = from_nvml(nvml)
            if facts["gpus"] or source == "nvml":
                return facts
            reasons.append(facts["reason"])
    if source in ("auto", "nvidia-smi"):
        if not nvidia_smi or run_command is None:
            reasons.append("nvidia-smi not found")
        else:
            rc, out, err = run_command(nvidia_smi_command(nvidia_smi))
            if rc == 0:
                _rc, banner, _err = run_command([nvidia_smi])
                facts = parse_nvidia_smi_csv(out, cuda_driver_version=parse_cuda_version(banner))
                if facts["gpu_count"] > 1:
                    trc, topo, _err = run_command([nvidia_smi, "topo", "-m"])
                    if trc == 0:
                        parse_nvlink_status(topo, facts)
                return facts
            reasons.append(f"nvidia-smi failed (rc={rc}): {(err or out).strip()[:200]}")
    return empty_facts("; ".join(r for r in reasons if r) or "no NVIDIA GPU found")
