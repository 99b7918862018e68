# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The alert rules (roles/prometheus/files/teamllm.rules.yml): promtool accepts them, every
alert has a promtool test case where it fires and one where it does not, the tests pass, and
every alert's runbook is a section of docs/monitoring.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "roles" / "prometheus" / "files" / "teamllm.rules.yml"
TESTS = Path(__file__).resolve().parent / "teamllm.rules.test.yml"
DOCS = ROOT / "docs" / "monitoring.md"


def _alerts():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _promtool(*args):
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (tests/run.sh unit installs Debian's prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=300, cwd=TESTS.parent)


def test_promtool_accepts_the_rules():
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_silent_case():
    cases = {}
    for test in yaml.safe_load(TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test") or []:
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names))
    missing = {n: sorted({"fires", "silent"} - {("fires" if f else "silent") for f in cases.get(n, ())})
               for n in names}
    assert {n: m for n, m in missing.items() if m} == {}
    assert set(cases) <= set(names), f"cases for unknown alerts: {set(cases) - set(names)}"


def test_the_promtool_cases_pass():
    done = _promtool("test", "rules", TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section():
    anchors = set()
    if DOCS.exists():
        anchors = {re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-"))
                   for h in re.findall(r"^#+ (.+)$", DOCS.read_text(), flags=re.M)}
    for alert in _alerts():
        assert alert["labels"]["severity"] in ("info", "warning", "critical"), alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        runbook = alert["annotations"]["runbook"]
        assert runbook.startswith("docs/monitoring.md#"), alert["alert"]
        assert runbook.split("#", 1)[1] in anchors, f"{alert['alert']}: no section {runbook} in docs/monitoring.md"
