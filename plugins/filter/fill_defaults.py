# Copyright: teamllm.stack contributors
# Apache License 2.0
"""fill_defaults: give every dict of a list the keys it leaves out, from a dict of defaults.
Each filter is documented in the .yml file of its name beside this one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def fill_defaults(items, defaults):
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise AnsibleFilterError("fill_defaults expects a list of dicts")
    return [{**defaults, **item} for item in items]


class FilterModule:
    def filters(self):
        return {"fill_defaults": fill_defaults}
