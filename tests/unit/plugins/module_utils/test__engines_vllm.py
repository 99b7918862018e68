"""From the placement to the vllm role: the pure mapping in module_utils/_engines/vllm.py, fed
with real placements from _placement.plan, the clash checks and the server's arguments."""

from __future__ import annotations

import pytest
from placement_fixtures import gpus as _gpus
from placement_fixtures import instances as _instances
from placement_fixtures import plan as _full_plan

from ansible_collections.teamllm.stack.plugins.module_utils._engines import EngineError
from ansible_collections.teamllm.stack.plugins.module_utils._engines import vllm as ev

DOWNLOADS = {"llama_8b_hf": {}, "llama_8b_fp8_hf": {}, "teamllm_tiny_hf": {}}


def _plan(models, hosts):
    return _full_plan(models, {name: {"gpus": spec} for name, spec in hosts.items()})


LLAMA = {"name": "llama-3.1-8b", "alias": "chat", "engine": "vllm", "quantizations": ["BF16"],
         "context": 8192, "parallel": 4, "download": "llama_8b_hf"}


def test_single_gpu_instance_maps_onto_vllm_instances():
    plan = _plan([LLAMA], {"n1": _gpus(80)})
    placed = plan["placement"]["n1"]["instances"][0]
    (inst,) = _instances("vllm", plan["placement"]["n1"], [LLAMA], DOWNLOADS)
    assert inst == {
        "name": "chat-0", "model": "llama_8b_hf", "served_name": "chat", "port": 8100,
        "device": "gpu", "gpus": [0], "tensor_parallel_size": 1,
        "gpu_memory_utilization": placed["gpu_memory_utilization"],
        "max_model_len": 8192, "max_num_seqs": 4,
    }
    assert 0 < inst["gpu_memory_utilization"] <= 1
    assert ev.problems([inst], "n1", DOWNLOADS) == []


def test_model_split_over_two_gpus_gets_tensor_parallel_two():
    plan = _plan([LLAMA], {"n1": _gpus(16, 16)})  # 16 GB of BF16 weights: both GPUs
    (inst,) = _instances("vllm", plan["placement"]["n1"], [LLAMA], DOWNLOADS)
    assert inst["gpus"] == [0, 1] and inst["tensor_parallel_size"] == 2
    assert ev.cuda_visible_devices(inst) == "0,1"
    args = ev.server_args(inst, "127.0.0.1", "/m")
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args[args.index("--gpu-memory-utilization") + 1] == str(inst["gpu_memory_utilization"])
    assert ev.docker_args(inst, "/m", "/models/chat-0", ["VLLM_API_KEY"]) == [
        "--gpus", "device=0", "--gpus", "device=1", "--volume", "/m:/models/chat-0:ro",
        "--env", "VLLM_API_KEY"]


def test_two_replicas_on_one_host_get_distinct_ports_and_gpus_that_do_not_clash():
    model = {**LLAMA, "replicas": 2}
    plan = _plan([model], {"n1": _gpus(40, 40)})
    insts = _instances("vllm", plan["placement"]["n1"], [model], DOWNLOADS, host="n1")
    assert [i["name"] for i in insts] == ["chat-0", "chat-1"]
    assert len({i["port"] for i in insts}) == 2
    assert ev.problems(insts, "n1", DOWNLOADS) == []


def test_download_follows_the_chosen_quantization():
    model = {**LLAMA, "quantizations": ["BF16", "FP8"],
             "download": {"BF16": "llama_8b_hf", "FP8": "llama_8b_fp8_hf"}}
    plan = _plan([model], {"n1": _gpus(20)})  # BF16 does not fit 20 GiB, FP8 does
    (inst,) = _instances("vllm", plan["placement"]["n1"], [model], DOWNLOADS)
    assert plan["placement"]["n1"]["instances"][0]["quantization"] == "FP8"
    assert inst["model"] == "llama_8b_fp8_hf"


@pytest.mark.parametrize(
    ("download", "expected"),
    [
        (None, "has no download for BF16: add download:"),
        ("missing_entry", "download 'missing_entry' is not an entry of llm_downloads"),
    ],
)
def test_missing_or_unknown_download_is_named(download, expected):
    model = {**LLAMA, "download": download}
    plan = _plan([model], {"n1": _gpus(80)})
    with pytest.raises(EngineError) as err:
        _instances("vllm", plan["placement"]["n1"], [model], DOWNLOADS, host="n1")
    assert "n1: model chat" in str(err.value) and expected in str(err.value)


