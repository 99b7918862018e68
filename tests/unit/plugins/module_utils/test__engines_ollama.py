"""From the placement to the ollama role: module_utils/_engines/ollama.py, fed with real
placements from _placement.plan."""

from __future__ import annotations

import pytest
from placement_fixtures import gpus as _gpus
from placement_fixtures import instances as _instances
from placement_fixtures import plan as _full_plan

from ansible_collections.teamllm.stack.plugins.module_utils._engines import EngineError
from ansible_collections.teamllm.stack.plugins.module_utils._engines import ollama as eo

DOWNLOADS = {
    "ollama_teamllm_tiny": {"version": "1", "blobs": "ollama/models/blobs",
                            "path": "ollama/models/manifests/registry.ollama.ai/library/teamllm-tiny/q8_0"},
}


def _plan(models, gpus):
    return _full_plan(models, {"node1": {"gpus": gpus, "address": "10.0.0.5"}})["placement"]["node1"]


TINY = {"name": "teamllm-tiny", "engine": "ollama", "quantizations": ["Q8_0"], "context": 1024,
        "parallel": 2, "ollama": {"import": "ollama_teamllm_tiny", "pull": "tinyllama:1.1b"}}
QWEN = {"name": "qwen2.5-7b", "alias": "chat", "engine": "ollama", "quantizations": ["Q4_K_M"],
        "context": 8192, "parallel": 4, "kv_cache_type": "q8_0",
        "ollama": {"Q4_K_M": {"pull": "qwen2.5:7b-instruct-q4_K_M", "system": "Be brief.",
                              "parameters": {"temperature": 0.2}}}}


def test_placement_on_one_gpu_becomes_instances_and_one_server():
    placement = _plan([TINY, QWEN], _gpus(24))
    instances = _instances("ollama", placement, [TINY, QWEN], host="node1")
    assert [i["name"] for i in instances] == ["chat", "teamllm-tiny"]
    chat, tiny = instances
    # one server serves both: they share its port
    assert chat["port"] == tiny["port"] == 8100
    assert chat["context"] == 8192 and chat["parallel"] == 4 and chat["kv_cache_type"] == "q8_0"
    assert chat["pull"] == "qwen2.5:7b-instruct-q4_K_M" and chat["system"] == "Be brief."
    assert tiny["import"] == "ollama_teamllm_tiny" and tiny["cuda_visible_devices"] == "0"
    server = eo.server_settings(instances)
    assert server == {"port": 8100, "num_parallel": 4, "context_length": 8192,
                      "max_loaded_models": 2, "flash_attention": True, "kv_cache_type": "q8_0",
                      "sched_spread": False, "cuda_visible_devices": "0",
                      "served": ["chat", "teamllm-tiny"]}


def test_two_gpus_spread_and_union_of_devices():
    big = {"name": "llama-3.1-70b", "engine": "ollama", "quantizations": ["Q4_K_M"],
           "context": 4096, "ollama": "llama3.1:70b-instruct-q4_K_M"}
    placement = _plan([big], _gpus(24, 24))
    (inst,) = _instances("ollama", placement, [big])
    assert inst["cuda_visible_devices"] == "0,1" and inst["sched_spread"] is True
    assert eo.server_settings([inst])["sched_spread"] is True


def test_missing_ollama_source_names_the_model_and_host():
    bare = dict(TINY)
    del bare["ollama"]
    placement = _plan([bare], _gpus(24))
    with pytest.raises(EngineError, match="node1: model teamllm-tiny is placed as ollama Q8_0"):
        _instances("ollama", placement, [bare], host="node1")


def test_other_engines_are_ignored():
    llama = {"name": "qwen2.5-7b", "engine": "llama_cpp", "quantizations": ["Q4_K_M"], "download": "d"}
    placement = _plan([TINY, llama], _gpus(24))
    assert [i["name"] for i in _instances("ollama", placement, [TINY, llama])] == ["teamllm-tiny"]


def test_source_spec_forms():
    assert eo.source_spec({"ollama": "a:b"}, "Q8_0") == {"pull": "a:b"}
    assert eo.source_spec({"ollama": {"Q8_0": "a:b", "Q4_0": "c"}}, "Q8_0") == {"pull": "a:b"}
    assert eo.source_spec({"ollama": {"import": "e", "system": "S"}}, "Q8_0") == {"import": "e", "system": "S"}
    assert eo.source_spec({"ollama": {"Q4_0": "c"}}, "Q8_0") is None
    assert eo.source_spec({}, "Q8_0") is None


