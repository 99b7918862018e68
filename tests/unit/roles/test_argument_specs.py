"""Every role documents exactly the variables its defaults define, with the same defaults
(STYLE.md habit 2).

A default that is a template (``{{ ... }}``) is not a literal value: ansible-doc and
antsibull-docs (``lint-collection-docs``) want the ``default`` of an option to be the value
itself. Such an option leaves ``default`` out and says in its description what it defaults to
("Default - ..."); so may an option whose literal default is too large to repeat (the download
manifest). Every other option's ``default`` equals the value in ``defaults/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
MISSING = object()


def _defaults(role: Path) -> dict:
    values: dict = {}
    single = role / "defaults" / "main.yml"
    files = [single] if single.exists() else sorted((role / "defaults" / "main").glob("*.yml"))
    for f in files:
        values.update(yaml.safe_load(f.read_text()) or {})
    return values


def _specs(role: Path) -> dict:
    spec_file = role / "meta" / "argument_specs.yml"
    assert spec_file.exists(), f"{role.name} has no meta/argument_specs.yml"
    return yaml.safe_load(spec_file.read_text())["argument_specs"]


def _text(description) -> str:
    return " ".join(description) if isinstance(description, list) else str(description or "")


def _is_template(value) -> bool:
    return isinstance(value, str) and "{{" in value


ROLE_DIRS = sorted(p for p in ROLES.iterdir() if p.is_dir())


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role):
    specs = _specs(role)
    assert "main" in specs
    documented = set(specs["main"].get("options") or {})
    defaults = set(_defaults(role))
    assert documented == defaults, (
        f"{role.name}: only in argument_specs: {sorted(documented - defaults)}; "
        f"only in defaults: {sorted(defaults - documented)}"
    )
    for name, opt in (specs["main"].get("options") or {}).items():
        assert opt.get("description"), f"{role.name}: {name} has no description"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_spec_defaults_are_the_literal_defaults(role):
    values = _defaults(role)
    problems = []
    for name, opt in (_specs(role)["main"].get("options") or {}).items():
        value, spec_default = values.get(name), opt.get("default", MISSING)
        said = re.search(r"\bdefaults?\b", _text(opt.get("description")), re.IGNORECASE)
        if _is_template(value) and spec_default is not MISSING:
            problems.append(f"{name}: defaults to a template; leave `default` out of the spec "
                            f"and say in its description what it defaults to")
        elif spec_default is MISSING and value is not None and not said:
            problems.append(f"{name}: the spec has no `default` and its description does not "
                            f"say what it defaults to")
        elif spec_default is not MISSING and spec_default != value:
            problems.append(f"{name}: spec default {spec_default!r:.80} != defaults/ {value!r:.80}")
    assert not problems, f"{role.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_every_entry_point_is_described(role):
    for entry, spec in _specs(role).items():
        assert spec.get("short_description") and spec.get("description"), (
            f"{role.name}: entry point {entry} needs short_description and description")
        for name, opt in (spec.get("options") or {}).items():
            assert not _is_template(opt.get("default")), (
                f"{role.name}: {entry}: {name} has a template default")
