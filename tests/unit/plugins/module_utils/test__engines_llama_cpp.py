"""From the placement to the llama_cpp role: module_utils/_engines/llama_cpp.py, fed with real
placements from _placement.plan."""

from __future__ import annotations

import pytest
from placement_fixtures import gpus as _gpus
from placement_fixtures import instances as _instances
from placement_fixtures import plan as _plan

from ansible_collections.teamllm.stack.plugins.module_utils._engines import EngineError

DOWNLOADS = {"teamllm_tiny_gguf": {}, "llama_8b_q4": {}, "llama_8b_q8": {}}


TINY = {"name": "teamllm-tiny", "engine": "llama_cpp", "quantizations": ["Q8_0"],
        "context": 1024, "parallel": 2, "download": "teamllm_tiny_gguf"}


def test_cpu_instance_maps_onto_llama_cpp_instances():
    plan = _plan([TINY], {"n1": {"cpu": True, "ram": 8}})
    (inst,) = _instances("llama_cpp", plan["placement"]["n1"], [TINY], DOWNLOADS)
    assert inst == {
        "name": "teamllm-tiny-0", "model": "teamllm_tiny_gguf", "alias": "teamllm-tiny",
        "port": 8100, "context": 2048, "parallel": 2, "gpu_layers": 0,
        "flash_attention": "auto", "extra_env": {},
    }


def test_multi_gpu_instance_gets_its_devices_and_split():
    model = {"name": "llama-3.1-8b", "alias": "chat", "engine": "llama_cpp",
             "quantizations": ["Q8_0"], "context": 8192, "parallel": 2,
             "download": {"Q8_0": "llama_8b_q8", "Q4_K_M": "llama_8b_q4"}}
    plan = _plan([model], {"n1": {"gpus": _gpus(8, 8)}})  # 8.5 GB of weights: both GPUs
    placed = plan["placement"]["n1"]["instances"][0]
    (inst,) = _instances("llama_cpp", plan["placement"]["n1"], [model], DOWNLOADS)
    assert inst["model"] == "llama_8b_q8" and inst["alias"] == "chat"
    assert inst["gpu_layers"] == 999
    assert inst["context"] == 8192 * 2 and inst["parallel"] == 2
    assert placed["gpus"] == [0, 1]
    assert inst["extra_env"] == {"CUDA_VISIBLE_DEVICES": "0,1", "LLAMA_ARG_SPLIT_MODE": "layer",
                                 "LLAMA_ARG_TENSOR_SPLIT": "0.5,0.5"}


def test_download_follows_the_chosen_quantization():
    model = {"name": "llama-3.1-8b", "engine": "llama_cpp", "quantizations": ["Q8_0", "Q4_K_M"],
             "download": {"Q8_0": "llama_8b_q8", "Q4_K_M": "llama_8b_q4"}}
    plan = _plan([model], {"n1": {"gpus": _gpus(7)}})  # Q8_0 (8.5 GB) does not fit 7 GiB
    (inst,) = _instances("llama_cpp", plan["placement"]["n1"], [model], DOWNLOADS)
    assert plan["placement"]["n1"]["instances"][0]["quantization"] == "Q4_K_M"
    assert inst["model"] == "llama_8b_q4"


@pytest.mark.parametrize(
    ("download", "expected"),
    [
        (None, "has no download for Q8_0: add download:"),
        ({"Q4_K_M": "llama_8b_q4"}, "has no download for Q8_0"),
        ("missing_entry", "download 'missing_entry' is not an entry of llm_downloads"),
    ],
)
def test_missing_or_unknown_download_is_named(download, expected):
    model = {**TINY, "download": download}
    plan = _plan([model], {"n1": {"cpu": True, "ram": 8}})
    with pytest.raises(EngineError) as err:
        _instances("llama_cpp", plan["placement"]["n1"], [model], DOWNLOADS, host="n1")
    assert "n1: model teamllm-tiny" in str(err.value)
    assert expected in str(err.value)


def test_empty_placement_gives_no_instances():
    assert _instances("llama_cpp", {}, [], {}) == []
    assert _instances("llama_cpp", None, None, None) == []


def test_cache_types_other_than_f16_are_passed():
    placement = {"instances": [{
        "id": "m-0", "name": "m", "engine": "llama_cpp", "quantization": "Q8_0", "port": 8100,
        "cuda_visible_devices": "1", "settings": {"n_gpu_layers": 999, "ctx_size": 4096,
                                                  "parallel": 1, "flash_attn": False,
                                                  "cache_type_k": "q8_0", "cache_type_v": "f16"}}]}
    (inst,) = _instances("llama_cpp", placement, [{"name": "m", "download": "x"}], {"x": {}})
    assert inst["flash_attention"] == "off"
    assert inst["extra_env"] == {"CUDA_VISIBLE_DEVICES": "1", "LLAMA_ARG_CACHE_TYPE_K": "q8_0"}
