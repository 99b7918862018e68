"""From the placement to LocalAI: the pure mapping in module_utils/_engines/localai.py, fed with
real placements from _placement.plan (GPU hosts: the placement puts LocalAI on GPUs only)."""

from __future__ import annotations

import pytest
from placement_fixtures import gpus as _gpus
from placement_fixtures import instances as _instances
from placement_fixtures import plan as _plan

from ansible_collections.teamllm.stack.plugins.module_utils._engines import EngineError
from ansible_collections.teamllm.stack.plugins.module_utils._engines import localai as el

DOWNLOADS = {"teamllm_tiny_gguf": {}, "llama_8b_q4": {}, "llama_8b_q8": {}}


TINY = {"name": "teamllm-tiny", "engine": "localai", "quantizations": ["Q8_0"],
        "context": 1024, "parallel": 2, "download": "teamllm_tiny_gguf"}


def test_one_gpu_instance_maps_onto_localai_instances():
    plan = _plan([TINY], {"n1": {"gpus": _gpus(8)}})
    placed = plan["placement"]["n1"]["instances"][0]
    assert placed["engine"] == "localai" and placed["device"] == "gpu"
    (inst,) = _instances("localai", plan["placement"]["n1"], [TINY], DOWNLOADS, host="n1")
    assert inst == {
        "name": "teamllm-tiny-0", "model": "teamllm_tiny_gguf", "alias": "teamllm-tiny",
        "port": 8100, "context": 2048, "parallel": 2, "gpu_layers": 999,
        "gpus": ["GPU-0"], "flash_attention": True, "extra": {},
    }


def test_multi_gpu_instance_gets_its_devices_and_split():
    model = {"name": "llama-3.1-8b", "alias": "chat", "engine": "localai",
             "quantizations": ["Q8_0"], "context": 8192, "parallel": 2,
             "kv_cache_type": "q8_0",
             "download": {"Q8_0": "llama_8b_q8", "Q4_K_M": "llama_8b_q4"}}
    plan = _plan([model], {"n1": {"gpus": _gpus(8, 8)}})  # 8.5 GB of weights: both GPUs
    (inst,) = _instances("localai", plan["placement"]["n1"], [model], DOWNLOADS)
    assert inst["model"] == "llama_8b_q8" and inst["alias"] == "chat"
    assert inst["gpus"] == ["GPU-0", "GPU-1"]
    assert inst["context"] == 8192 * 2
    assert inst["extra"]["tensor_split"] == "0.5,0.5"
    assert inst["extra"]["cache_type_k"] == "q8_0" and inst["extra"]["cache_type_v"] == "q8_0"


def test_gpus_by_index_when_the_facts_have_no_uuid():
    host = {"instances": [{"id": "m-0", "name": "m", "engine": "localai", "quantization": "Q8_0",
                           "device": "gpu", "gpus": [1], "gpu_uuids": [None], "port": 8100,
                           "context": 512, "parallel": 1, "settings": {"ctx_size": 512}}]}
    (inst,) = _instances("localai", host, [{"name": "m", "download": "teamllm_tiny_gguf"}],
                                   DOWNLOADS)
    assert inst["gpus"] == ["1"] and inst["gpu_layers"] == 999


def test_other_engines_are_left_to_their_roles():
    model = dict(TINY, engine="llama_cpp")
    plan = _plan([model], {"n1": {"cpu": True, "ram": 8}})
    assert _instances("localai", plan["placement"]["n1"], [model], DOWNLOADS) == []
    assert _instances("localai", None, [], {}) == []


@pytest.mark.parametrize(("download", "message"), [
    (None, "has no download for Q8_0"),
    ("missing_entry", "'missing_entry' is not an entry of llm_downloads"),
])
def test_missing_weights_fail_naming_host_and_model(download, message):
    model = dict(TINY)
    model.pop("download")
    plan = _plan([model], {"n1": {"gpus": _gpus(8)}})
    if download:
        model["download"] = download
    with pytest.raises(EngineError) as err:
        _instances("localai", plan["placement"]["n1"], [model], DOWNLOADS, host="n1")
    assert "n1: model teamllm-tiny" in str(err.value) and message in str(err.value)


def test_model_definition_is_localai_yaml():
    inst = {"name": "teamllm-tiny-0", "alias": "teamllm-tiny", "context": 2048,
            "gpu_layers": 0, "threads": 2, "parameters": {"temperature": 0.2},
            "extra": {"cache_type_k": "q8_0"}}
    assert el.model_definition(inst, "tiny.gguf") == {
        "name": "teamllm-tiny", "backend": "llama-cpp",
        "parameters": {"model": "weights/tiny.gguf", "temperature": 0.2},
        "context_size": 2048, "f16": True, "gpu_layers": 0, "mmap": True,
        "flash_attention": True, "template": {"use_tokenizer_template": True},
        "threads": 2, "cache_type_k": "q8_0",
    }
    no_threads = el.model_definition(dict(inst, threads=0, template={"chat": "x"}), "t.gguf")
    assert "threads" not in no_threads and no_threads["template"] == {"chat": "x"}
    assert el.model_definition(dict(inst, threads=0), "t.gguf", threads=4)["threads"] == 4


@pytest.mark.parametrize("bad", ["../x.gguf", "a/b.gguf", ""])
def test_model_definition_refuses_paths(bad):
    with pytest.raises(ValueError, match="plain file name"):
        el.model_definition({"name": "x", "context": 512}, bad)


def test_model_definition_refuses_extra_name():
    with pytest.raises(ValueError, match="may not set name"):
        el.model_definition({"name": "x", "context": 512, "extra": {"name": "y"}}, "x.gguf")
