"""Unit tests for plugins/module_utils/_plan_report.py: the text table and the Markdown report."""

from __future__ import annotations

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _plan_costs as C
from ansible_collections.teamllm.stack.plugins.module_utils import _plan_report as R
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils import (
    plan_report_fixtures as F,
)


@pytest.fixture(scope="module")
def team():
    return F.team_plan()


def test_table_is_compact_one_row_per_device(team):
    lines = R.table(team)
    assert lines[0].split()[:3] == ["host", "device", "name"]
    rows = lines[2:]
    assert [r.split()[0:3] for r in rows] == [["gpu-a", "GPU", "0"], ["gpu-a", "GPU", "1"],
                                              ["gpu-b", "GPU", "0"], ["gpu-b", "GPU", "1"],
                                              ["gpu-c", "GPU", "0"]]
    text = "\n".join(lines)
    for spec in team["placement"].values():
        for inst in spec["instances"]:
            assert f"{inst['id']} ({inst['engine']} {inst['quantization']} :{inst['port']})" in text
    assert "tokens" not in text and "USD" not in text  # costs stay in the report


def test_report_sections_and_instance_predictions(team):
    fig = C.figures(team, gpus=F.team_facts())
    text = R.markdown(team, fig, "pic.svg", "2026-12-01")
    for heading in ("# Model placement, capacity and cost", "## GPUs", "## Instances",
                    "## Routes per gateway", "## Did not fit", "## Capacity against demand",
                    "## Cost over 3 year(s), beside a hosted API", "### Inputs",
                    "### Hardware, bought once", "### Power, around the clock", "### Over 3 year(s)"):
        assert heading in text.splitlines(), heading
    assert "![GPU memory per model" in text and "(pic.svg)" in text
    assert "Planned 2026-12-01." in text
    assert "- qwen2.5-72b: 1 replica(s)" in text
    assert f"  ({team['unplaced'][0]['message']})" in text
    rows = {line.split(" | ")[1]: line for line in text.splitlines()
            if line.startswith("| gpu-") and " | llama_cpp | " in line}
    for ident, th in fig["instances"].items():
        if th["kind"] == "llm":
            speed = f"| {th['single_stream']:.1f} | {th['aggregate_full']:.1f} | {th['users']} of "
            assert speed in rows[ident]
        else:
            assert "| embeddings |" in rows[ident]
    for key in C.COST_DEFAULTS:  # every input listed
        assert f"| {key} | " in text


def test_report_states_the_seed_figures_for_the_seeds_box():
    hosts = F.hosts({"box": [{"name": "NVIDIA GeForce RTX 4090", "memory_gb": 24, "power_limit_w": 450}]})
    plan = F.plan([{"name": "llama-3.1-8b", "engine": "llama_cpp", "quantizations": ["Q4_K_M"]}], hosts)
    fig = C.figures(plan, {"gpu_prices": 2500, "hardware_per_host": 0, "host_watts": 0,
                           "maintenance_per_year": 0, "maintenance_once": 500},
                    gpus={"box": hosts["box"]["gpus"]})
    text = R.markdown(plan, fig)
    assert "| power per year | 450 W x 24 h x 365 = 3,942 kWh x 0.12 | 473.04 USD |" in text
    assert "**4,419.12 USD**" in text and "**43,800.00 USD**" in text
    assert "| savings in % | savings / API total | 89.9 % |" in text
    assert "pays for itself after 2.5 months" in text


def test_routes_are_rendered_per_gateway():
    # the deployment plan's routes as each gateway reaches them (a gateway on gpu-a would reach
    # gpu-a's own instances on loopback were its engines bound to a wildcard address)
    team = F.plan(F.TEAM_MODELS, F.hosts(), gateways=("gw1",))
    routes = team["gateways"]["gw1"]["routes"]
    assert routes and all(routes.values())
    plan = dict(team, gateways={"gw1": {"routes": routes}, "gpu-a": {"routes": {
        name: [t.replace("10.0.0.11", "127.0.0.1") for t in targets]
        for name, targets in routes.items()}}})
    text = R.markdown(plan, C.figures(plan))
    gw1 = text.index("### gw1")
    local = text.index("### gpu-a")
    assert local < gw1
    for gateway, section in (("gpu-a", text[local:gw1]), ("gw1", text[gw1:])):
        for name, hops in plan["gateways"][gateway]["routes"].items():
            assert f"| {name} | {', '.join(hops)} |" in section
    assert any("127.0.0.1:" in ", ".join(h) for h in plan["gateways"]["gpu-a"]["routes"].values())
    assert not any("127.0.0.1:" in ", ".join(h) for h in plan["gateways"]["gw1"]["routes"].values())
    assert list(R.gateways(plan)) == ["gpu-a", "gw1"]


def test_capacity_verdict_follows_the_demand(team):
    fig = C.figures(team, gpus=F.team_facts())
    assert "The predicted capacity **covers** the demand" in R.markdown(team, fig)
    huge = C.figures(team, {"tokens_per_day": 1e9}, gpus=F.team_facts())
    text = R.markdown(team, huge)
    assert "**does not cover**" in text and "**not covered**" in text


def test_losing_money_is_said_plainly(team):
    fig = C.figures(team, {"api_price_per_1k_tokens": 0.0002})
    text = R.markdown(team, fig)
    assert "self-hosting costs" in text and "more and never pays for itself" in text