def test_server_keeps_the_most_compact_kv_cache_and_flash_only_when_all_have_it():
    a = {"name": "a", "port": 1, "kv_cache_type": "f16", "flash_attention": True}
    b = {"name": "b", "port": 2, "kv_cache_type": "q4_0", "flash_attention": False}
    server = eo.server_settings([a, b])
    assert server["kv_cache_type"] == "q4_0" and server["flash_attention"] is False
    assert eo.server_settings([]) == {}


def test_model_plan_offline_imports_then_serves_with_the_context():
    placement = _plan([TINY], _gpus(24))
    instances = _instances("ollama", placement, [TINY])
    custom = [{"name": "pirate", "from": "teamllm-tiny", "system": "Arr.",
               "parameters": {"temperature": 0.9}},
              {"name": "old", "from": "teamllm-tiny", "state": "absent"}]
    plan = eo.model_plan(instances, DOWNLOADS, source="mirror", custom=custom)
    assert plan == [
        {"name": "teamllm-tiny:q8_0", "kind": "import", "download": "ollama_teamllm_tiny"},
        {"name": "teamllm-tiny:latest", "kind": "from", "from": "teamllm-tiny:q8_0",
         "parameters": {"num_ctx": 1024}},
        {"name": "pirate:latest", "kind": "from", "from": "teamllm-tiny:latest",
         "system": "Arr.", "parameters": {"temperature": 0.9}},
    ]
    online = eo.model_plan(instances, DOWNLOADS, source="registry")
    assert online[0] == {"name": "tinyllama:1.1b", "kind": "pull"}
    assert eo.stale_models(["teamllm-tiny:latest", "other", "pirate:latest"], plan) == ["other:latest"]


def test_model_plan_problems_name_host_and_model():
    pulled_only = [{"name": "chat", "port": 1, "pull": "qwen2.5:7b"}]
    with pytest.raises(EngineError, match="node1: ollama model chat has no offline copy"):
        eo.model_plan(pulled_only, DOWNLOADS, source="mirror", host="node1")
    with pytest.raises(EngineError, match="import 'nope' is not an entry"):
        eo.model_plan([{"name": "c", "import": "nope"}], DOWNLOADS)
    with pytest.raises(EngineError, match="served name is the name of its weights"):
        eo.model_plan([{"name": "qwen2.5:7b", "pull": "qwen2.5:7b"}], DOWNLOADS, source="registry")
    with pytest.raises(EngineError, match="named twice"):
        eo.model_plan([{"name": "a", "pull": "x"}], {}, source="registry",
                      custom=[{"name": "a", "from": "x"}])
    with pytest.raises(EngineError, match="not one of"):
        eo.model_plan([], {}, source="upstream")


def test_import_name_and_blob_downloads():
    assert eo.import_name("e", DOWNLOADS["ollama_teamllm_tiny"]) == "teamllm-tiny:q8_0"
    assert eo.import_name("e", {"ollama_name": "x"}) == "x:latest"
    manifest = {"config": {"digest": "sha256:" + "a" * 64},
                "layers": [{"digest": "sha256:" + "b" * 64}]}
    blobs = eo.blob_downloads(manifest, "ollama_teamllm_tiny", DOWNLOADS["ollama_teamllm_tiny"])
    assert blobs["ollama_teamllm_tiny__blob_" + "b" * 16] == {
        "version": "1", "path": "ollama/models/blobs/sha256-" + "b" * 64, "url": "",
        "sha256": "b" * 64}
    with pytest.raises(EngineError, match="malformed digest"):
        eo.blob_downloads({"layers": [{"digest": "sha256:../../etc/passwd"}]}, "e",
                          DOWNLOADS["ollama_teamllm_tiny"])


def test_check_names_models_the_node_cannot_obtain_from_its_source():
    instances = [{"name": "chat", "pull": "qwen2.5:7b"}]
    assert eo.check(instances, "node1", DOWNLOADS, {"ollama_model_source": "registry"}) == []
    assert eo.check(instances, "node1", DOWNLOADS, {"llm_artifact_source": "upstream"}) == []
    (problem,) = eo.check(instances, "node1", DOWNLOADS, {"llm_artifact_source": "mirror"})
    assert problem.startswith("node1: ollama model chat has no offline copy")


@pytest.mark.parametrize(("artifacts", "source"), [
    ("upstream", "registry"), (None, "registry"), ("mirror", "mirror"), ("controller", "mirror")])
def test_default_source_follows_the_artifact_source(artifacts, source):
    assert eo.default_source(artifacts) == source
