"""playbooks/plan.yml on the sample inventory (inventories/team), run for real through
ansible-playbook on the controller: its GPUs are declared and its hosts are TEST-NET
addresses, so the plan must be made without contacting any host. The routes the report states
must be the routes placement.yml (the second play of site.yml) publishes to the gateway."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TEAM = REPO / "inventories" / "team"


def _run(args, tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run(["ansible-playbook", "-i", str(TEAM), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert "UNREACHABLE" not in out and "unreachable=1" not in out, out[-3000:]
    return proc.returncode, out


def test_team_plan_report_and_the_gateways_routes_agree(tmp_path):
    report = tmp_path / "report"
    rc, out = _run([str(REPO / "playbooks" / "plan.yml"), "-e", f"plan_report_dir={report}"], tmp_path)
    assert rc == 0, out[-3000:]
    plan = json.loads((report / "placement.json").read_text())
    models = yaml.safe_load((TEAM / "group_vars" / "all" / "models.yml").read_text())["llm_models"]
    # every model and replica of the team is placed; the report names each instance
    assert plan["unplaced"] == []
    placed = [i for host in plan["placement"].values() for i in host["instances"]]
    assert sorted(i["name"] for i in placed) == sorted(
        m.get("alias", m["name"]) for m in models for _ in range(m.get("replicas", 1)))
    text = (report / "placement.md").read_text()
    for inst in placed:
        assert f"| {inst['id']} |" in text
    assert (report / "placement.svg").read_text().startswith("<svg")
    # the table per node and GPU was printed
    assert re.search(r"gpu3\s+GPU 0\s+NVIDIA RTX A6000", out), out[-3000:]

    show = tmp_path / "show.yml"
    show.write_text(
        f"- ansible.builtin.import_playbook: {REPO / 'playbooks' / 'placement.yml'}\n"
        "- name: Write the gateway's routes\n  hosts: gateway\n  gather_facts: false\n  tasks:\n"
        "    - name: Write them on the controller\n      ansible.builtin.copy:\n"
        "        content: \"{{ teamllm_gateway.routes | to_json }}\"\n"
        f"        dest: {tmp_path / 'routes.json'}\n        mode: '0600'\n"
        "      delegate_to: localhost\n")
    rc, out = _run([str(show)], tmp_path)
    assert rc == 0, out[-3000:]
    published = json.loads((tmp_path / "routes.json").read_text())
    assert published == plan["gateways"]["gw1"]["routes"]
    for name, targets in published.items():
        assert f"| {name} | {', '.join(targets)} |" in text
