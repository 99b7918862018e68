# Copyright: teamllm.stack contributors
# Apache License 2.0
"""vLLM, from the placement to the vllm role: the vllm instances placed on one host as
``vllm_instances``, the checks that instances on one host do not clash (names, ports, GPUs),
and the server's command line. No Ansible; private to the collection."""

from __future__ import annotations

import re

from ansible_collections.teamllm.stack.plugins.module_utils._engines.common import weights_download

ENGINE = "vllm"
# Keys of an llm_models item that only the engines read.
MODEL_KEYS = ("download",)

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
# Keys the role reads from an instance (vllm_instances entries).
INSTANCE_KEYS = (
    "name", "model", "model_dir", "served_name", "port", "device", "gpus",
    "tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "max_num_seqs",
    "dtype", "enforce_eager", "extra_args", "extra_env",
)


def instances(placed, items, downloads, host="this host"):
    """(``vllm_instances`` entries, problems) for the vllm instances ``placed`` on one host.

    ``items`` is ``llm_models`` by served name (each model's ``download``: the llm_downloads
    entry of a tarball of its Hugging Face snapshot, one name or {quantization: name});
    ``downloads`` is ``llm_downloads``. A problem names every instance whose weights have no
    manifest entry."""
    result, problems = [], []
    for inst in placed:
        download, problem = weights_download(
            inst, items, downloads, host, ENGINE,
            what="<llm_downloads entry of a tarball of its Hugging Face snapshot>")
        if problem:
            problems.append(problem)
            continue
        settings = inst.get("settings") or {}
        gpus = [int(g) for g in inst.get("gpus") or []]
        on_gpu = inst.get("device", "gpu" if gpus else "cpu") == "gpu"
        result.append({
            "name": inst["id"],
            "model": download,
            "served_name": inst["name"],
            "port": int(inst["port"]),
            "device": "gpu" if on_gpu else "cpu",
            "gpus": gpus if on_gpu else [],
            "tensor_parallel_size": int(settings.get(
                "tensor_parallel_size", inst.get("tensor_parallel_size") or max(len(gpus), 1)))
            if on_gpu else 1,
            "gpu_memory_utilization": round(float(settings.get(
                "gpu_memory_utilization", inst.get("gpu_memory_utilization") or 0.9)), 4),
            "max_model_len": int(settings.get("max_model_len", inst.get("context", 4096))),
            "max_num_seqs": int(settings.get("max_num_seqs", inst.get("parallel", 1))),
        })
    return result, problems


def check(instances_, host, downloads, node):
    """Problems of one host's vllm instances side by side (names, ports, GPU shares)."""
    del node
    return problems(instances_, host, downloads)


def _gpu_claims(instances):
    claims = {}
    for inst in instances:
        if inst.get("device", "gpu") != "gpu":
            continue
        for gpu in inst.get("gpus") or []:
            claims.setdefault(int(gpu), []).append(inst)
    return claims


def problems(instances, host="this host", downloads=None):
    """Every reason the instances of one host cannot run side by side, as messages naming
    the host, the instance, the key and the fix (empty when they can)."""
    out = []
    names, ports = {}, {}
    for inst in instances or []:
        name = str(inst.get("name", "?"))
        where = f"{host}: vllm instance {name}"
        if not NAME.match(name):
            out.append(f"{where}: name must be lowercase letters, digits, '.', '_' or '-' "
                       "(at most 63), as it names the systemd unit")
        unknown = sorted(set(inst) - set(INSTANCE_KEYS))
        if unknown:
            out.append(f"{where}: unknown keys {', '.join(unknown)} "
                       f"(known: {', '.join(INSTANCE_KEYS)})")
        if bool(inst.get("model")) == bool(inst.get("model_dir")):
            out.append(f"{where}: set exactly one of model (an llm_downloads entry of a "
                       "Hugging Face snapshot tarball) and model_dir (a directory on the node)")
        elif inst.get("model") and downloads is not None and inst["model"] not in downloads:
            out.append(f"{where}: model {inst['model']!r} is not an entry of llm_downloads")
        port = inst.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            out.append(f"{where}: port must be a number 1-65535 (got {port!r})")
        else:
            ports.setdefault(port, []).append(name)
        names.setdefault(name, 0)
        names[name] += 1
        util = inst.get("gpu_memory_utilization", 0.9)
        if not isinstance(util, (int, float)) or not 0 < float(util) <= 1:
            out.append(f"{where}: gpu_memory_utilization must be in (0, 1] (got {util!r})")
        for key in ("max_model_len", "max_num_seqs", "tensor_parallel_size"):
            value = inst.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                out.append(f"{where}: {key} must be a positive number (got {value!r})")
        for key in ("served_name", "model_dir", "dtype"):
            if re.search(r"\s", str(inst.get(key) or "")):
                out.append(f"{where}: {key} {inst[key]!r} must not contain whitespace")
        extra = inst.get("extra_args") or []
        if not isinstance(extra, list) or any(re.search(r"\s", str(a)) for a in extra):
            out.append(f"{where}: extra_args must be a list of words without whitespace "
                       f"(['--flag', 'value']); got {extra!r}")
        gpus = inst.get("gpus") or []
        if inst.get("device", "gpu") == "gpu":
            if not gpus:
                out.append(f"{where}: device gpu needs gpus (GPU indexes), or set device: cpu")
            elif len(set(gpus)) != len(gpus):
                out.append(f"{where}: gpus {gpus} lists a GPU twice")
            elif inst.get("tensor_parallel_size") not in (None, len(gpus)):
                out.append(f"{where}: tensor_parallel_size {inst.get('tensor_parallel_size')} "
                           f"must equal the number of its gpus ({len(gpus)}: {gpus})")
        elif gpus:
            out.append(f"{where}: device cpu takes no gpus (got {gpus})")
    out += [f"{host}: vllm instance name {n} is used {c} times; names must be unique"
            for n, c in sorted(names.items()) if c > 1]
    out += [f"{host}: vllm instances {', '.join(sorted(n))} share port {p}; give each its own"
            for p, n in sorted(ports.items()) if len(n) > 1]
    for gpu, insts in sorted(_gpu_claims(instances or []).items()):
        total = sum(float(i.get("gpu_memory_utilization", 0.9)) for i in insts)
        if len(insts) > 1 and total > 1.0:
            out.append(
                f"{host}: vllm instances {', '.join(sorted(str(i['name']) for i in insts))} share "
                f"GPU {gpu} and claim {total:.2f} of its memory (gpu_memory_utilization adds up "
                "to more than 1.0): give them disjoint gpus or lower their utilization")
    return out


