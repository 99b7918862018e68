"""The inventory validation play, run for real through ansible-playbook on the controller.

Each bad inventory must fail the run in the validation play, with a message naming the host,
the variable and the fix, before any host is contacted (the hosts below do not exist: a play
that tried to reach them would fail with "unreachable", which the tests reject)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GOOD_KEY = "Zq4v8XkP2mW9rT6yB1nC5hJ7dF3gL0sA-_xE"
OTHER_KEY = "pL9mN2bV7cX4zQ8wE1rT6yU3iO5aS0dF-_gH"


def run_site(tmp_path: Path, group_vars: dict, host_vars: dict | None = None, groups=("gateway", "llm_nodes")):
    inventory = {"all": {"children": {g: {"hosts": {"node1": host_vars or {}}} for g in groups},
                         "vars": {"ansible_host": "192.0.2.1", "ansible_connection": "ssh"}}}
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(REPO / "site.yml")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )
    return proc.returncode, proc.stdout + proc.stderr


BASE = {
    "llm_api_clients": [{"name": "alice", "key": GOOD_KEY}],
    "gateway_routes": {"m": ["127.0.0.1:8081"]},
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"gatway_https_port": 443}, "host node1: unknown variable gatway_https_port: did you mean gateway_https_port"),
        ({"llama_cpp_instancess": []}, "host node1: unknown variable llama_cpp_instancess"),
        ({"gateway_https_port": "four-four-three"}, "host node1: gateway_https_port must be an integer"),
        ({"llm_artifact_source": "ftp"}, "llm_artifact_source is 'ftp'; choose one of upstream, mirror, controller"),
        ({"llm_cpu_inference": "yes"}, "llm_cpu_inference is the string 'yes'; write a YAML boolean"),
        ({"llm_models": [{"name": "llama-3.1-8b", "engine": "olama"}]}, "llm_models[0].engine is 'olama'"),
        ({"llm_api_clients": [{"name": "alice", "key": "short"}]}, "llm_api_clients[0] (alice): the key is 5 bytes long"),
        ({"llm_api_clients": [{"name": "alice", "key": ""}]}, "llm_api_clients[0] (alice): the key is empty"),
        ({"llm_api_clients": [{"name": "alice", "key": "CHANGE_ME_CHANGE_ME_CHANGE_ME_CHANGE_ME"}]}, "looks like a placeholder"),
        ({"llm_api_clients": [{"name": "alice", "key": GOOD_KEY}, {"name": "bob", "key": GOOD_KEY}]},
         "the same key is given to alice"),
        ({"llm_engine_allow_from": ["10.0.0.5", "0.0.0.0/0"]},
         "host node1: llm_engine_allow_from admits 0.0.0.0/0, which reaches beyond private networks"),
        ({"llm_engine_allow_from": ["::/0"]}, "set llm_engine_allow_wide: true"),
    ],
)
def test_bad_inventory_fails_before_any_host_is_touched(tmp_path, change, expected):
    rc, out = run_site(tmp_path, {**BASE, **change})
    assert rc != 0
    assert "Validate the inventory before any host is touched" in out
    assert expected in out, out[-3000:]
    assert "UNREACHABLE" not in out and "unreachable=1" not in out
    for key in (GOOD_KEY, OTHER_KEY):
        assert key not in out


def test_empty_group_fails(tmp_path):
    rc, out = run_site(tmp_path, BASE, groups=("llm_nodes",))
    assert rc != 0
    assert "inventory group gateway is missing" in out


def test_world_wide_allow_list_passes_validation_with_its_opt_in(tmp_path):
    rc, out = run_site(tmp_path, {**BASE, "llm_engine_allow_from": ["0.0.0.0/0"], "llm_engine_allow_wide": True})
    assert "problem(s); nothing was changed" not in out, out[-3000:]
    assert rc != 0 and ("UNREACHABLE" in out or "unreachable=1" in out)


def test_valid_inventory_passes_validation_then_needs_the_host(tmp_path):
    # A good inventory passes the validation play; the next play then tries to reach the host,
    # which proves validation did not stop it.
    rc, out = run_site(tmp_path, {**BASE, "gateway_https_port": 8443, "llm_cpu_inference": False})
    assert "ok: [node1 -> localhost" in out, out[-3000:]
    assert "problem(s); nothing was changed" not in out
    assert rc != 0 and ("UNREACHABLE" in out or "unreachable=1" in out)
