# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Action: validate the inventory of the whole play once, on the controller, before any host is
touched. The checks live in module_utils/_inventory.py; the variables this collection knows
are read from its roles' meta/argument_specs.yml, so documentation and validation agree."""

from __future__ import annotations

import glob
import os

import yaml
from ansible.plugins.action import ActionBase

from ansible_collections.teamllm.stack.plugins.module_utils._inventory import (
    validate_groups,
    validate_host,
)

_ROLES = os.path.join(os.path.dirname(__file__), "..", "..", "roles")


def known_variables(roles_dir: str = _ROLES) -> tuple[dict, tuple[str, ...]]:
    """{variable: spec} from every role's argument specs, and the variable prefixes."""
    known: dict = {}
    prefixes = {"llm_"}
    for path in sorted(glob.glob(os.path.join(roles_dir, "*", "meta", "argument_specs.yml"))):
        role = os.path.basename(os.path.dirname(os.path.dirname(path)))
        if not role.startswith("_"):
            prefixes.add(role + "_")
        with open(path, encoding="utf-8") as f:
            specs = (yaml.safe_load(f) or {}).get("argument_specs", {})
        for entry in specs.values():
            for name, spec in (entry.get("options") or {}).items():
                if not name.startswith("_"):
                    known.setdefault(name, spec)
    return known, tuple(sorted(prefixes))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("required_groups", "hosts"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        known, prefixes = known_variables()
        hostvars = task_vars["hostvars"]
        hosts = args.get("hosts") or task_vars.get("ansible_play_hosts_all", [])
        errors = validate_groups(task_vars.get("groups", {}), args.get("required_groups", []))
        for host in sorted(hosts):
            errors += validate_host(host, self._host_vars(hostvars, host, known), known, prefixes)
        result["changed"] = False
        result["checked_hosts"] = len(hosts)
        result["known_variables"] = len(known)
        if errors:
            result["failed"] = True
            result["errors"] = errors
            result["msg"] = (
                f"The inventory has {len(errors)} problem(s); nothing was changed:\n- "
                + "\n- ".join(errors)
            )
        else:
            result["msg"] = f"inventory valid: {len(hosts)} host(s), {len(known)} known variables"
        return result

    @staticmethod
    def _host_vars(hostvars, host: str, known: dict) -> dict:
        """The host's variables as the inventory wrote them; the collection's own variables
        rendered (so a key read from a vault or a file is checked as it will be used)."""
        raw = hostvars.raw_get(host) if hasattr(hostvars, "raw_get") else hostvars[host]
        values = dict(raw)
        rendered = hostvars[host]
        for var in values:
            if var in known:
                try:
                    values[var] = rendered[var]
                except Exception:  # noqa: BLE001,S110 - an unrenderable value is checked raw
                    pass
        return values