def _tensor_parallel(inst):
    if inst.get("tensor_parallel_size"):
        return int(inst["tensor_parallel_size"])
    if inst.get("device", "gpu") == "gpu":
        return max(len(inst.get("gpus") or []), 1)
    return 1


def server_args(inst, bind_address, model_path):
    """The argv after ``python -m vllm.entrypoints.openai.api_server`` for one instance.

    The API key is not on the command line (it would show in the process list): the server
    reads it from VLLM_API_KEY in the instance's environment file."""
    args = [
        "--model", str(model_path),
        "--served-model-name", str(inst.get("served_name") or inst["name"]),
        "--host", str(bind_address),
        "--port", str(int(inst["port"])),
        "--tensor-parallel-size", str(_tensor_parallel(inst)),
        "--max-model-len", str(int(inst["max_model_len"])),
        "--max-num-seqs", str(int(inst["max_num_seqs"])),
    ]
    if inst.get("device", "gpu") == "gpu":
        args += ["--gpu-memory-utilization", str(float(inst.get("gpu_memory_utilization", 0.9)))]
    if inst.get("dtype"):
        args += ["--dtype", str(inst["dtype"])]
    if inst.get("enforce_eager"):
        args.append("--enforce-eager")
    args += [str(a) for a in inst.get("extra_args") or []]
    return args


def cuda_visible_devices(inst):
    """CUDA_VISIBLE_DEVICES for a GPU instance ("" for a CPU one)."""
    if inst.get("device", "gpu") != "gpu":
        return ""
    return ",".join(str(int(g)) for g in inst.get("gpus") or [])


def docker_args(inst, model_path, container_model_path, env_names=()):
    """The ``docker run`` options of a container instance, before the image: its GPUs as
    device requests (one ``--gpus device=N`` each: the CLI adds them up, and a comma inside one
    value would need quoting that systemd's word splitting drops), the model directory mounted
    read-only, and environment variables passed by name (their values come from the unit's
    environment, so the API key is never on a command line)."""
    args = []
    if inst.get("device", "gpu") == "gpu":
        for gpu in inst.get("gpus") or []:
            args += ["--gpus", f"device={int(gpu)}"]
    args += ["--volume", f"{model_path}:{container_model_path}:ro"]
    for name in sorted(set(env_names)):
        args += ["--env", str(name)]
    return args


def version_tuple(version):
    """'0.32.0' -> (0, 32, 0); trailing text ('rc1', '+cpu', '.post1') is ignored."""
    parts = []
    for piece in str(version).lstrip("v").split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
        if m.end() != len(piece):
            break
    return tuple(parts)


def version_refused(version, minimum, refused=()):
    """A reason to refuse ``version`` (older than ``minimum`` or listed in ``refused``), or ""."""
    if str(version).lstrip("v") in {str(v).lstrip("v") for v in refused or ()}:
        return f"vLLM {version} is listed in vllm_refused_versions (known vulnerabilities)"
    if not version_tuple(version):
        return f"vLLM version {version!r} cannot be read"
    if version_tuple(version) < version_tuple(minimum):
        return (f"vLLM {version} is older than {minimum}, the oldest release without the "
                "known vulnerabilities this collection checks for")
    return ""
