# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Playbook helpers over the engine registry (module_utils/_engines): which engines a host
runs, whether they need Docker, and the gateway's part of the deployment plan with its backend
keys read from the inventory. Each filter is documented in the .yml file of its name beside
this one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _engines


def engines_here(host_vars):
    """Names of the engines with instances on a host - in its published ``teamllm_engines`` or
    in ``<engine>_instances`` of its inventory - in the registry's order."""
    published = host_vars.get("teamllm_engines") or {}
    return [name for name in _engines.NAMES
            if published.get(name) or host_vars.get(f"{name}_instances")]


def engines_need_docker(host_vars):
    """Whether an engine of the host runs in containers: always (LocalAI) or by its install
    method (vLLM with ``vllm_install_method: container``)."""
    for name in engines_here(host_vars):
        engine = _engines.ENGINES[name]
        if engine.container == "always" or (
                engine.container == "option" and host_vars.get(f"{name}_install_method") == "container"):
            return True
    return False


def gateway_with_keys(gateway, hostvars):
    """``teamllm_gateway`` of ``model_placement``'s plan ({routes, backend_keys: {served name:
    {host, variable}}}) with each backend key's value read from that host's variable."""
    gateway = dict(gateway or {})
    keys = {}
    for name, ref in sorted((gateway.get("backend_keys") or {}).items()):
        host, variable = ref.get("host"), ref.get("variable")
        if host not in hostvars or not hostvars[host].get(variable):
            raise AnsibleFilterError(f"the backend key of {name}: {host} has no {variable}")
        keys[name] = str(hostvars[host][variable])
    gateway["backend_keys"] = keys
    return gateway


class FilterModule:
    def filters(self):
        return {"engines_here": engines_here, "engines_need_docker": engines_need_docker,
                "gateway_with_keys": gateway_with_keys}
