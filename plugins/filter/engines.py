# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The gateway's part of the deployment plan, with its backend keys read from the inventory;
documented in gateway_with_keys.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


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
        return {"gateway_with_keys": gateway_with_keys}
