"""Unit tests for plugins/module_utils/_plan_svg.py: the picture of GPU memory per model."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _plan_svg as S
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils import (
    plan_report_fixtures as F,
)

NS = "{http://www.w3.org/2000/svg}"
GIB = S.GIB


def parse(plan, **kw):
    return ET.fromstring(S.svg(plan, **kw))


def texts(node):
    return [t.text or "" for t in node.iter(f"{NS}text")]


def instances(plan):
    return [i for s in plan["placement"].values() for i in s["instances"]]


@pytest.fixture(scope="module")
def team():
    return F.team_plan()


@pytest.fixture(scope="module")
def crowded():
    """Five small models on one 16 GB card (labels below the bar), a RAM host, and a vLLM pair."""
    hosts = F.hosts({"small": [{"name": "NVIDIA GeForce RTX 4060 Ti", "memory_gb": 16}],
                     "big": [{"name": "NVIDIA H100 80GB HBM3", "memory_gb": 80, "count": 2}]},
                    extra={"cpu-box": {"gpus": F.facts([]), "cpu_inference": True,
                                       "ram_bytes": 64 * GIB}})
    models = [{"name": n, "engine": "llama_cpp", "quantizations": [q], "host": "small"}
              for n, q in (("qwen2.5-0.5b", "Q8_0"), ("all-minilm-l6-v2", "F16"),
                           ("nomic-embed-text", "F16"), ("qwen2.5-3b", "Q4_K_M"),
                           ("qwen2.5-7b", "Q4_K_M"))]
    models += [{"name": "llama-3.1-70b", "engine": "vllm", "quantizations": ["AWQ"],
                "context": 16384, "parallel": 8},
               {"name": "mistral-7b", "engine": "llama_cpp", "quantizations": ["Q4_K_M"],
                "host": "cpu-box"}]
    return F.plan(models, hosts)


def test_solid_background_and_full_gpu_names(team):
    doc = parse(team, width=1000)
    background = [r for r in doc.iter(f"{NS}rect") if r.get("class") == "background"]
    assert len(background) == 1 and background[0].get("fill") == "#fff"
    assert (background[0].get("width"), background[0].get("height")) == (doc.get("width"), doc.get("height"))
    captions = " ".join(texts(doc))
    for spec in team["placement"].values():
        for d in spec["devices"]:
            assert d["name"] in captions  # "NVIDIA GeForce RTX 4060 Ti", never cut to 22 characters


def test_bars_are_drawn_to_one_scale_with_ticks(team):
    doc = parse(team, width=1000)
    bars = [r for r in doc.iter(f"{NS}rect") if r.get("class") == "free"][:-1]  # last: legend
    widths = sorted({round(float(b.get("width"))) for b in bars})
    assert widths == [round(968 * 16 / 48), round(968 * 24 / 48), 968]  # 4060 Ti, 24 GB cards, A6000
    ticks = [t for t in doc.iter(f"{NS}text") if t.get("class") == "tick"]
    labels = [t.text for t in ticks]
    assert labels.count("0") == 2 and labels.count("48 GiB") == 2  # above and below the bars
    step = S.tick_step(48 * GIB)
    assert str(step) in labels
    gap = float(ticks[1].get("x")) - float(ticks[0].get("x"))
    assert gap == pytest.approx(968 * step / 48, abs=0.2)
    grid = [g for g in doc.iter(f"{NS}line") if g.get("class") == "grid"]
    # one line per step inside each bar: three 24 GiB cards, one 48 and one 16
    assert len(grid) == 3 * (24 // step - 1) + (48 // step - 1) + (16 // step - 1)


@pytest.mark.parametrize("which", ["team", "crowded"])
def test_every_segment_names_its_model_and_quantization_outside_the_tooltip(which, request):
    plan = request.getfixturevalue(which)
    doc = parse(plan)
    groups = [g for g in doc.iter(f"{NS}g") if g.get("class") == "segment"]
    assert len(groups) == sum(max(1, len(i["gpus"])) for i in instances(plan))
    by_id = {i["id"]: i for i in instances(plan)}
    for g in groups:
        inst = by_id[g.get("data-instance")]
        shown = " ".join(texts(g))
        assert inst["name"] in shown and inst["quantization"] in shown
        assert re.search(r"\d+\.\d GiB", shown)  # its size, inside or below


def test_labels_below_a_bar_neither_overlap_nor_are_crossed_by_leaders(crowded):
    doc = parse(crowded)
    boxes, leaders = [], []
    for g in doc.iter(f"{NS}g"):
        out = [t for t in g.iter(f"{NS}text") if t.get("class") == "out"]
        for t in out:
            x, y = float(t.get("x")), float(t.get("y"))
            boxes.append((x - 12, x + S.text_width(t.text, S.SMALL), y - 10, y + 2))
        for p in g.iter(f"{NS}polyline"):
            pts = [tuple(map(float, xy.split(","))) for xy in p.get("points").split()]
            leaders.append(pts)
    assert len(boxes) >= 4  # the crowded card has labels below it
    for n, a in enumerate(boxes):
        for b in boxes[n + 1:]:
            assert a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2], (a, b)
    for (x, y_top), (_x, y_bottom), _end in leaders:  # down from the bar, then to its label
        for left, right, _top, bottom in boxes:  # a label between the bar and this leader's row
            assert not (left < x < right and y_top < bottom <= y_bottom), (x, left, right, bottom)


def test_caption_is_above_its_bar_and_ram_has_its_own_scale(crowded):
    doc = parse(crowded)
    all_text = texts(doc)
    ram = next(t for t in all_text if t.startswith("RAM ·"))
    assert "own scale" in ram and "64.0 GiB" in ram
    assert "64 GiB" in all_text  # the RAM bar's own last tick
    for t in doc.iter(f"{NS}text"):
        if t.get("class") == "caption" and t.text.startswith("GPU"):
            bar_top = min(float(r.get("y")) for r in doc.iter(f"{NS}rect")
                          if r.get("class") == "free" and float(r.get("y")) > float(t.get("y")) - 1)
            assert float(t.get("y")) < bar_top


def test_same_model_same_colour_and_text_readable_on_it(team):
    doc = parse(team)
    fills = {}
    for g in doc.iter(f"{NS}g"):
        if g.get("class") == "segment":
            rect = g.find(f"{NS}rect")
            name = rect.find(f"{NS}title").text.split(": ")[1].split(" (")[0]
            fills.setdefault(name, set()).add(rect.get("fill"))
            inside = [t for t in g.iter(f"{NS}text") if t.get("class") == "in"]
            for t in inside:
                assert t.get("style") == f"fill:{S._ink(rect.get('fill'))}"
    assert all(len(f) == 1 for f in fills.values())
    assert len({next(iter(f)) for f in fills.values()}) == len(fills)
    assert S._ink("#0072B2") == "#fff" and S._ink("#F0E442") == "#111"


def test_names_are_escaped():
    plan = F.plan([{"name": "llama-3.1-8b", "alias": "chat <&> model", "engine": "llama_cpp",
                    "quantizations": ["Q4_K_M"]}],
                  F.hosts({"h": [{"name": "RTX 4090 <x>", "memory_gb": 24}]}))
    doc = parse(plan)
    assert any("chat <&> model" in t for t in texts(doc))
    assert any("RTX 4090 <x>" in t for t in texts(doc))
