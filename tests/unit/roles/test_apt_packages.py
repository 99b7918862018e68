"""roles/_common/vars/apt_packages.yml lists every Debian package the roles install.

The test reads each role's tasks for ansible.builtin.apt / ansible.builtin.package ``name:``,
follows a ``{{ variable }}`` to the role's vars and defaults (and the ``*package(s)`` variables
named inside it), and fails naming the role and the package the mapping lacks: the offline bundle's apt
repository (playbooks/mirror.yml) is built from that mapping, so a package added to a role
and not to the mapping would be missing on an air-gapped node."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MAPPING = yaml.safe_load((ROOT / "roles/_common/vars/apt_packages.yml").read_text())["_common_role_apt_packages"]
MODULES = ("ansible.builtin.apt", "ansible.builtin.package", "apt", "package")
# Names the roles build from facts or versions, and the mapping's item that stands for them.
BUILT_NAMES = {"cuda-toolkit-": "cuda-toolkit", "linux-headers-": "linux-headers-amd64",
               "nvidia-headless-": None, "nvidia-utils-": None, "nvidia-driver-": None}
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")


def tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            yield from tasks(node.get(key))


def role_variables(role):
    found = {}
    for sub in ("defaults", "vars"):
        for path in sorted((ROOT / "roles" / role / sub).glob("*.yml")):
            found.update(yaml.safe_load(path.read_text()) or {})
    return found


def names_in(value, variables, seen=()):
    """Package names a task's ``name:`` value stands for."""
    if isinstance(value, list):
        for item in value:
            yield from names_in(item, variables, seen)
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from names_in(item, variables, seen)
        return
    text = str(value)
    if "{{" not in text:
        yield text.split("=", 1)[0]
        return
    literal = text.split("{{", 1)[0].split("=", 1)[0]
    if literal and PACKAGE.match(literal):
        yield literal
    # quoted names, not those compared (== 'x') or indexing (['x'])
    for quoted in re.findall(r"(?<![=\[] )(?<![=\[])'([a-z0-9][a-z0-9.+-]*)'", text):
        yield quoted
    for ident in re.findall(r"\b([a-z_][a-z0-9_]*)\b", text):
        if ident in variables and ident.endswith(("package", "packages")) and ident not in seen:
            yield from names_in(variables[ident], variables, (*seen, ident))


def mapped(role):
    return {item if isinstance(item, str) else item["name"] for item in MAPPING.get(role) or []}


def installed(role):
    variables = role_variables(role)
    for path in sorted((ROOT / "roles" / role / "tasks").glob("*.yml")):
        for task in tasks(yaml.safe_load(path.read_text())):
            for module in MODULES:
                args = task.get(module)
                if isinstance(args, dict) and args.get("name"):
                    for name in names_in(args["name"], variables):
                        yield path.name, name


ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())


@pytest.mark.parametrize("role", ROLES)
def test_every_package_a_role_installs_is_in_the_mapping(role):
    missing = []
    for task_file, name in installed(role):
        if not PACKAGE.match(name) and not name.endswith("-"):
            continue
        stand_in = next((v for k, v in BUILT_NAMES.items() if name.startswith(k)), name)
        if name.endswith("-") and name not in BUILT_NAMES:
            continue
        if stand_in is None:  # Ubuntu-only names: the bundle's apt repository is Debian's
            continue
        if stand_in not in mapped(role):
            missing.append(f"roles/{role}/tasks/{task_file} installs {name}")
    assert not missing, (f"add to _common_role_apt_packages.{role} in roles/_common/vars/apt_packages.yml: "
                         + "; ".join(missing))


def test_mapping_names_only_roles_that_exist():
    assert set(MAPPING) <= set(ROLES)
    assert set(ROLES) - {"upgrade"} <= set(MAPPING) | {"gateway"}


def test_the_check_sees_a_package_missing_from_the_mapping(monkeypatch):
    """The check can fail: take nginx out of the mapping and the gateway's test fails."""
    monkeypatch.setitem(MAPPING, "gateway", [p for p in MAPPING["gateway"] if p != "nginx"])
    with pytest.raises(AssertionError, match="installs nginx"):
        test_every_package_a_role_installs_is_in_the_mapping("gateway")
