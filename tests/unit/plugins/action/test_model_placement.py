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


def test_returns_placement_per_host_and_routes():
    models = [{"name": "m32", "quantizations": ["Q8_0"], "replicas": 2},
              {"name": "big", "engine": "vllm", "quantizations": ["AWQ"]}]
    result = action({"models": models, "policy": "spread"}).run(task_vars=task_vars(HOSTVARS))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert sorted(result["placement"]) == ["cpu", "n1", "n2"]
    assert result["placement"]["cpu"]["instances"] == []
    assert result["routes"]["m32"] == ["10.0.0.1:8100", "n2:8100"] or \
        result["routes"]["m32"] == ["10.0.0.1:8101", "n2:8100"]
    assert result["routes"]["big"][0].startswith("10.0.0.1:")
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
    models = [{"name": "big", "engine": "llama_cpp", "quantizations": ["Q4_K_M"]}]
    hv = dict(HOSTVARS, n1={"teamllm_gpus": gpus(8)})
    result = action({"models": models}).run(task_vars=task_vars(hv))
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
              {"name": "m32", "quantizations": ["Q4_K_M"]}]
    hv = {"n1": {"teamllm_gpus": gpus(24, 24)}}
    result = action({"models": models, "allow_partial": True}).run(task_vars=task_vars(hv))
    assert not result.get("failed")
    assert [u["name"] for u in result["unplaced"]] == ["huge"]
    assert result["routes"] == {"m32": ["n1:8100"]}


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
    models = [{"name": "m32", "quantizations": ["Q4_K_M"]}]
    result = action({"models": models, "hosts": ["n2"]}).run(task_vars=task_vars(HOSTVARS))
    assert sorted(result["placement"]) == ["n2"]
