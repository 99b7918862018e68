# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Action: validate the inventory of the whole play once, on the controller, before any host is
touched. The checks live in module_utils/_inventory.py; the variables this collection knows
are read from its roles' meta/argument_specs.yml, so documentation and validation agree, and
the collection's download manifest from _common's defaults. Nothing secret is returned: the
messages never quote a key, a password or a URL that could hold credentials."""

from __future__ import annotations

import glob
import os

import yaml
from ansible.plugins.action import ActionBase

from ansible_collections.teamllm.stack.plugins.module_utils._inventory import (
    host_problems,
    merge_hosts,
    validate_groups,
)

_ROLES = os.path.join(os.path.dirname(__file__), "..", "..", "roles")
_MANIFEST = os.path.join(_ROLES, "_common", "defaults", "main", "downloads.yml")
_YAML_NAMES = (".yml", ".yaml", ".json", "")
_MAX_BYTES = 5 * 1024 * 1024
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def collection_downloads(path: str = _MANIFEST) -> dict:
    """The collection's own manifest entries (llm_downloads_collection)."""
    with open(path, encoding="utf-8") as f:
        return (yaml.safe_load(f) or {}).get("llm_downloads_collection") or {}


def inventory_files(sources, playbook_dir: str | None = None) -> list[str]:
    """The YAML files an inventory is read from: each source (a file, or a directory read
    recursively) and the group_vars/host_vars beside it and beside the playbook."""
    files, dirs = [], []
    for source in sources or []:
        source = str(source)
        if os.path.isdir(source):
            dirs.append(source)
        elif os.path.isfile(source):
            files.append(source)
            dirs += [os.path.join(os.path.dirname(source), d) for d in ("group_vars", "host_vars")]
    if playbook_dir:
        dirs += [os.path.join(playbook_dir, d) for d in ("group_vars", "host_vars")]
    for top in dirs:
        for root, _subdirs, names in os.walk(top):
            files += [os.path.join(root, n) for n in sorted(names)
                      if os.path.splitext(n)[1] in _YAML_NAMES and not n.startswith(".")]
    return sorted(set(os.path.realpath(f) for f in files))


def duplicate_keys(text: str) -> list[tuple[int, str]]:
    """(line, key) of each key given twice in one mapping of the YAML ``text``. The document is
    composed, not constructed: no value is read, and tags such as !vault need no constructor.
    Text that is not YAML gives [] (Ansible reports it itself)."""
    try:
        documents = list(yaml.compose_all(text, Loader=_SafeLoader))
    except yaml.YAMLError:
        return []
    found: list[tuple[int, str]] = []
    stack = [d for d in documents if d is not None]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in seen:
                        found.append((key.start_mark.line + 1, key.value))
                    seen.add(key.value)
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return sorted(found)


def duplicate_key_problems(paths) -> list[str]:
    """A line per key given twice in one mapping of an inventory file (YAML keeps the last one
    silently, and Ansible's own warning prints the lines around it: a key's value with them).
    Vault-encrypted files are skipped: Ansible never shows their lines."""
    problems = []
    for path in paths:
        try:
            if os.path.getsize(path) > _MAX_BYTES:
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        if text.startswith("$ANSIBLE_VAULT"):
            continue
        for line, key in duplicate_keys(text):
            problems.append(f"{path} line {line}: the key {key[:60]!r} is given twice in one "
                            "mapping (YAML keeps only the last one): remove one of them")
    return problems


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("required_groups", "hosts"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        known, prefixes = known_variables()
        manifest = collection_downloads()
        hostvars = task_vars["hostvars"]
        groups = task_vars.get("groups", {})
        hosts = args.get("hosts") or task_vars.get("ansible_play_hosts_all", [])
        required = args.get("required_groups") or []
        problems = []
        for host in sorted(hosts):
            host_groups = tuple(g for g, members in groups.items() if host in (members or []))
            for problem in host_problems(self._host_vars(hostvars, host, known), known, prefixes,
                                         groups=host_groups, collection_downloads=manifest,
                                         all_hosts=groups.get("all") or hosts):
                problems.append((host, problem))
        errors = validate_groups(groups, required) + merge_hosts(problems, hosts)
        errors += duplicate_key_problems(inventory_files(
            task_vars.get("ansible_inventory_sources"), task_vars.get("playbook_dir")))
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
