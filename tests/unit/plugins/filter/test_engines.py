"""The playbook helpers over the engine registry (plugins/filter/engines.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.filter import engines as f


@pytest.mark.parametrize(("host_vars", "here", "docker"), [
    ({}, [], False),
    ({"teamllm_engines": {"ollama": [{"name": "a"}], "llama_cpp": [{"name": "b"}]}},
     ["llama_cpp", "ollama"], False),
    ({"teamllm_engines": {"vllm": []}}, [], False),  # an engine without instances does not run
    ({"teamllm_engines": {"vllm": [{}]}}, ["vllm"], False),
    ({"teamllm_engines": {"vllm": [{}]}, "vllm_install_method": "container"}, ["vllm"], True),
    ({"localai_instances": [{"name": "x"}]}, ["localai"], True),
    ({"teamllm_engines": {"llama_cpp": [{}]}, "ollama_instances": [{}]}, ["llama_cpp", "ollama"], False),
])
def test_engines_here_and_docker_follow_the_plan_and_the_inventory(host_vars, here, docker):
    assert f.engines_here(host_vars) == here
    assert f.engines_need_docker(host_vars) is docker


def test_gateway_with_keys_reads_each_named_variable():
    gateway = {"routes": {"chat": ["10.0.0.1:8100"]},
               "backend_keys": {"chat": {"host": "n1", "variable": "vllm_api_key"}}}
    hostvars = {"n1": {"vllm_api_key": "k" * 40}}
    assert f.gateway_with_keys(gateway, hostvars) == {"routes": gateway["routes"],
                                                      "backend_keys": {"chat": "k" * 40}}
    assert gateway["backend_keys"]["chat"] == {"host": "n1", "variable": "vllm_api_key"}
    with pytest.raises(AnsibleFilterError, match="the backend key of chat: n1 has no vllm_api_key"):
        f.gateway_with_keys(gateway, {"n1": {}})
    assert f.gateway_with_keys({}, {}) == {"backend_keys": {}}
