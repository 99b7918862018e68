# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Render a placement (the result of the model_placement action) as a text table, a Markdown
report, an SVG picture of VRAM per GPU and model, and a cost comparison with a hosted API.

Private to the collection: pure Python, stdlib only, no plotting library.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

GIB = 1024**3

# Assumptions of the cost comparison; every one can be overridden.
COST_DEFAULTS = {
    "currency": "EUR",
    "gpu_watts": 250.0,  # average draw of a GPU with an instance on it
    "idle_gpu_watts": 20.0,  # a GPU without instance
    "host_watts": 80.0,  # the rest of a host (CPU, disks, fans, PSU losses)
    "hours_per_month": 730.0,
    "electricity_per_kwh": 0.30,
    "hardware_per_gpu": 1200.0,  # second-hand consumer card
    "hardware_per_host": 800.0,
    "amortisation_months": 36.0,
    "tokens_per_second_per_instance": 40.0,  # generated tokens/s while busy, all sequences
    "busy_fraction": 0.25,  # share of the month the instances generate
    "api_price_per_million_tokens": 2.0,  # hosted API, output tokens
}

# Colour-blind-safe palette (Okabe-Ito, then Tol's muted), assigned by sorted model name.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
           "#882255", "#AA4499")


def _gib(value):
    return f"{value / GIB:.1f}"


def _hosts(plan):
    return sorted((plan.get("placement") or {}).items())


