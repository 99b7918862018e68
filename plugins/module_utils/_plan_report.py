# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Render a placement (the result of the model_placement action) as a compact text table and
as a Markdown report: summary, GPUs, instances with their predicted throughput, routes per
gateway, what did not fit, capacity against demand, and the cost over the years beside a
hosted API. The figures come from ``_plan_costs.figures``; the picture from ``_plan_svg``.

Private to the collection: pure Python, stdlib only.
"""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils import _plan_costs
from ansible_collections.teamllm.stack.plugins.module_utils._plan_svg import GIB, used_bytes


def _gib(value):
    return f"{value / GIB:.1f}"


def _hosts(plan):
    return sorted((plan.get("placement") or {}).items())


def _device_label(device):
    return "RAM" if device["kind"] == "cpu" else f"GPU {device['index']}"


def table(plan):
    """Lines of a fixed-width table: one row per GPU (or RAM) with its instances."""
    rows = [("host", "device", "name", "total GiB", "planned GiB", "free GiB", "instances")]
    for host, spec in _hosts(plan):
        by_id = {i["id"]: i for i in spec.get("instances", [])}
        for device in spec.get("devices", []):
            names = ", ".join(
                f"{i} ({by_id[i]['engine']} {by_id[i]['quantization']} :{by_id[i]['port']})"
                for i in device["instances"] if i in by_id
            ) or "-"
            rows.append((host, _device_label(device), device["name"], _gib(device["memory_total"]),
                         _gib(device["planned"]), _gib(device["free"]), names))
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [str(v).ljust(w) for v, w in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join(cells + [str(row[-1])]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 9)
    return lines


def gateways(plan):
    """``{gateway: {served name: [targets]}}``: per gateway host when the plan has
    ``gateways``, else the plan's one ``routes`` under the name ``all gateways``."""
    if plan.get("gateways"):
        return {gw: dict((spec or {}).get("routes") or {})
                for gw, spec in sorted(plan["gateways"].items())}
    return {"all gateways": dict(plan.get("routes") or {})}


class _Fmt:
    def __init__(self, currency):
        self.cur = currency

    def money(self, value, digits=2):
        return "n/a" if value is None else f"{value:,.{digits}f} {self.cur}"

    @staticmethod
    def num(value, digits=1):
        return "n/a" if value is None else f"{value:,.{digits}f}"


def _summary(plan, fig, f):
    cap, t, p = fig["capacity"], fig["tco"], fig["inputs"]
    proven = "proven optimal" if plan.get("optimal") else "not proven optimal"
    lines = [f"- Solver **{plan.get('solver', '?')}** ({plan.get('solver_status', '?')}; "
             f"{proven}), policy **{plan.get('policy', '?')}**."]
    if plan.get("fallback_reason"):
        lines.append(f"- The plan is the {plan.get('solver', 'greedy')} one, not the exact "
                     f"solver's, because: {plan['fallback_reason']}.")
    n_inst = len(fig["instances"])
    lines.append(f"- {n_inst} instance(s) on {fig['hosts']} host(s) and {fig['gpus']} GPU(s), "
                 f"{fig['busy_gpus']} of them in use.")
    verdict = ("**covered**" if cap["covered"] else "**not covered**")
    load = "" if cap["load_percent"] is None else f", {cap['load_percent']:.0f} % of the capacity"
    lines.append(
        f"- Capacity: {f.num(cap['tokens_per_second'])} tokens/s predicted with every slot busy, "
        f"{f.num(cap['tokens_per_busy_day'], 0)} tokens in {p['busy_hours_per_day']:g} busy hours; "
        f"demand {f.num(p['tokens_per_day'], 0)} tokens/day: {verdict}{load}. "
        f"{cap['users']} concurrent user(s) at {p['tokens_per_second_per_user']:g} tokens/s each.")
    years = f"{t['years']:g} year(s)"
    if t["savings"] >= 0:
        gain = f"saves {f.money(t['savings'])}"
        gain += "" if t["savings_percent"] is None else f" ({t['savings_percent']:.1f} %)"
    else:
        gain = f"costs {f.money(-t['savings'])} more"
    months = t["break_even_months"]
    if months is None:
        even = "never pays for itself at this demand"
    elif months > t["years"] * 12:
        even = f"would pay for itself only after {months:.1f} months, beyond the {years}"
    else:
        even = f"pays for itself after {months:.1f} months"
    lines.append(f"- Cost over {years}: self-hosted **{f.money(t['self_hosted_total'])}** against "
                 f"**{f.money(t['api_total'])}** from the hosted API: self-hosting {gain} and "
                 f"{even}.")
    if plan.get("unplaced"):
        lines.append(f"- **{len(plan['unplaced'])} model(s) did not fit** (see below).")
    lines += [f"- Warning: {w}." for w in fig["warnings"]]
    return lines


