from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.teamllm.stack.plugins.modules import gpu_facts
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__gpu_facts import (
    H100_CSV,
    FakeNVML,
)


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


@pytest.fixture
def exits(monkeypatch):
    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)

    def fail_json(self, **kwargs):
        raise FailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


def run_main(args, monkeypatch, nvml=None, smi_path=None, smi_output=H100_CSV):
    def load():
        if nvml is None:
            raise ImportError("No module named 'pynvml'")
        return nvml

    monkeypatch.setattr(gpu_facts, "_load_nvml", load)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: smi_path)
    monkeypatch.setattr(
        basic.AnsibleModule,
        "run_command",
        lambda self, argv, **k: (0, smi_output if "--format" in " ".join(argv) else "CUDA Version: 13.0", ""),
    )
    with patch_module_args(args), pytest.raises((ExitJson, FailJson)) as info:
        gpu_facts.main()
    return info


def test_nvml_facts(exits, monkeypatch):
    info = run_main({}, monkeypatch, nvml=FakeNVML([{}, {}]))
    result = info.value.args[0]
    assert info.type is ExitJson
    assert result["changed"] is False
    facts = result["ansible_facts"]["teamllm_gpus"]
    assert facts["source"] == "nvml" and facts["gpu_count"] == 2
    json.dumps(result)  # facts must serialise


def test_falls_back_to_nvidia_smi(exits, monkeypatch):
    info = run_main({}, monkeypatch, nvml=None, smi_path="/usr/bin/nvidia-smi")
    facts = info.value.args[0]["ansible_facts"]["teamllm_gpus"]
    assert facts["source"] == "nvidia-smi"
    assert facts["cuda_driver_version"] == "13.0"
    assert facts["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"


def test_cpu_host_is_not_a_failure(exits, monkeypatch):
    info = run_main({}, monkeypatch, nvml=None, smi_path=None)
    assert info.type is ExitJson
    facts = info.value.args[0]["ansible_facts"]["teamllm_gpus"]
    assert facts["gpus"] == [] and "nvidia-smi not found" in facts["reason"]


def test_declared_in_check_mode(exits, monkeypatch):
    args = {"declared": [{"name": "RTX 3090", "memory_gb": 24, "count": 2}], "_ansible_check_mode": True}
    info = run_main(args, monkeypatch, nvml=FakeNVML([{}]))
    facts = info.value.args[0]["ansible_facts"]["teamllm_gpus"]
    assert facts["source"] == "declared" and facts["gpu_count"] == 2


def test_bad_declaration_fails_clearly(exits, monkeypatch):
    info = run_main({"declared": [{"name": "x"}]}, monkeypatch)
    assert info.type is FailJson
    assert "memory_gb" in info.value.args[0]["msg"]
