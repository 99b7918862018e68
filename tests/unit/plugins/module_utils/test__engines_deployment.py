"""The engine registry and the deployment plan (module_utils/_engines): ports, per-host
instances, gateway routes and backend keys, computed once from a real placement."""

from __future__ import annotations

import pytest
from placement_fixtures import gpus as _gpus
from placement_fixtures import hosts_input

from ansible_collections.teamllm.stack.plugins.module_utils import _engines, _estimator, _placement
from ansible_collections.teamllm.stack.plugins.module_utils._engines import EngineError, deployment

DOWNLOADS = {"teamllm_tiny_gguf": {}, "llama_8b_q4": {}, "llama_8b_hf": {},
             "ollama_mistral": {"path": "ollama/manifests/registry.ollama.ai/library/mistral/7b",
                                "blobs": "ollama/blobs"}}
TINY = {"name": "teamllm-tiny", "engine": "llama_cpp", "quantizations": ["Q8_0"],
        "context": 1024, "parallel": 2, "download": "teamllm_tiny_gguf"}
MISTRAL = {"name": "mistral-7b", "engine": "ollama", "quantizations": ["Q4_K_M"], "context": 4096,
           "ollama": {"pull": "mistral:7b-instruct-q4_K_M", "import": "ollama_mistral"}}
QWEN = {"name": "qwen2.5-7b", "alias": "qwen", "engine": "ollama", "quantizations": ["Q4_K_M"],
        "context": 4096, "ollama": "qwen2.5:7b-instruct-q4_K_M"}
LLAMA = {"name": "llama-3.1-8b", "engine": "llama_cpp", "quantizations": ["Q4_K_M"],
         "context": 4096, "download": "llama_8b_q4"}
VLLM = {"name": "llama-3.1-8b", "alias": "chat", "engine": "vllm", "quantizations": ["BF16"],
        "context": 4096, "replicas": 2, "download": "llama_8b_hf"}


def _deploy(models, hosts, **kwargs):
    placed = _placement.plan(_engines.placement_models(models), hosts_input(hosts))
    return deployment.deployment_plan(placed["placement"], models, DOWNLOADS, **kwargs)


def test_the_registry_covers_exactly_the_engines_the_estimator_and_placement_know():
    assert set(_engines.NAMES) == set(_estimator.ENGINES)
    assert set(_engines.names(gguf=True)) == set(_estimator.GGUF_ENGINES)
    assert _engines.names(shared_server=True) == ("ollama",)
    assert _engines.names(keyed=True) == ("vllm", "localai")
    assert _engines.ENGINES["vllm"].key_variable == "vllm_api_key"
    assert _engines.ENGINES["llama_cpp"].key_variable is None
    assert _engines.MODEL_KEYS == ("download", "ollama")


def test_placement_models_drop_engine_only_keys_without_changing_the_input():
    models = [{"name": "m", "engine": "ollama", "download": "x", "ollama": {"pull": "m:1b"}}, "plain"]
    assert _engines.placement_models(models) == [{"name": "m", "engine": "ollama"}, "plain"]
    assert models[0]["download"] == "x"
    assert _engines.placement_models(None) == []


def test_two_ollama_models_on_one_host_share_its_server_port_in_plan_and_routes():
    plan = _deploy([MISTRAL, QWEN, LLAMA], {"n1": {"gpus": _gpus(24), "address": "10.0.0.5"}},
                   nodes={"n1": {"binds": {"default": "10.0.0.5"}}}, gateways=["gw"])
    instances = plan["placement"]["n1"]["instances"]
    ports = {i["name"]: i["port"] for i in instances}
    # llama.cpp has its own port; both Ollama models are served by the one Ollama server
    assert ports["mistral-7b"] == ports["qwen"]
    assert len(set(ports.values())) == 2 and set(ports.values()) == {8100, 8101}
    routes = plan["gateways"]["gw"]["routes"]
    # what the plan reports is what the gateway gets
    assert routes == {i["name"]: [f"10.0.0.5:{i['port']}"] for i in instances}
    ollama = plan["engines"]["n1"]["ollama"]
    assert {i["port"] for i in ollama} == {ports["qwen"]}
    assert plan["engines"]["n1"]["llama_cpp"][0]["port"] == ports["llama-3.1-8b"]


def test_ports_are_per_host_from_the_base_and_refused_past_65535():
    placement = {"a": {"instances": [{"engine": "llama_cpp"}, {"engine": "ollama"},
                                     {"engine": "vllm"}, {"engine": "ollama"}]},
                 "b": {"instances": [{"engine": "ollama"}]}}
    placed = deployment.assign_ports(placement, 9000)
    assert [i["port"] for i in placed["a"]["instances"]] == [9000, 9001, 9002, 9001]
    assert [i["port"] for i in placed["b"]["instances"]] == [9000]
    assert "port" not in placement["a"]["instances"][0]  # the input is not changed
    with pytest.raises(EngineError, match="a: llm_engine_port_base 65534 leaves no port for its 4"):
        deployment.assign_ports(placement, 65534)
    assert deployment.assign_ports(placement, 65533)["a"]["instances"][2]["port"] == 65535


def test_gateway_routes_use_loopback_on_its_own_host():
    plan = _deploy([TINY], {"n1": {"cpu": True, "ram": 8, "address": "10.0.0.11"}},
                   gateways=["n1"])
    assert plan["gateways"]["n1"]["routes"] == {"teamllm-tiny": ["127.0.0.1:8100"]}
    plan = _deploy([TINY], {"n1": {"cpu": True, "ram": 8, "address": "10.0.0.11"}},
                   nodes={"n1": {"binds": {"default": "10.0.0.11"}}}, gateways=["n1"])
    assert plan["gateways"]["n1"]["routes"] == {"teamllm-tiny": ["10.0.0.11:8100"]}
    # the same backends by engine host (what a rolling update drains)
    assert plan["gateways"]["n1"]["backends"] == {"n1": ["10.0.0.11:8100"]}


