"""From the placement to the engines: the pure mapping in module_utils/_engine_instances.py,
fed with real placements from _placement.plan."""

from __future__ import annotations

import pytest
from placement_fixtures import gpus as _gpus
from placement_fixtures import plan as _plan

from ansible_collections.teamllm.stack.plugins.module_utils import _engine_instances as ei

DOWNLOADS = {"teamllm_tiny_gguf": {}, "llama_8b_q4": {}, "llama_8b_q8": {}}


TINY = {"name": "teamllm-tiny", "engine": "llama_cpp", "quantizations": ["Q8_0"],
        "context": 1024, "parallel": 2, "download": "teamllm_tiny_gguf"}


def test_placement_models_drops_engine_keys_only():
    assert ei.placement_models([TINY, "qwen2.5-7b"]) == [
        {k: v for k, v in TINY.items() if k != "download"}, "qwen2.5-7b"]
    assert TINY["download"] == "teamllm_tiny_gguf"  # the input is not modified
    assert ei.placement_models(None) == []


def test_cpu_instance_maps_onto_llama_cpp_instances():
    plan = _plan([TINY], {"n1": {"cpu": True, "ram": 8}})
    (inst,) = ei.llama_cpp_instances(plan["placement"]["n1"], [TINY], DOWNLOADS)
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
    (inst,) = ei.llama_cpp_instances(plan["placement"]["n1"], [model], DOWNLOADS)
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
    (inst,) = ei.llama_cpp_instances(plan["placement"]["n1"], [model], DOWNLOADS)
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
    with pytest.raises(ei.EngineInstancesError) as err:
        ei.llama_cpp_instances(plan["placement"]["n1"], [model], DOWNLOADS, host="n1")
    assert "n1: model teamllm-tiny" in str(err.value)
    assert expected in str(err.value)


def test_every_engine_is_deployed_and_unknown_ones_are_listed_not_dropped():
    placement = {"n1": {"instances": [
        {"id": "a-0", "name": "a", "engine": "vllm"},
        {"id": "b-0", "name": "b", "engine": "llama_cpp"},
        {"id": "c-0", "name": "c", "engine": "ollama"},
        {"id": "d-0", "name": "d", "engine": "localai"},
    ]}, "n2": {"instances": []}}
    assert ei.undeployed(placement) == []
    messages = ei.undeployed(placement, deployed=("llama_cpp",))
    assert len(messages) == 3
    assert messages[0].startswith("host n1: instance a-0 (a) uses engine vllm, which is not yet "
                                  "deployed by this release")
    assert "engine ollama" in messages[1]
    # the llama_cpp mapping itself only takes llama_cpp instances
    assert ei.llama_cpp_instances({"instances": placement["n1"]["instances"][:1]}, [], {}) == []


def test_empty_placement_gives_no_instances():
    assert ei.llama_cpp_instances({}, [], {}) == []
    assert ei.llama_cpp_instances(None, None, None) == []
    assert ei.undeployed({}) == []


def test_gateway_routes_use_loopback_on_its_own_host():
    plan = _plan([TINY], {"n1": {"cpu": True, "ram": 8, "address": "10.0.0.11"}})
    assert ei.gateway_routes(plan["placement"], "n1") == {"teamllm-tiny": ["127.0.0.1:8100"]}
    assert ei.gateway_routes(plan["placement"], "n1", {"n1": "10.0.0.11"}) == {
        "teamllm-tiny": ["10.0.0.11:8100"]}


def test_gateway_routes_to_other_hosts_need_a_private_bind_address():
    placement = {
        "n1": {"address": "10.0.0.11", "instances": [{"name": "m", "port": 8100}]},
        "n2": {"address": "10.0.0.12", "instances": [{"name": "m", "port": 8101}]},
    }
    assert ei.gateway_routes(placement, "gw", {"n1": "10.0.0.11", "n2": "10.0.0.12"}) == {
        "m": ["10.0.0.11:8100", "10.0.0.12:8101"]}
    assert ei.gateway_routes(placement, "n1", {"n2": "10.0.0.12"}) == {
        "m": ["10.0.0.12:8101", "127.0.0.1:8100"]}
    with pytest.raises(ei.EngineInstancesError, match="gateway n1 cannot reach m on n2: its "
                                                      "engines listen on 127.0.0.1 only"):
        ei.gateway_routes(placement, "n1")


