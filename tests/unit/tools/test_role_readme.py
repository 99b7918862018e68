"""Every role ships a README (Galaxy's importer refuses a role without one), written by
tools/role_readme.py from the role's specs: a README that differs from what the tool writes now
is stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _tool():
    spec = importlib.util.spec_from_file_location("role_readme", REPO / "tools" / "role_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TOOL = _tool()


@pytest.mark.parametrize("role", TOOL.roles(), ids=lambda p: p.name)
def test_readme_is_written_from_the_specs(role):
    readme = role / "README.md"
    assert readme.exists(), f"{role.name} has no README.md: run python tools/role_readme.py"
    assert readme.read_text() == TOOL.render(role), (
        f"roles/{role.name}/README.md is stale: run python tools/role_readme.py")


def test_every_role_has_specs():
    assert [p.name for p in TOOL.roles()] == sorted(
        p.name for p in (REPO / "roles").iterdir() if p.is_dir())


@pytest.mark.parametrize(("text", "expected"), [
    ("C(a) and I(b) and B(c)", "`a` and *b* and **c**"),
    ("O(x=1) V(y) E(Z) M(teamllm.stack.gpu_facts)", "`x=1` `y` `Z` `teamllm.stack.gpu_facts`"),
    ("R(the role, teamllm.stack.vllm) L(docs, https://x.invalid) U(https://y.invalid)",
     "the role [docs](https://x.invalid) <https://y.invalid>"),
    (["two", "  lines"], "two lines"),
])
def test_markup(text, expected):
    assert TOOL.markdown(text) == expected


def test_a_pipe_in_a_default_stays_in_its_cell(tmp_path):
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "main.yml").write_text("galaxy_info: {description: Demo, license: Apache-2.0}\n")
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: Demo\n    options:\n"
        "      demo_x: {description: X, type: str, default: 'a | b'}\n")
    rows = [line for line in TOOL.render(role).splitlines() if line.startswith("| `demo_x`")]
    assert rows == ["| `demo_x` | str | `a \\| b` | X |"]