def _gpu_table(plan, fig, f):
    lines = ["| host | device | name | GiB total | GiB planned | GiB free | GB/s | W | price | "
             "instances |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    rows = {(r["host"], r["index"], r["kind"]): r for r in fig["devices"]}
    for host, spec in _hosts(plan):
        for d in spec.get("devices", []):
            r = rows[(host, d.get("index"), d["kind"])]
            if d["kind"] == "gpu":
                extra = (f"{f.num(r['bandwidth_gbps'], 0)} ({r['bandwidth_source']}) | "
                         f"{f.num(r['watts'], 0)} ({r['watts_source']}) | "
                         f"{f.money(r['price'], 0)} ({r['price_source']})")
            else:
                extra = f"{f.num(r['bandwidth_gbps'], 0)} (input) | in host | in host"
            lines.append(f"| {host} | {_device_label(d)} | {d['name']} | {_gib(d['memory_total'])} "
                         f"| {_gib(d['planned'])} | {_gib(d['free'])} | {extra} | "
                         f"{', '.join(d['instances']) or '-'} |")
    return lines


def _instances(plan, fig, f):
    user = fig["inputs"]["tokens_per_second_per_user"]
    lines = ["| host | instance | model | engine | quantization | context x parallel | GPUs | "
             "GiB per GPU | port | GB read per token | tokens/s alone | tokens/s all slots | "
             f"users at {user:g} tokens/s |", "|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for host, spec in _hosts(plan):
        devices = {d.get("index"): d for d in spec.get("devices", [])}
        for i in spec.get("instances", []):
            th = fig["instances"][i["id"]]
            if i.get("device") == "cpu":
                gpus, per = "RAM", _gib(i["ram_bytes"])
            else:
                gpus = ",".join(str(g) for g in i["gpus"])
                per = ", ".join(_gib(used_bytes(i, devices[g])) if g in devices else "?"
                                for g in i["gpus"])
            if i.get("gpu_memory_utilization"):
                per += f" (util {i['gpu_memory_utilization']})"
            model = i["model"] if i["model"] == i["name"] else f"{i['name']} ({i['model']})"
            if th["kind"] != "llm":
                speed = "embeddings | - | - | -"
            elif th["single_stream"] is None:
                speed = f"{th['bytes_per_token'] / 1e9:.2f} | unknown | unknown | unknown"
            else:
                speed = (f"{th['bytes_per_token'] / 1e9:.2f} | {th['single_stream']:.1f} | "
                         f"{th['aggregate_full']:.1f} | {th['users']} of {th['parallel']}")
            lines.append(f"| {host} | {i['id']} | {model} | {i['engine']} | {i['quantization']} | "
                         f"{i['context']} x {i['parallel']} | {gpus} | {per} | {i['port']} | "
                         f"{speed} |")
    return lines


def _routes(plan):
    lines = []
    for gw, routes in gateways(plan).items():
        lines += ["", f"### {gw}", "", "| model | targets |", "|---|---|"]
        lines += [f"| {name} | {', '.join(targets)} |" for name, targets in sorted(routes.items())]
        if not routes:
            lines.append("| - | no route |")
    return lines


def _capacity(fig, f):
    cap, p = fig["capacity"], fig["inputs"]
    lines = [
        "| | tokens/s | tokens per day |", "|---|---:|---:|",
        f"| demand: {f.num(p['tokens_per_day'], 0)} tokens/day asked in {p['busy_hours_per_day']:g} "
        f"hours | {f.num(cap['needed_tokens_per_second'])} | {f.num(p['tokens_per_day'], 0)} |",
        f"| capacity: {cap['instances']} generating instance(s), every slot busy | "
        f"{f.num(cap['tokens_per_second'])} | {f.num(cap['tokens_per_busy_day'], 0)} |",
        "",
        ("The predicted capacity **covers** the demand" if cap["covered"] else
         "The predicted capacity **does not cover** the demand")
        + ("" if cap["load_percent"] is None else f" (load {cap['load_percent']:.0f} %)") + ".",
    ]
    if cap["unknown"]:
        lines.append(f"No prediction for {', '.join(cap['unknown'])} (memory bandwidth unknown).")
    lines += [
        "",
        "How it is predicted: a generated token reads the weights it passes through once (for a "
        "mixture of experts only the active experts) and each sequence's KV cache at "
        f"{p['context_fill']:g} of its context, so one decode step of B sequences takes "
        "(weights + B x KV) / (efficiency x bandwidth) + (B - 1) x h. Tokens/s alone is B = 1; "
        "all slots is B = parallel; users counts the sequences that still get "
        f"{p['tokens_per_second_per_user']:g} tokens/s each. Efficiency "
        f"{p['decode_efficiency']:g} and h = {p['serving_seconds_per_sequence'] * 1000:g} ms "
        "(llama.cpp's CUDA server on an H200, measured: docs/plan-report.md); a layer split "
        "over GPUs adds their times, vLLM tensor parallel divides the work over them. Prompt "
        "processing is not modelled, and GPUs with less compute than the H200 add more per "
        "sequence: treat large batches on them as optimistic.",
    ]
    return lines


def _costs(fig, f):
    p, t = fig["inputs"], fig["tco"]
    lines = ["### Inputs", "", "| input | value | meaning |", "|---|---|---|"]
    for key, value in p.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}: {v:g}" for k, v in sorted(value.items())) or "table"
        elif isinstance(value, float):
            shown = f"{value:,.4g}" if value < 1 else f"{value:,.2f}".rstrip("0").rstrip(".")
        else:
            shown = str(value)
        default = "" if value == _plan_costs.COST_DEFAULTS[key] else " (set)"
        lines.append(f"| {key} | {shown}{default} | {_plan_costs.INPUT_HELP[key]} |")
    gpus = [r for r in fig["devices"] if r["kind"] == "gpu"]
    groups = {}
    for r in gpus:
        key = (r["name"], r["price"], r["price_source"])
        groups[key] = groups.get(key, 0) + 1
    lines += ["", "### Hardware, bought once", "", "| item | count | each | total |",
              "|---|---:|---:|---:|"]
    for (name, price, source), count in sorted(groups.items(), key=lambda kv: str(kv[0])):
        lines.append(f"| {name} ({source}) | {count} | {f.money(price, 0)} | "
                     f"{f.money(None if price is None else price * count, 0)} |")
    lines.append(f"| hosts without GPUs | {fig['hosts']} | {f.money(p['hardware_per_host'], 0)} | "
                 f"{f.money(p['hardware_per_host'] * fig['hosts'], 0)} |")
    if p["extra_hardware"]:
        lines.append(f"| other hardware | 1 | {f.money(p['extra_hardware'], 0)} | "
                     f"{f.money(p['extra_hardware'], 0)} |")
    lines.append(f"| **hardware** | | | **{f.money(t['hardware'], 0)}** |")
    busy = [r for r in gpus if r["busy"]]
    idle = [r for r in gpus if not r["busy"]]
    lines += ["", "### Power, around the clock", "", "| what | W |", "|---|---:|",
              f"| {len(busy)} GPU(s) serving models (power limit, input or table: see GPUs) | "
              f"{f.num(sum(r['watts'] or 0 for r in busy), 0)} |",
              f"| {len(idle)} GPU(s) with nothing placed | {f.num(sum(r['watts'] or 0 for r in idle), 0)} |",
              f"| {fig['hosts']} host(s) x {p['host_watts']:g} W | "
              f"{f.num(fig['hosts'] * p['host_watts'], 0)} |",
              f"| **total** | **{f.num(t['watts'], 0)}** |"]
    yrs = f"{t['years']:g}"
    pct = "n/a" if t["savings_percent"] is None else f"{t['savings_percent']:.1f} %"
    even = "never" if t["break_even_months"] is None else f"{t['break_even_months']:.1f}"
    per1k = (None if t["self_hosted_per_1k_tokens"] is None else
             f"{t['self_hosted_per_1k_tokens']:.5f} {f.cur}")
    lines += [
        "", f"### Over {yrs} year(s)", "", "| figure | how | value |", "|---|---|---:|",
        f"| hardware | bought once, above | {f.money(t['hardware'])} |",
        f"| power per year | {f.num(t['watts'], 0)} W x 24 h x 365 = {f.num(t['kwh_per_year'], 0)} kWh "
        f"x {p['electricity_per_kwh']:g} | {f.money(t['power_per_year'])} |",
        f"| power, {yrs} years | {yrs} x power per year | {f.money(t['power_total'])} |",
        f"| maintenance, {yrs} years | {p['maintenance_once']:g} once + {yrs} x "
        f"{p['maintenance_per_year']:g} | {f.money(t['maintenance_total'])} |",
        f"| **self-hosted total** | hardware + power + maintenance | "
        f"**{f.money(t['self_hosted_total'])}** |",
        f"| hosted API per year | {f.num(p['tokens_per_day'], 0)} tokens/day x 365 / 1000 x "
        f"{p['api_price_per_1k_tokens']:g} | {f.money(t['api_per_year'])} |",
        f"| **hosted API total** | {yrs} x API per year | **{f.money(t['api_total'])}** |",
        f"| savings | API total - self-hosted total | {f.money(t['savings'])} |",
        f"| savings in % | savings / API total | {pct} |",
        f"| break-even | (hardware + one-off maintenance) / (API per month - power and "
        f"maintenance per month), months | {even} |",
        f"| self-hosted cost per 1,000 tokens | self-hosted total / tokens of the period; the API "
        f"price at which both cost the same | {per1k or 'n/a'} |",
        "",
        "Every figure is unrounded until printed. Replace the inputs with yours "
        "(`llm_plan_costs` in the inventory, see docs/plan-report.md). The demand is an "
        "input: the API comparison does not grow with the number of instances.",
    ]
    return lines


def markdown(plan, figures=None, svg_name="placement.svg", date=None):
    """The report, from ``plan`` and ``figures`` (``_plan_costs.figures(plan, ...)``)."""
    fig = figures or _plan_costs.figures(plan)
    f = _Fmt(fig["inputs"]["currency"])
    lines = ["# Model placement, capacity and cost", ""]
    if date:
        lines += [f"Planned {date}.", ""]
    lines += _summary(plan, fig, f)
    lines += ["", f"![GPU memory per model: one bar per GPU, one segment per instance]({svg_name})",
              "", "## GPUs", ""]
    lines += _gpu_table(plan, fig, f)
    lines += ["", "## Instances", ""]
    lines += _instances(plan, fig, f)
    lines += ["", "## Routes per gateway"]
    lines += _routes(plan)
    unplaced = plan.get("unplaced") or []
    if unplaced:
        lines += ["", "## Did not fit", ""]
        for u in unplaced:
            short = ("" if u.get("short_bytes") is None else f", {_gib(u['short_bytes'])} GiB short")
            fix = f"; fits with {' or '.join(u['suggestions'])}" if u.get("suggestions") else ""
            lines.append(f"- {u['name']}: {u['missing']} replica(s){short}{fix}")
            if u.get("message"):
                lines.append(f"  ({u['message']})")
    lines += ["", "## Capacity against demand", ""]
    lines += _capacity(fig, f)
    lines += ["", f"## Cost over {fig['tco']['years']:g} year(s), beside a hosted API", ""]
    lines += _costs(fig, f)
    lines.append("")
    return "\n".join(lines)