def table(plan):
    """Lines of a fixed-width table: one row per GPU (or RAM) with its instances."""
    rows = [("host", "device", "name", "total GiB", "planned GiB", "free GiB", "instances")]
    for host, spec in _hosts(plan):
        by_id = {i["id"]: i for i in spec.get("instances", [])}
        for device in spec.get("devices", []):
            label = "RAM" if device["kind"] == "cpu" else f"GPU {device['index']}"
            names = ", ".join(
                f"{i} ({by_id[i]['engine']} {by_id[i]['quantization']} :{by_id[i]['port']})"
                for i in device["instances"] if i in by_id
            ) or "-"
            rows.append((host, label, device["name"], _gib(device["memory_total"]),
                         _gib(device["planned"]), _gib(device["free"]), names))
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [str(v).ljust(w) for v, w in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join(cells + [str(row[-1])]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 9)
    return lines


def costs(plan, params=None):
    """Monthly cost of running the plan and the cost per million tokens, beside the API."""
    p = dict(COST_DEFAULTS)
    p.update({k: v for k, v in (params or {}).items() if v is not None})
    for key, value in p.items():
        if key != "currency":
            value = float(value)
            if value < 0:
                raise ValueError(f"cost parameter {key} must not be negative")
            p[key] = value
    if p["amortisation_months"] <= 0:
        raise ValueError("cost parameter amortisation_months must be positive")
    hosts = gpus = busy_gpus = instances = 0
    for _host, spec in _hosts(plan):
        hosts += 1
        instances += len(spec.get("instances", []))
        for device in spec.get("devices", []):
            if device["kind"] == "gpu":
                gpus += 1
                busy_gpus += bool(device["instances"])
    watts = hosts * p["host_watts"] + busy_gpus * p["gpu_watts"] + (gpus - busy_gpus) * p[
        "idle_gpu_watts"]
    kwh = watts * p["hours_per_month"] / 1000
    energy = kwh * p["electricity_per_kwh"]
    hardware = (gpus * p["hardware_per_gpu"] + hosts * p["hardware_per_host"]) / p[
        "amortisation_months"]
    monthly = energy + hardware
    tokens = (instances * p["tokens_per_second_per_instance"] * 3600 * p["hours_per_month"]
              * p["busy_fraction"])
    per_million = monthly / (tokens / 1e6) if tokens else None
    api = tokens / 1e6 * p["api_price_per_million_tokens"]
    return {
        "assumptions": p,
        "hosts": hosts, "gpus": gpus, "busy_gpus": busy_gpus, "instances": instances,
        "watts": round(watts, 1), "kwh_per_month": round(kwh, 1),
        "energy_per_month": round(energy, 2), "hardware_per_month": round(hardware, 2),
        "total_per_month": round(monthly, 2), "tokens_per_month": int(tokens),
        "cost_per_million_tokens": round(per_million, 4) if per_million is not None else None,
        "api_per_month": round(api, 2),
        "cheaper": (None if per_million is None else
                    "self-hosted" if monthly < api else "hosted API"),
    }


def _colours(plan):
    names = sorted({i["name"] for _h, spec in _hosts(plan) for i in spec.get("instances", [])})
    return {name: PALETTE[n % len(PALETTE)] for n, name in enumerate(names)}


def svg(plan, width=900):
    """An SVG picture: per host, one bar per GPU (length ~ its memory), one segment per
    instance (colour per model), the reservation hatched, free memory white."""
    colours = _colours(plan)
    left, bar_w, bar_h, gap = 250, width - 270, 22, 8
    largest = max((d["memory_total"] for _h, s in _hosts(plan) for d in s.get("devices", [])),
                  default=1)
    scale = bar_w / largest
    parts, y = [], 40
    for host, spec in _hosts(plan):
        parts.append(f'<text x="10" y="{y + 14}" class="host">{escape(host)}</text>')
        y += 22
        by_id = {i["id"]: i for i in spec.get("instances", [])}
        for device in spec.get("devices", []):
            label = "RAM" if device["kind"] == "cpu" else f"GPU {device['index']}"
            total = device["memory_total"]
            parts.append(
                f'<text x="20" y="{y + 15}" class="label">{escape(label)} '
                f'{escape(device["name"][:22])} {_gib(total)} GiB</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{total * scale:.1f}" height="{bar_h}" '
                         'class="free"/>')
            x = left
            for ident in device["instances"]:
                inst = by_id.get(ident)
                if inst is None:
                    continue
                if inst["device"] == "cpu":
                    used = inst["ram_bytes"]
                else:
                    used = inst["bytes_per_gpu"][inst["gpus"].index(device["index"])]
                w = used * scale
                tip = (f"{inst['id']}: {inst['name']}, {inst['engine']} {inst['quantization']} ctx "
                       f"{inst['context']} x{inst['parallel']}, {_gib(used)} GiB, port {inst['port']}")
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                    f'fill="{colours[inst["name"]]}" class="inst"><title>{escape(tip)}</title></rect>')
                text = f"{inst['name']} {_gib(used)}"
                if w > 7 * len(text):
                    parts.append(f'<text x="{x + 4:.1f}" y="{y + 15}" class="in">{escape(text)}</text>')
                x += w
            reserved = device["reserved"]
            if reserved:
                rx = left + (total - reserved) * scale
                parts.append(f'<rect x="{rx:.1f}" y="{y}" width="{reserved * scale:.1f}" '
                             f'height="{bar_h}" class="reserved"><title>reserved '
                             f'{_gib(reserved)} GiB</title></rect>')
            y += bar_h + gap
        y += 6
    legend_y = y + 10
    for n, (name, colour) in enumerate(sorted(colours.items())):
        lx = 10 + (n % 4) * (width // 4)
        ly = legend_y + (n // 4) * 20
        parts.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 18}" y="{ly + 11}" class="label">{escape(name)}</text>')
    height = legend_y + ((len(colours) + 3) // 4) * 20 + 20
    title = (f"Model placement: {plan.get('solver', '?')} "
             f"({'optimal' if plan.get('optimal') else 'not proven optimal'}), "
             f"policy {plan.get('policy', '?')}")
    style = (
        "<style>text{font-family:sans-serif;font-size:12px;fill:#222}"
        ".host{font-weight:bold;font-size:14px}.in{fill:#fff;font-size:11px}"
        ".free{fill:#fff;stroke:#888}.inst{stroke:#fff}"
        ".reserved{fill:url(#hatch);stroke:#888}</style>"
    )
    defs = ('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eee"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern></defs>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
        f"<title>{escape(title)}</title>{style}{defs}"
        f'<text x="10" y="22" class="host">{escape(title)}</text>'
        + "".join(parts) + "</svg>\n"
    )


def _money(value, currency):
    return "n/a" if value is None else f"{value:,.2f} {currency}"


def markdown(plan, cost=None, svg_name="placement.svg", date=None):
    """The report: summary, per-GPU table, instances, routes, what did not fit, costs."""
    cost = cost or costs(plan)
    cur = cost["assumptions"]["currency"]
    lines = ["# Model placement", ""]
    if date:
        lines += [f"Planned {date}.", ""]
    proven = "proven optimal" if plan.get("optimal") else "not proven optimal"
    lines.append(f"- Solver: **{plan.get('solver', '?')}** ({plan.get('solver_status', '?')}; "
                 f"{proven}), policy **{plan.get('policy', '?')}**.")
    if plan.get("fallback_reason"):
        lines.append(f"- Greedy used because: {plan['fallback_reason']}.")
    lines.append(f"- {cost['instances']} instance(s) on {cost['hosts']} host(s) and "
                 f"{cost['gpus']} GPU(s), {cost['busy_gpus']} of them in use.")
    unplaced = plan.get("unplaced") or []
    if unplaced:
        lines.append(f"- **{len(unplaced)} model(s) did not fit** (see below).")
    lines += ["", f"![VRAM per GPU and model]({svg_name})", "", "## GPUs", "",
              "| host | device | name | total GiB | planned GiB | free GiB | instances |",
              "|---|---|---|---:|---:|---:|---|"]
    for host, spec in _hosts(plan):
        for d in spec.get("devices", []):
            label = "RAM" if d["kind"] == "cpu" else f"GPU {d['index']}"
            lines.append(f"| {host} | {label} | {d['name']} | {_gib(d['memory_total'])} | "
                         f"{_gib(d['planned'])} | {_gib(d['free'])} | "
                         f"{', '.join(d['instances']) or '-'} |")
    lines += ["", "## Instances", "",
              "| host | id | engine | quantization | context x parallel | GPUs | GiB per GPU | "
              "port |", "|---|---|---|---|---|---|---|---:|"]
    for host, spec in _hosts(plan):
        for i in spec.get("instances", []):
            gpus = ",".join(str(g) for g in i["gpus"]) or "RAM"
            per = ", ".join(_gib(b) for b in i["bytes_per_gpu"]) or _gib(i["ram_bytes"])
            extra = (f" (util {i['gpu_memory_utilization']})"
                     if i.get("gpu_memory_utilization") else "")
            lines.append(f"| {host} | {i['id']} | {i['engine']} | {i['quantization']} | "
                         f"{i['context']} x {i['parallel']} | {gpus} | {per}{extra} | "
                         f"{i['port']} |")
    lines += ["", "## Routes", "", "| model | targets |", "|---|---|"]
    for name, targets in sorted((plan.get("routes") or {}).items()):
        lines.append(f"| {name} | {', '.join(targets)} |")
    if unplaced:
        lines += ["", "## Did not fit", ""]
        for u in unplaced:
            short = ("" if u.get("short_bytes") is None
                     else f", {_gib(u['short_bytes'])} GiB short")
            fix = (f"; fits with {' or '.join(u['suggestions'])}" if u.get("suggestions")
                   else "")
            lines.append(f"- {u['name']}: {u['missing']} replica(s){short}{fix}")
    a = cost["assumptions"]
    lines += [
        "", "## Cost", "",
        "| | per month |", "|---|---:|",
        f"| power ({cost['watts']} W average, {cost['kwh_per_month']} kWh at "
        f"{a['electricity_per_kwh']} {cur}/kWh) | {_money(cost['energy_per_month'], cur)} |",
        f"| hardware ({cost['gpus']} GPUs x {a['hardware_per_gpu']:g}, {cost['hosts']} hosts x "
        f"{a['hardware_per_host']:g}, over {a['amortisation_months']:g} months) | "
        f"{_money(cost['hardware_per_month'], cur)} |",
        f"| **total** | **{_money(cost['total_per_month'], cur)}** |",
        f"| tokens ({cost['instances']} instances x {a['tokens_per_second_per_instance']:g} "
        f"tokens/s x {a['busy_fraction']:g} busy) | {cost['tokens_per_month']:,} |",
        f"| cost per million tokens | {_money(cost['cost_per_million_tokens'], cur)} |",
        f"| same tokens from a hosted API at {a['api_price_per_million_tokens']:g} {cur} per "
        f"million | {_money(cost['api_per_month'], cur)} |",
        "",
    ]
    if cost["cheaper"]:
        lines.append(f"At these assumptions the **{cost['cheaper']}** is cheaper. Every number "
                     "above is an assumption to replace with yours (`plan_cost_*` variables); "
                     "tokens/s depends on the model, the GPU and the load.")
    lines.append("")
    return "\n".join(lines)