def _placed(**hosts):
    return {name: {"address": address, "instances": [
        {"id": f"{n}-0", "name": n, "engine": e} for n, e in insts]}
        for name, (address, insts) in hosts.items()}


def test_gateway_routes_to_other_hosts_need_a_private_bind_address():
    placement = deployment.assign_ports(_placed(n1=("10.0.0.11", [("m", "llama_cpp")]),
                                                n2=("10.0.0.12", [("m", "llama_cpp")])))
    nodes = {"n1": {"binds": {"default": "10.0.0.11"}}, "n2": {"binds": {"default": "10.0.0.12"}}}
    assert deployment.gateway_routes(placement, "gw", nodes) == (
        {"m": ["10.0.0.11:8100", "10.0.0.12:8100"]}, [])
    routes, problems = deployment.gateway_routes(placement, "n1", {"n2": nodes["n2"]})
    assert routes == {"m": ["10.0.0.12:8100", "127.0.0.1:8100"]} and problems == []
    routes, problems = deployment.gateway_routes(placement, "n1", {})
    assert problems == ["gateway n1 cannot reach m on n2: its engines listen on 127.0.0.1 only; "
                        "set llm_engine_bind_address (or llama_cpp_bind_address) on n2 to its "
                        "private address (its engines then admit only llm_engine_allow_from) or "
                        "run a gateway there"]


def test_gateway_routes_use_the_bind_address_per_engine_and_host_address_for_wildcards():
    placement = deployment.assign_ports(_placed(
        n1=("node1.lan", [("m", "llama_cpp"), ("v", "vllm")]), n2=("node2.lan", [("m", "llama_cpp")])))
    nodes = {"n1": {"binds": {"default": "10.0.0.11", "vllm": "fd00::11"}},
             "n2": {"binds": {"default": "0.0.0.0"}}}
    assert deployment.gateway_routes(placement, "gw", nodes) == (
        {"m": ["10.0.0.11:8100", "node2.lan:8100"], "v": ["[fd00::11]:8101"]}, [])
    _, problems = deployment.gateway_routes(
        placement, "gw", {"n1": {"binds": {"llama_cpp": "10.0.0.11"}}, "n2": nodes["n2"]})
    assert len(problems) == 1 and "set llm_engine_bind_address (or vllm_bind_address) on n1" in problems[0]


def test_backend_keys_name_the_variable_never_the_value():
    placement = _placed(n1=("a", [("a", "vllm"), ("b", "llama_cpp"), ("c", "localai")]),
                        n2=("b", [("a", "vllm"), ("d", "localai")]))
    secret = "K1-" + "x" * 40
    nodes = {"n1": {"keys": {"vllm": secret, "localai": "L1" * 20}},
             "n2": {"keys": {"vllm": secret, "localai": ""}}}
    refs, problems = deployment.backend_keys(placement, nodes)
    assert problems == []
    assert refs == {"a": {"host": "n1", "variable": "vllm_api_key"},
                    "c": {"host": "n1", "variable": "localai_api_key"}}
    assert secret not in repr(refs)
    _, problems = deployment.backend_keys(placement, {"n1": nodes["n1"],
                                                      "n2": {"keys": {"vllm": "K2" * 20}}})
    assert problems == ["the replicas of a require different API keys (vllm_api_key on n2 differs "
                        "from n1's); give every vllm node serving it the same key"]


def test_deployment_publishes_each_hosts_engines_and_each_gateways_keys():
    hosts = {"n1": {"gpus": _gpus(24), "address": "10.0.0.1"},
             "n2": {"gpus": _gpus(24), "address": "10.0.0.2"}}
    nodes = {h: {"binds": {"default": spec["address"]}, "keys": {"vllm": "V" * 40}}
             for h, spec in hosts.items()}
    plan = _deploy([VLLM, TINY], hosts, nodes=nodes, gateways=["gw", "n1"])
    assert sorted(plan["engines"]) == ["n1", "n2"]
    chat = [i for h in ("n1", "n2") for i in plan["engines"][h]["vllm"]]
    assert [i["served_name"] for i in chat] == ["chat", "chat"]
    assert all(i["gpus"] == [0] and 0 < i["gpu_memory_utilization"] <= 1 for i in chat)
    for gateway in ("gw", "n1"):
        assert plan["gateways"][gateway]["backend_keys"] == {"chat": {"host": "n1", "variable": "vllm_api_key"}}
    # n1's own replica is reached on the address its engines listen on, like n2's
    assert plan["gateways"]["n1"]["routes"]["chat"] == [
        f"10.0.0.{n}:{plan['engines'][f'n{n}']['vllm'][0]['port']}" for n in (1, 2)]
    assert "V" * 40 not in repr(plan)


def test_every_problem_of_every_host_is_raised_at_once():
    no_download = {**TINY, "download": None, "host": "n1"}
    mirror_only = {**QWEN, "ollama": {"pull": "qwen2.5:7b"}}
    with pytest.raises(EngineError) as err:
        _deploy([no_download, mirror_only],
                {"n1": {"cpu": True, "ram": 8}, "n2": {"gpus": _gpus(24)}},
                nodes={"n2": {"ollama_model_source": "mirror"}}, gateways=["n1"])
    problems = err.value.problems
    assert any(p.startswith("n1: model teamllm-tiny is placed as llama_cpp Q8_0") for p in problems)
    assert any(p.startswith("n2: ollama model qwen has no offline copy") for p in problems)
    assert any(p.startswith("gateway n1 cannot reach qwen on n2") for p in problems)