def test_gateway_routes_use_the_bind_address_per_engine_and_host_address_for_wildcards():
    placement = {
        "n1": {"address": "node1.lan", "instances": [
            {"name": "m", "port": 8100, "engine": "llama_cpp"},
            {"name": "v", "port": 8101, "engine": "vllm"},
        ]},
        "n2": {"address": "node2.lan", "instances": [{"name": "m", "port": 8100}]},
    }
    binds = {"n1": {"default": "10.0.0.11", "vllm": "fd00::11"}, "n2": "0.0.0.0"}
    assert ei.gateway_routes(placement, "gw", binds) == {
        "m": ["10.0.0.11:8100", "node2.lan:8100"], "v": ["[fd00::11]:8101"]}
    with pytest.raises(ei.EngineInstancesError, match="set llm_engine_bind_address \\(or "
                                                      "vllm_bind_address\\) on n1"):
        ei.gateway_routes(placement, "gw", {"n1": {"llama_cpp": "10.0.0.11"}, "n2": "0.0.0.0"})


def test_cache_types_other_than_f16_are_passed():
    placement = {"instances": [{
        "id": "m-0", "name": "m", "engine": "llama_cpp", "quantization": "Q8_0", "port": 8100,
        "cuda_visible_devices": "1", "settings": {"n_gpu_layers": 999, "ctx_size": 4096,
                                                  "parallel": 1, "flash_attn": False,
                                                  "cache_type_k": "q8_0", "cache_type_v": "f16"}}]}
    (inst,) = ei.llama_cpp_instances(placement, [{"name": "m", "download": "x"}], {"x": {}})
    assert inst["flash_attention"] == "off"
    assert inst["extra_env"] == {"CUDA_VISIBLE_DEVICES": "1", "LLAMA_ARG_CACHE_TYPE_K": "q8_0"}


def test_gateway_routes_send_every_ollama_model_of_a_host_to_its_one_server():
    placement = {
        "n1": {"address": "n1", "instances": [
            {"id": "a-0", "name": "a", "port": 8100, "engine": "llama_cpp"},
            {"id": "b-0", "name": "b", "port": 8101, "engine": "ollama"},
            {"id": "c-0", "name": "c", "port": 8102, "engine": "ollama"},
        ]},
        "n2": {"address": "n2", "instances": [{"id": "c-1", "name": "c", "port": 8100, "engine": "ollama"}]},
    }
    assert ei.gateway_routes(placement, "n1", {"n2": "10.0.0.12"}) == {
        "a": ["127.0.0.1:8100"], "b": ["127.0.0.1:8101"],
        "c": ["10.0.0.12:8100", "127.0.0.1:8101"]}


def test_placement_models_drop_engine_only_keys():
    models = [{"name": "m", "engine": "ollama", "download": "x", "ollama": {"pull": "m:1b"}}, "plain"]
    assert ei.placement_models(models) == [{"name": "m", "engine": "ollama"}, "plain"]


def test_backend_keys_for_engines_that_require_one():
    placements = {
        "n1": {"instances": [{"name": "a", "engine": "vllm"}, {"name": "b", "engine": "llama_cpp"},
                             {"name": "c", "engine": "localai"}]},
        "n2": {"instances": [{"name": "a", "engine": "vllm"}, {"name": "d", "engine": "localai"}]},
    }
    keys = {"n1": {"vllm": "K1", "localai": "L1"}, "n2": {"vllm": "K1", "localai": None}}
    assert ei.backend_keys(placements, keys) == {"a": "K1", "c": "L1"}
    assert ei.backend_keys({}, {}) == {}


def test_backend_keys_of_replicas_must_agree():
    placements = {"n1": {"instances": [{"name": "a", "engine": "vllm"}]},
                  "n2": {"instances": [{"name": "a", "engine": "vllm"}]}}
    with pytest.raises(ei.EngineInstancesError, match="the replicas of a require different API keys "
                                                      "\\(vllm_api_key on n2 differs\\)"):
        ei.backend_keys(placements, {"n1": {"vllm": "K1"}, "n2": {"vllm": "K2"}})
