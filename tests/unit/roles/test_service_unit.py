# Copyright: teamllm.stack contributors
# Apache License 2.0
"""_common's systemd unit template (issue 15, finding 6): an engine that listens on a private
address requires its firewall unit and starts after it, so it never runs without its rules;
one on loopback has no such dependency."""

from __future__ import annotations

from pathlib import Path

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

TEMPLATE = Path(__file__).resolve().parents[3] / "roles" / "_common" / "templates" / "service.j2"
UNIT = {"description": "llama.cpp server %i", "user": "teamllm-llama", "exec_start": "/opt/x/llama-server"}


def render(unit: dict) -> list[str]:
    templar = Templar(loader=DataLoader(), variables={
        "_common_unit": unit, "_common_unit_hardening": {}, "ansible_managed": "managed"})
    return templar.template(trust_as_template(TEMPLATE.read_text())).splitlines()


def test_an_engine_on_a_private_address_requires_and_follows_its_firewall():
    lines = render({**UNIT, "firewall": "llama_cpp"})
    unit = lines[lines.index("[Unit]"):lines.index("[Service]")]
    assert "Requires=teamllm-firewall@llama_cpp.service" in unit
    assert "After=teamllm-firewall@llama_cpp.service" in unit


def test_an_engine_on_loopback_has_no_firewall_dependency():
    for unit in (UNIT, {**UNIT, "firewall": ""}):
        assert not [line for line in render(unit) if "teamllm-firewall" in line]
