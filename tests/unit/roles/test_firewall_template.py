# Copyright: teamllm.stack contributors
# Apache License 2.0
"""_common's nftables table: the gateways and the monitoring hosts each get a set of their
own, an exporter's table admits the monitoring hosts only, and nft accepts what is rendered."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "roles" / "_common" / "templates" / "firewall.nft.j2"


def _render(allow, monitors, ports=(8100, 8101)):
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE.read_text()).render(
        ansible_managed="managed", _common_firewall_name="llama_cpp",
        __common_firewall_allow=allow, __common_firewall_monitors=monitors,
        __common_firewall_ports=list(ports))


def _nft_check(text, tmp_path):
    if not shutil.which("nft"):
        pytest.skip("nft is not installed here (Debian's nftables)")
    path = tmp_path / "rules.nft"
    path.write_text(text)
    done = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert done.returncode == 0, done.stderr


def test_gateways_and_monitors_are_admitted_by_sets_of_their_own(tmp_path):
    text = _render({"ipv4": ["10.0.0.2"], "ipv6": []}, {"ipv4": ["10.0.0.9"], "ipv6": ["fd00::9"]})
    assert "tcp dport { 8100, 8101 } ip saddr @gateways_ipv4 accept" in text
    assert "tcp dport { 8100, 8101 } ip saddr @monitors_ipv4 accept" in text
    assert "tcp dport { 8100, 8101 } ip6 saddr @monitors_ipv6 accept" in text
    assert "elements = { 10.0.0.9 }" in text and "gateways_ipv6" not in text
    # everyone else: a reset, after the accepts
    assert text.index("@monitors_ipv6 accept") < text.index("counter reject with tcp reset")
    _nft_check(text, tmp_path)


def test_without_monitoring_hosts_the_table_is_the_gateways_alone(tmp_path):
    text = _render({"ipv4": ["10.0.0.2"], "ipv6": []}, {"ipv4": [], "ipv6": []})
    assert "monitors" not in text
    _nft_check(text, tmp_path)


def test_an_exporter_table_admits_the_monitoring_hosts_only(tmp_path):
    text = _render({"ipv4": [], "ipv6": []}, {"ipv4": ["10.0.0.9"], "ipv6": []}, ports=(9100,))
    assert "gateways" not in text
    assert "tcp dport { 9100 } ip saddr @monitors_ipv4 accept" in text
    _nft_check(text, tmp_path)
