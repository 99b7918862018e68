"""Task files of `_common` run for real on the controller (connection local).

- SECURITY.md row 6: port_free.yml (community.general's listen_ports_facts) against a port a
  process of this test holds. A port taken by another program fails the run naming that program
  and its pid; the service itself holding its port (a second run) passes.
- Issue 15, finding 6: firewall.yml refuses a world-wide allow list before it installs or
  writes anything, unless the inventory opts in with llm_engine_allow_wide."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def holder():
    """A process listening on a free TCP port of 127.0.0.1: (pid, its command name, port)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import socket, time\n"
         "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
         "print(s.getsockname()[1], flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    name = Path(f"/proc/{proc.pid}/comm").read_text().strip()
    yield proc.pid, name, port
    proc.kill()
    proc.wait()


def run_tasks(tmp_path: Path, tasks_from: str, variables: dict):
    play = [{
        "name": f"{tasks_from} on the controller",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [{
            "name": f"Run {tasks_from}",
            "ansible.builtin.include_role": {"name": "teamllm.stack._common", "tasks_from": tasks_from},
            "vars": variables,
        }],
    }]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = subprocess.run(["ansible-playbook", str(tmp_path / "play.yml")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_taken_port_names_its_holder(tmp_path, holder):
    pid, name, port = holder
    rc, out = run_tasks(tmp_path, "port_free.yml", {"_common_port": port, "_common_port_owner": "llama-server"})
    assert rc != 0
    assert f"TCP port {port} is already taken by {name} pid {pid}. Stop that process" in out, out[-3000:]


def test_the_service_itself_may_hold_its_port(tmp_path, holder):
    _pid, name, port = holder
    rc, out = run_tasks(tmp_path, "port_free.yml", {"_common_port": port, "_common_port_owner": name})
    assert rc == 0, out[-3000:]


@pytest.mark.parametrize("allow", [["0.0.0.0/0"], ["10.0.0.5", "::/0"]])
def test_firewall_refuses_a_world_wide_allow_list_before_anything(tmp_path, allow):
    rc, out = run_tasks(tmp_path, "firewall.yml", {
        "_common_firewall_name": "llama_cpp", "_common_firewall_ports": [8100],
        "_common_firewall_allow": allow})
    assert rc != 0
    assert "Refuse a world-wide allow list unless the inventory opts in, llama_cpp" in out, out[-3000:]
    assert f"localhost: llm_engine_allow_from admits {allow[-1]}, which reaches beyond" in out
    assert "Install nftables" not in out
