"""Unit tests for _placement.result: the instances' keys, settings, breakdown, devices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P
from ansible_collections.teamllm.stack.plugins.module_utils._estimator import Estimate
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    GIB,
    Fake,
    gpus,
    instances,
)

KEYS = {"id", "name", "model", "replica", "engine", "quantization", "context", "parallel",
        "device", "gpus", "gpu_uuids", "cuda_visible_devices", "tensor_parallel_size",
        "gpu_memory_utilization", "bytes_per_gpu", "ram_bytes", "settings", "breakdown"}


class WithBreakdown(Fake):
    """The fake, with a breakdown as the real estimator gives it (numpy numbers included)."""

    def estimate(self, model, engine, quantization, context, **kwargs):
        est = super().estimate(model, engine, quantization, context, **kwargs)
        weights = est.total_gpu_bytes or est.host_bytes
        breakdown = {"weights": np.int64(weights), "weights_per_gpu": list(est.per_gpu_bytes),
                     "kv_cache": 0, "compute": float(2**20), "n_ctx_seq": context}
        return Estimate(est.engine, est.model, est.quantization, est.context, est.parallel,
                        est.tp, est.per_gpu_bytes, est.host_bytes, breakdown,
                        est.gpu_memory_utilization)


@pytest.fixture
def result():
    models = [{"name": "m32", "alias": "chat", "engine": "vllm", "quantizations": ["AWQ"]},
              {"name": "huge", "engine": "llama_cpp", "quantizations": ["Q4_K_M"]},
              {"name": "ctx", "engine": "ollama", "quantizations": ["Q8_0"], "parallel": 2}]
    hosts = {"a": {"gpus": gpus(24, 24, 24, 24, 24), "address": "10.0.0.1"},
             "cpu": {"gpus": gpus(), "cpu_inference": True, "ram_bytes": 32 * GIB}}
    return P.plan(models, hosts, estimator=WithBreakdown(), reserve_gib=1, ram_reserve_gib=2)


def test_instances_carry_the_agreed_keys_and_no_port(result):
    assert "routes" not in result
    for _, inst in instances(result):
        assert set(inst) == KEYS


def test_breakdown_is_the_estimates_in_plain_ints(result):
    json.dumps(result)  # plain data all through
    by_name = {i["name"]: i for _, i in instances(result)}
    huge = by_name["huge"]
    assert huge["breakdown"]["weights"] == sum(huge["bytes_per_gpu"])
    assert type(huge["breakdown"]["weights"]) is int
    assert huge["breakdown"]["compute"] == 2**20 and type(huge["breakdown"]["compute"]) is int
    assert huge["breakdown"]["weights_per_gpu"] == huge["bytes_per_gpu"]
    assert by_name["ctx"]["breakdown"]["n_ctx_seq"] == 4096


def test_settings_per_engine(result):
    by_name = {i["name"]: i for _, i in instances(result)}
    chat, huge, ctx = by_name["chat"], by_name["huge"], by_name["ctx"]
    assert chat["settings"] == {"tensor_parallel_size": 1,
                                "gpu_memory_utilization": chat["gpu_memory_utilization"],
                                "max_model_len": 4096, "max_num_seqs": 1}
    assert huge["settings"]["split_mode"] == "layer" and len(huge["gpus"]) == 4
    assert huge["cuda_visible_devices"] == "0,1,2,3" and huge["tensor_parallel_size"] == 4
    assert ctx["settings"]["num_parallel"] == 2 and ctx["settings"]["context_length"] == 4096


def test_devices_add_up_to_their_instances(result):
    for host, spec in result["placement"].items():
        for device in spec["devices"]:
            ids = set(device["instances"])
            taken = 0
            for inst in spec["instances"]:
                if inst["id"] in ids:
                    if device["kind"] == "gpu":
                        taken += inst["bytes_per_gpu"][inst["gpus"].index(device["index"])]
                    else:
                        taken += inst["ram_bytes"]
            assert device["planned"] == taken
            assert device["free"] == device["memory_total"] - device["reserved"] - taken
    assert result["placement"]["a"]["address"] == "10.0.0.1"
    assert result["placement"]["cpu"]["instances"] == []
