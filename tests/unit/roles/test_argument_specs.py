"""Every role documents exactly the variables its defaults define (STYLE.md habit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"


def _defaults(role: Path) -> set[str]:
    keys: set[str] = set()
    single = role / "defaults" / "main.yml"
    files = [single] if single.exists() else sorted((role / "defaults" / "main").glob("*.yml"))
    for f in files:
        keys |= set(yaml.safe_load(f.read_text()) or {})
    return keys


@pytest.mark.parametrize("role", sorted(p for p in ROLES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_argument_specs_match_defaults(role):
    spec_file = role / "meta" / "argument_specs.yml"
    assert spec_file.exists(), f"{role.name} has no meta/argument_specs.yml"
    specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
    assert "main" in specs
    documented = set(specs["main"].get("options") or {})
    assert documented == _defaults(role), (
        f"{role.name}: only in argument_specs: {sorted(documented - _defaults(role))}; "
        f"only in defaults: {sorted(_defaults(role) - documented)}"
    )
    for name, opt in (specs["main"].get("options") or {}).items():
        assert opt.get("description"), f"{role.name}: {name} has no description"
