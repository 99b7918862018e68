"""Every filter has its own documentation page: a plugins/filter/<name>.yml whose name is the
filter's, so ``ansible-doc -t filter teamllm.stack.<name>`` shows that filter and no other.
The .py files hold code only."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[4]
FILTER_DIR = REPO / "plugins" / "filter"
PACKAGE = "ansible_collections.teamllm.stack.plugins.filter"


def _filters() -> dict[str, str]:
    """{filter name: the .py file that provides it}"""
    found = {}
    for path in sorted(FILTER_DIR.glob("*.py")):
        module = importlib.import_module(f"{PACKAGE}.{path.stem}")
        for name in module.FilterModule().filters():
            assert name not in found, f"{name} is provided by {found.get(name)} and {path.name}"
            found[name] = path.name
    return found


FILTERS = _filters()


def _doc(name: str) -> dict:
    path = FILTER_DIR / f"{name}.yml"
    assert path.exists(), f"filter {name} ({FILTERS[name]}) has no plugins/filter/{name}.yml"
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_has_its_own_doc(name):
    doc = _doc(name)
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"].get("short_description")
    assert "_input" in doc["DOCUMENTATION"].get("options", {})
    assert f"teamllm.stack.{name}" in doc.get("EXAMPLES", ""), f"{name}: the example does not use it"
    assert "_value" in doc.get("RETURN", {})


def test_every_doc_is_a_filter():
    docs = {p.stem for p in FILTER_DIR.glob("*.yml")}
    assert docs == set(FILTERS), f"docs without a filter: {sorted(docs - set(FILTERS))}"


@pytest.mark.parametrize("path", sorted(FILTER_DIR.glob("*.py")), ids=lambda p: p.name)
def test_code_files_hold_no_documentation(path):
    text = path.read_text()
    for var in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
        assert f"\n{var} = " not in text, f"{path.name} still holds {var}: move it to <filter>.yml"


def test_ansible_doc_shows_each_filter_its_own_page():
    ansible_doc = Path(sys.executable).parent / "ansible-doc"  # the venv's, beside its python
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"))
    out = subprocess.run(
        [str(ansible_doc), "-t", "filter", "--json", *(f"teamllm.stack.{n}" for n in sorted(FILTERS))],
        capture_output=True, text=True, check=True, cwd=REPO, env=env,
    )
    pages = json.loads(out.stdout)
    shown = {fqcn: page["doc"]["name"] for fqcn, page in pages.items()}
    assert shown == {f"teamllm.stack.{n}": n for n in FILTERS}
