"""Unit tests for plugins/module_utils/_plan_report.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _placement
from ansible_collections.teamllm.stack.plugins.module_utils import _plan_report as R
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    Fake,
    gpus,
)

GIB = R.GIB
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def plan():
    models = [
        {"name": "m32", "alias": "chat <&> model", "quantizations": ["Q8_0"]},
        {"name": "big", "engine": "vllm", "quantizations": ["AWQ"]},
        {"name": "huge", "engine": "vllm", "quantizations": ["BF16"]},  # does not fit
    ]
    hosts = {"n1": {"gpus": gpus(24, 24)}, "n2": {"gpus": gpus(12)}}
    return _placement.plan(models, hosts, estimator=Fake(), reserve_gib=1, allow_partial=True)


def test_table_has_a_row_per_device_with_its_instances(plan):
    lines = R.table(plan)
    assert lines[0].split()[:3] == ["host", "device", "name"]
    rows = lines[2:]
    assert len(rows) == 3
    assert [r.split()[0:3] for r in rows] == [["n1", "GPU", "0"], ["n1", "GPU", "1"],
                                              ["n2", "GPU", "0"]]
    text = "\n".join(lines)
    for _host, spec in plan["placement"].items():
        for inst in spec["instances"]:
            assert inst["id"] in text


def test_svg_is_valid_and_draws_each_instance_to_scale(plan):
    doc = ET.fromstring(R.svg(plan, width=900))
    assert doc.tag == f"{SVG}svg"
    titles = [t.text for t in doc.iter(f"{SVG}title")]
    assert any("chat <&> model" in (t or "") for t in titles)  # escaped in the file, parsed back
    bars = [r for r in doc.iter(f"{SVG}rect") if r.get("class") == "free"]
    assert len(bars) == 3
    scale = (900 - 270) / (24 * GIB)
    assert float(bars[0].get("width")) == pytest.approx(24 * GIB * scale, abs=0.1)
    assert float(bars[2].get("width")) == pytest.approx(12 * GIB * scale, abs=0.1)
    segments = [r for r in doc.iter(f"{SVG}rect") if r.get("class") == "inst"]
    expected = sum(len(i["gpus"]) for s in plan["placement"].values() for i in s["instances"])
    assert len(segments) == expected
    m32 = next(i for s in plan["placement"].values() for i in s["instances"] if i["model"] == "m32")
    seg = next(r for r in segments if r.find(f"{SVG}title").text.startswith(m32["id"]))
    assert float(seg.get("width")) == pytest.approx(m32["bytes_per_gpu"][0] * scale, abs=0.1)
    reserved = [r for r in doc.iter(f"{SVG}rect") if r.get("class") == "reserved"]
    assert len(reserved) == 3


def test_same_model_same_colour_different_models_differ():
    plan = _placement.plan(
        [{"name": "m32", "quantizations": ["Q4_K_M"], "replicas": 2},
         {"name": "ctx", "quantizations": ["Q4_K_M"]}],
        {"a": {"gpus": gpus(24)}, "b": {"gpus": gpus(24)}}, estimator=Fake(), policy="spread")
    doc = ET.fromstring(R.svg(plan))
    fills = {}
    for rect in doc.iter(f"{SVG}rect"):
        if rect.get("class") == "inst":
            name = rect.find(f"{SVG}title").text.split(": ")[1].split(",")[0]
            fills.setdefault(name, set()).add(rect.get("fill"))
    assert all(len(f) == 1 for f in fills.values())
    assert fills["m32"] != fills["ctx"]


def test_costs_arithmetic():
    plan = {"placement": {"h": {"instances": [{"id": "a"}, {"id": "b"}], "devices": [
        {"kind": "gpu", "instances": ["a", "b"]}, {"kind": "gpu", "instances": []}]}}}
    cost = R.costs(plan, {"gpu_watts": 200, "idle_gpu_watts": 10, "host_watts": 90,
                          "hours_per_month": 700, "electricity_per_kwh": 0.5,
                          "hardware_per_gpu": 1000, "hardware_per_host": 600,
                          "amortisation_months": 26, "tokens_per_second_per_instance": 50,
                          "busy_fraction": 0.5, "api_price_per_million_tokens": 1.5})
    assert cost["watts"] == 300  # 90 + 200 + 10
    assert cost["kwh_per_month"] == 210
    assert cost["energy_per_month"] == 105
    assert cost["hardware_per_month"] == 100  # (2 x 1000 + 600) / 26
    assert cost["total_per_month"] == 205
    assert cost["tokens_per_month"] == 2 * 50 * 3600 * 700 * 0.5  # 126 000 000
    assert cost["cost_per_million_tokens"] == pytest.approx(205 / 126, abs=1e-4)
    assert cost["api_per_month"] == 189
    assert cost["cheaper"] == "hosted API"


def test_costs_without_instances_and_bad_assumptions():
    empty = {"placement": {"h": {"instances": [], "devices": [{"kind": "gpu", "instances": []}]}}}
    cost = R.costs(empty)
    assert cost["cost_per_million_tokens"] is None and cost["cheaper"] is None
    with pytest.raises(ValueError, match="gpu_watts"):
        R.costs(empty, {"gpu_watts": -1})
    with pytest.raises(ValueError, match="amortisation"):
        R.costs(empty, {"amortisation_months": 0})


def test_markdown_report_sections(plan):
    text = R.markdown(plan, R.costs(plan, {"currency": "USD"}), "pic.svg", "2026-11-25")
    for heading in ("# Model placement", "## GPUs", "## Instances", "## Routes",
                    "## Did not fit", "## Cost"):
        assert heading in text
    assert "![VRAM per GPU and model](pic.svg)" in text
    assert "Planned 2026-11-25." in text
    assert "- huge: 1 replica(s)" in text
    assert "USD" in text and "cost per million tokens" in text
    for name, targets in plan["routes"].items():
        assert f"| {name} | {', '.join(targets)} |" in text
