# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The grafana role without Grafana (it cannot be installed here): the dashboards are what
tools/make_dashboards.py writes, every panel queries the provisioned datasource with valid
PromQL (promtool parses each query as a recording rule), the GPU dashboard and the GPU alerts
use only metric names a real GPU's exporter output contains (tests/gpu/results/exporter-*), and
Grafana's apt repository renders from the download manifest. molecule/monitoring runs every
query against a real Prometheus."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = ROOT / "roles" / "grafana" / "files" / "dashboards"
RULES = ROOT / "roles" / "prometheus" / "files" / "teamllm.rules.yml"
RESULTS = ROOT / "tests" / "gpu" / "results"
SPEC = importlib.util.spec_from_file_location("make_dashboards", ROOT / "tools" / "make_dashboards.py")
make_dashboards = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(make_dashboards)
# PromQL words that are not metric names
PROMQL = {"sum", "by", "rate", "increase", "histogram_quantile", "avg", "min", "max", "or", "and",
          "unless", "time", "vector", "topk", "count", "offset", "le", "without", "on", "ignoring",
          "count_over_time", "min_over_time", "humanizePercentage", "bool"}
GPU_PREFIXES = ("gpu_", "process_", "teamllm_gpu_", "teamllm_instance_gpu_", "nvitop_")


def _dashboards():
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _exprs(dashboard):
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def _metric_names(expr):
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL and not re.fullmatch(r"\d.*|e\d+", n)} - \
        set(re.findall(r"by \(([^)]*)\)", expr))


def test_the_dashboards_are_what_the_generator_writes():
    assert {name: json.dumps(d, indent=2, sort_keys=True) + "\n" for name, d in _dashboards().items()} == \
        make_dashboards.render()
    assert set(_dashboards()) == {f"{uid}.json" for uid in (
        "teamllm-overview", "teamllm-gateway", "teamllm-engines", "teamllm-gpus", "teamllm-nodes")}


def test_every_panel_queries_the_provisioned_datasource_and_has_a_unique_place():
    datasource = yaml.safe_load((ROOT / "roles" / "grafana" / "vars" / "main.yml").read_text())[
        "_grafana_datasources"]["datasources"][0]["uid"]
    for name, dashboard in _dashboards().items():
        places = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dashboard["panels"]]
        assert len(places) == len(set(places)), name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == datasource
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            assert {t["datasource"]["uid"] for t in panel["targets"]} == {datasource}


def test_every_query_is_valid_promql(tmp_path):
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (tests/run.sh unit installs Debian's prometheus)")
    exprs = [e for d in _dashboards().values() for e in _exprs(d)]
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel:query{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(exprs)} rules found" in done.stdout


def _recorded_names():
    files = sorted(RESULTS.glob("exporter-*/metrics-*.txt"))
    if not files:
        pytest.skip("no recorded GPU exporter output yet: tests/gpu/exporter_check.sh on a real GPU "
                    "writes it (tests/gpu/results/exporter-<date>/metrics-*.txt)")
    names = set()
    for f in files:
        for line in f.read_text().splitlines():
            if line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def _gpu_names(exprs):
    names = set()
    for e in exprs:
        names |= {n for n in _metric_names(e) if n.startswith(GPU_PREFIXES)}
    # a histogram or counter is exposed with its suffixes
    return names


def test_the_gpu_dashboard_and_alerts_use_only_metric_names_a_real_gpu_exports():
    recorded = _recorded_names()
    exprs = _exprs(_dashboards()["teamllm-gpus.json"])
    exprs += [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    used = _gpu_names(exprs)
    assert used, "no GPU metric found in the dashboards and rules"
    # the ECC and row-remap series exist only on GPUs that have them, Xid errors only once one
    # happened: the recorded GPU must show the rest, and their families (HELP lines) all
    conditional = {"teamllm_gpu_xid_errors_total", "teamllm_gpu_ecc_errors_total",
                   "teamllm_gpu_row_remap_failure", "teamllm_gpu_row_remap_pending"}
    helps = set()
    for f in sorted(RESULTS.glob("exporter-*/metrics-*.txt")):
        helps |= set(re.findall(r"^# HELP (\S+)", f.read_text(), flags=re.M))
    missing = {n for n in used - recorded if not (n in conditional and (n in helps or n.removesuffix("_total") in helps))}
    assert missing == set(), f"names the recorded GPU output does not contain: {sorted(missing)}"


def test_metric_names_are_found_in_queries():
    assert _metric_names('sum by (host) (rate(gpu_temperature_C{uuid="GPU-a"}[5m])) / 1e6') == {"gpu_temperature_C"}
    assert _metric_names("llamacpp:requests_deferred or vllm:num_requests_waiting") == {
        "llamacpp:requests_deferred", "vllm:num_requests_waiting"}


def test_grafanas_repository_renders_from_the_manifest():
    downloads = yaml.safe_load((ROOT / "roles" / "_common" / "defaults" / "main" / "downloads.yml").read_text())
    entry = downloads["llm_downloads_collection"]["grafana_apt"]
    key = downloads["llm_downloads_collection"][entry["key"]]
    assert entry["url"] == "https://apt.grafana.com" and entry["suites"] == ["stable"]
    assert entry["components"] == ["main"] and entry["layout"] == ""
    assert re.fullmatch(r"[0-9A-F]{40}", key["version"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"])
    # the role installs exactly the manifest's version
    defaults = yaml.safe_load((ROOT / "roles" / "grafana" / "defaults" / "main.yml").read_text())
    assert "llm_downloads['grafana_apt'].version" in defaults["grafana_version"]
