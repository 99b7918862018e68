"""Unit tests for the model_placement action plugin, with the fake estimator."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.playbook.task import Task

from ansible_collections.teamllm.stack.plugins.action import model_placement
from ansible_collections.teamllm.stack.plugins.module_utils import _placement
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    Fake,
    gpus,
)

GIB = _placement.GIB


@pytest.fixture(autouse=True)
def fake_estimator(monkeypatch):
    monkeypatch.setattr(_placement, "load_estimator", Fake)


def action(args):
    task = Task()
    task.args = args
    task.action = "teamllm.stack.model_placement"
    return model_placement.ActionModule(
        task=task, connection=MagicMock(), play_context=MagicMock(check_mode=False),
        loader=MagicMock(), templar=MagicMock(), shared_loader_obj=MagicMock(),
    )


def task_vars(hostvars):
    return {"hostvars": hostvars, "ansible_play_hosts_all": sorted(hostvars)}


HOSTVARS = {
    "n1": {"teamllm_gpus": gpus(24, 24), "ansible_host": "10.0.0.1"},
    "n2": {"ansible_facts": {"teamllm_gpus": gpus(12)}},
    "cpu": {"teamllm_gpus": gpus(), "llm_cpu_inference": "yes", "ansible_memtotal_mb": 65536},
}


DOWNLOADS = {"w": {}}


def test_returns_placement_engines_and_gateway_routes():
    models = [{"name": "m32", "quantizations": ["Q8_0"], "replicas": 2, "download": "w"},
              {"name": "big", "engine": "vllm", "quantizations": ["AWQ"], "download": "w"}]
    hv = {h: dict(v, llm_engine_bind_address="0.0.0.0") for h, v in HOSTVARS.items()}
    result = action({"models": models, "policy": "spread", "downloads": DOWNLOADS,
                     "gateways": ["gw"]}).run(task_vars=task_vars(hv))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert sorted(result["placement"]) == ["cpu", "n1", "n2"]
    assert result["placement"]["cpu"]["instances"] == []
    ports = {(h, i["name"]): i["port"] for h, e in result["placement"].items() for i in e["instances"]}
    routes = result["gateways"]["gw"]["routes"]
    assert routes["m32"] == sorted([f"10.0.0.1:{ports['n1', 'm32']}", f"n2:{ports['n2', 'm32']}"])
    assert routes["big"] == [f"10.0.0.1:{ports['n1', 'big']}"]
    assert [i["name"] for i in result["engines"]["n1"]["llama_cpp"]] == ["m32-0"]
    assert result["engines"]["n1"]["vllm"][0]["served_name"] == "big"
    assert "routes" not in result
    assert result["solver"] in ("highs", "greedy")
    assert result["policy"] == "spread"
    assert result["unplaced"] == []
    for key in ("solver_status", "optimal", "fallback_reason", "seconds", "candidates"):
        assert key in result
    inst = result["placement"]["n2"]["instances"][0]
    assert {"id", "name", "engine", "quantization", "gpus", "port", "settings",
            "bytes_per_gpu", "tensor_parallel_size"} <= set(inst)


def test_cpu_host_ram_from_memtotal_and_llm_cpu_inference():
    # 20 GiB: more than any GPU here, less than the 60 GiB of RAM left after the 4 reserved
    models = [{"name": "big", "engine": "llama_cpp", "quantizations": ["Q4_K_M"], "download": "w"}]
    hv = dict(HOSTVARS, n1={"teamllm_gpus": gpus(8)})
    result = action({"models": models, "downloads": DOWNLOADS}).run(task_vars=task_vars(hv))
    assert not result.get("failed"), result.get("msg")
    (inst,) = result["placement"]["cpu"]["instances"]
    assert inst["device"] == "cpu"
    assert result["placement"]["cpu"]["devices"][0]["memory_total"] == 64 * GIB


def test_fails_before_touching_hosts_with_the_refusal_message():
    models = [{"name": "huge", "engine": "vllm", "quantizations": ["BF16"]}]
    hv = {"n1": {"teamllm_gpus": gpus(24, 24)}}
    result = action({"models": models}).run(task_vars=task_vars(hv))
    assert result["failed"] is True
    assert "model huge does not fit" in result["msg"]
    assert "GiB short" in result["msg"]
    assert result["unplaced"][0]["name"] == "huge"
    assert result["placement"]["n1"]["instances"] == []


def test_allow_partial_does_not_fail():
    models = [{"name": "huge", "engine": "vllm", "quantizations": ["BF16"]},
              {"name": "m32", "quantizations": ["Q4_K_M"], "download": "w"}]
    hv = {"n1": {"teamllm_gpus": gpus(24, 24)}}
    result = action({"models": models, "allow_partial": True, "downloads": DOWNLOADS,
                     "gateways": ["n1"]}).run(task_vars=task_vars(hv))
    assert not result.get("failed")
    assert [u["name"] for u in result["unplaced"]] == ["huge"]
    assert result["gateways"]["n1"]["routes"] == {"m32": ["127.0.0.1:8100"]}


def test_deployment_problems_fail_naming_host_and_fix():
    models = [{"name": "m32", "engine": "llama_cpp", "quantizations": ["Q4_K_M"]},
              {"name": "big", "engine": "ollama", "quantizations": ["Q4_K_M"], "host": "n2"}]
    hv = {"n1": {"teamllm_gpus": gpus(24)}, "n2": {"teamllm_gpus": gpus(24)}}
    result = action({"models": models, "gateways": ["n1"]}).run(task_vars=task_vars(hv))
    assert result["failed"] is True
    assert result["msg"].startswith("cannot deploy the placement:\n- ")
    assert "n1: model m32 is placed as llama_cpp Q4_K_M, but its llm_models item has no download" in result["msg"]
    assert "n2: model big is placed as ollama Q4_K_M, but its llm_models item has no ollama source" in result["msg"]
    assert "gateway n1 cannot reach big on n2" in result["msg"]


def test_backend_keys_are_compared_and_referenced_never_returned():
    secret = "vk-" + "s" * 45
    models = [{"name": "big", "engine": "vllm", "quantizations": ["AWQ"], "replicas": 2, "download": "w"}]
    hv = {n: {"teamllm_gpus": gpus(24), "llm_engine_bind_address": f"10.0.0.{i}", "vllm_api_key": secret}
          for i, n in enumerate(("n1", "n2"), start=1)}
    result = action({"models": models, "downloads": DOWNLOADS, "gateways": ["n1"]}).run(
        task_vars=task_vars(hv))
    assert not result.get("failed"), result.get("msg")
    assert result["gateways"]["n1"]["backend_keys"] == {"big": {"host": "n1", "variable": "vllm_api_key"}}
    assert secret not in repr(result)
    hv["n2"]["vllm_api_key"] = "other-" + "o" * 42
    result = action({"models": models, "downloads": DOWNLOADS, "gateways": ["n1"]}).run(
        task_vars=task_vars(hv))
    assert result["failed"] is True
    assert "the replicas of big require different API keys (vllm_api_key on n2" in result["msg"]
    assert secret not in repr(result) and "o" * 42 not in repr(result)


def test_missing_facts_named():
    result = action({"models": [{"name": "m32", "quantizations": ["Q4_K_M"]}]}).run(
        task_vars=task_vars({"n1": {}}))
    assert result["failed"] is True
    assert "host n1 has no teamllm_gpus facts" in result["msg"]


def test_malformed_model_fails_with_the_reason():
    models = [{"name": "m32", "engine": "tgi", "quantizations": ["Q4_K_M"]}]
    result = action({"models": models}).run(task_vars=task_vars({"n1": {"teamllm_gpus": gpus(24)}}))
    assert result["failed"] is True
    assert "engine 'tgi'" in result["msg"]


@pytest.mark.parametrize("args, match", [
    ({"models": [{"name": "m32", "quantizations": ["Q4_K_M"]}], "policy": "random"}, "policy"),
    ({"policy": "spread"}, "models"),
])
def test_bad_arguments_are_refused_by_the_spec(args, match):
    with pytest.raises(AnsibleActionFail, match=match):
        action(args).run(task_vars=task_vars({"n1": {"teamllm_gpus": gpus(24)}}))


def test_hosts_argument_limits_the_hosts():
    models = [{"name": "m32", "quantizations": ["Q4_K_M"], "download": "w"}]
    result = action({"models": models, "hosts": ["n2"], "downloads": DOWNLOADS}).run(
        task_vars=task_vars(HOSTVARS))
    assert sorted(result["placement"]) == ["n2"]