def test_only_vllm_instances_are_taken():
    placement = {"instances": [{"id": "b-0", "name": "b", "engine": "llama_cpp", "port": 1}]}
    assert _instances("vllm", placement, [], {}) == []
    assert _instances("vllm", None, None, None) == []


GOOD = {"name": "a", "model": "teamllm_tiny_hf", "port": 8200, "device": "gpu", "gpus": [0],
        "gpu_memory_utilization": 0.4, "max_model_len": 512, "max_num_seqs": 2}


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        ([GOOD, {**GOOD, "name": "b"}], "vllm instances a, b share port 8200"),
        ([GOOD, {**GOOD, "port": 8201}], "vllm instance name a is used 2 times"),
        ([GOOD, {**GOOD, "name": "b", "port": 8201, "gpu_memory_utilization": 0.7}],
         "vllm instances a, b share GPU 0 and claim 1.10 of its memory"),
        ([{**GOOD, "gpus": []}], "device gpu needs gpus"),
        ([{**GOOD, "gpus": [0, 0]}], "lists a GPU twice"),
        ([{**GOOD, "gpus": [0, 1], "tensor_parallel_size": 1}],
         "tensor_parallel_size 1 must equal the number of its gpus (2: [0, 1])"),
        ([{**GOOD, "device": "cpu"}], "device cpu takes no gpus"),
        ([{**GOOD, "port": 70000}], "port must be a number 1-65535"),
        ([{**GOOD, "name": "Bad Name"}], "name must be lowercase"),
        ([{**GOOD, "model": "nope"}], "model 'nope' is not an entry of llm_downloads"),
        ([{**GOOD, "model_dir": "/srv/m"}], "set exactly one of model"),
        ([{**GOOD, "gpu_memory_utilization": 1.5}], "gpu_memory_utilization must be in (0, 1]"),
        ([{**GOOD, "max_num_seqs": 0}], "max_num_seqs must be a positive number"),
        ([{**GOOD, "served_name": "two words"}], "served_name 'two words' must not contain whitespace"),
        ([{**GOOD, "extra_args": ["--a b"]}], "extra_args must be a list of words"),
        ([{**GOOD, "gpu": 0}], "unknown keys gpu"),
    ],
)
def test_problems_name_host_instance_and_fix(instances, expected):
    found = ev.problems(instances, "n1", DOWNLOADS)
    assert any(expected in p for p in found), found
    assert all(p.startswith("n1: ") for p in found)


def test_gpu_sharing_within_memory_is_allowed():
    two = [GOOD, {**GOOD, "name": "b", "port": 8201, "gpu_memory_utilization": 0.5}]
    assert ev.problems(two, "n1", DOWNLOADS) == []


def test_cpu_instance_arguments():
    inst = {"name": "tiny-0", "served_name": "teamllm-tiny-hf", "port": 8200, "device": "cpu",
            "gpus": [], "max_model_len": 512, "max_num_seqs": 2, "enforce_eager": True,
            "dtype": "float32", "extra_args": ["--seed", "1"], "model_dir": "/var/lib/m"}
    assert ev.server_args(inst, "127.0.0.1", "/var/lib/m") == [
        "--model", "/var/lib/m", "--served-model-name", "teamllm-tiny-hf",
        "--host", "127.0.0.1", "--port", "8200", "--tensor-parallel-size", "1",
        "--max-model-len", "512", "--max-num-seqs", "2", "--dtype", "float32",
        "--enforce-eager", "--seed", "1"]
    assert ev.cuda_visible_devices(inst) == ""
    assert ev.docker_args(inst, "/var/lib/m", "/models/tiny-0") == [
        "--volume", "/var/lib/m:/models/tiny-0:ro"]
    assert ev.problems([inst], "n1") == []


@pytest.mark.parametrize(
    ("version", "refused", "expected"),
    [
        ("0.32.0", [], ""),
        ("v0.18.0", [], ""),
        ("0.17.1", [], "older than 0.18.0"),
        ("0.9.0", [], "older than 0.18.0"),
        ("0.32.0", ["0.32.0"], "listed in vllm_refused_versions"),
        ("", [], "cannot be read"),
    ],
)
def test_version_refused(version, refused, expected):
    reason = ev.version_refused(version, "0.18.0", refused)
    assert (expected in reason) if expected else reason == ""
    assert ev.version_tuple("0.10.1rc1") == (0, 10, 1) > ev.version_tuple("0.9.9")
