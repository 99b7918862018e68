# Copyright (c) teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""Capacity and cost of a placement: what the hardware costs to buy and to run over the years,
what the same tokens would cost from a hosted API, and whether the predicted throughput
covers the team's demand.

Private to the collection; standard library only. ``tco`` is the arithmetic alone (it
reproduces the seed's 3-year comparison, see docs/plan-report.md); ``figures`` derives its
hardware price and watts from a plan, adds the predicted throughput of every instance
(``_throughput``) and compares the capacity with ``tokens_per_day``, an input: the team's
demand, never derived from the instances.
"""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils import _gpu_specs, _throughput

HOURS_PER_YEAR = 24 * 365

# Every input of the report, with its default (the one place for them). The plan playbook
# passes the inventory's llm_plan_costs over them.
COST_DEFAULTS = {
    "currency": "USD",
    "gpu_prices": {},  # GPU name (or table key) -> price; a number: every GPU; else the table
    "gpu_watts": {},  # GPU name -> W of a GPU serving models; else its power limit, else table
    "idle_gpu_watts": 20.0,  # a GPU with nothing placed on it
    "host_watts": 100.0,  # the rest of each host: CPU, RAM, disks, fans, PSU losses
    "hardware_per_host": 1000.0,  # each host without its GPUs (second-hand workstation)
    "extra_hardware": 0.0,  # anything else bought once: the gateway box, a switch, UPS
    "electricity_per_kwh": 0.12,
    "maintenance_per_year": 500.0,
    "maintenance_once": 0.0,  # a one-off maintenance sum (the seed's reading of its $500)
    "years": 3.0,
    "tokens_per_day": 1_000_000.0,  # the team's demand: generated tokens per day
    "api_price_per_1k_tokens": 0.04,  # the hosted API's price for the same tokens
    "busy_hours_per_day": 8.0,  # the hours in which the day's tokens are asked for
    "tokens_per_second_per_user": _throughput.DEFAULT_TOKENS_PER_SECOND_PER_USER,
    "context_fill": _throughput.DEFAULT_CONTEXT_FILL,
    "ram_bandwidth_gbps": _throughput.DEFAULT_RAM_BANDWIDTH_GBPS,  # CPU-only hosts
    "decode_efficiency": _throughput.DECODE_EFFICIENCY,
    "serving_seconds_per_sequence": _throughput.SERVING_SECONDS_PER_SEQUENCE,
}
# What each input means, as the report lists them.
INPUT_HELP = {
    "currency": "currency of every price",
    "gpu_prices": "purchase price per GPU (by GPU name; else the table of street prices)",
    "gpu_watts": "draw of a GPU serving models (by GPU name; else its power limit, else the table)",
    "idle_gpu_watts": "draw of a GPU with nothing placed on it",
    "host_watts": "draw of each host besides its GPUs",
    "hardware_per_host": "price of each host without its GPUs",
    "extra_hardware": "other hardware bought once (gateway box, switch, UPS)",
    "electricity_per_kwh": "electricity price per kWh",
    "maintenance_per_year": "maintenance per year",
    "maintenance_once": "maintenance paid once for the whole period",
    "years": "years compared",
    "tokens_per_day": "the team's demand: generated tokens per day",
    "api_price_per_1k_tokens": "hosted API price per 1,000 tokens",
    "busy_hours_per_day": "hours of the day in which the demand arrives",
    "tokens_per_second_per_user": "generation speed one user needs",
    "context_fill": "share of the context a sequence holds on average (KV cache read per token)",
    "ram_bandwidth_gbps": "memory bandwidth of CPU-only hosts, GB/s",
    "decode_efficiency": "share of the peak memory bandwidth decoding reaches (measured)",
    "serving_seconds_per_sequence": "time each further sequence adds to a decode step: the server's share (measured)",
}
_BY_GPU = ("gpu_prices", "gpu_watts")
_POSITIVE = ("years", "busy_hours_per_day", "tokens_per_second_per_user", "context_fill",
             "ram_bandwidth_gbps", "decode_efficiency")
_FRACTIONS = ("context_fill", "decode_efficiency")


def inputs(params=None):
    """The defaults updated with ``params`` (None values keep the default), checked."""
    params = {k: v for k, v in (params or {}).items() if v is not None}
    unknown = set(params) - set(COST_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown cost inputs {sorted(unknown)}; known: {sorted(COST_DEFAULTS)}")
    p = dict(COST_DEFAULTS)
    p.update(params)
    for key, value in p.items():
        if key == "currency":
            p[key] = str(value)
        elif key in _BY_GPU:
            if isinstance(value, dict):
                p[key] = {str(k): _number(key, v) for k, v in value.items()}
            else:
                p[key] = _number(key, value)
        else:
            p[key] = _number(key, value)
    for key in _POSITIVE:
        if p[key] <= 0:
            raise ValueError(f"cost input {key} must be positive")
    for key in _FRACTIONS:
        if p[key] > 1:
            raise ValueError(f"cost input {key} is a fraction, at most 1")
    if p["busy_hours_per_day"] > 24:
        raise ValueError("cost input busy_hours_per_day must be at most 24")
    return p


def _number(key, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"cost input {key} must be a number, got {value!r}") from None
    if value < 0:
        raise ValueError(f"cost input {key} must not be negative")
    return value


def tco(hardware, watts, electricity_per_kwh, maintenance_per_year, years, tokens_per_day,
        api_price_per_1k_tokens, maintenance_once=0.0):
    """Self-hosted against a hosted API over ``years``, unrounded::

        power_per_year     = watts / 1000 x 24 x 365 x electricity_per_kwh
        self_hosted_total  = hardware + maintenance_once + years x (power_per_year + maintenance_per_year)
        api_total          = years x 365 x tokens_per_day / 1000 x api_price_per_1k_tokens
        savings            = api_total - self_hosted_total     (percent: of api_total)
        break_even_months  = (hardware + maintenance_once) / (API per month - running per month)
        self_hosted_per_1k = self_hosted_total / the period's tokens in thousands

    ``break_even_months`` is None when running costs alone exceed the API's; the two per-1K
    figures are None without tokens. ``self_hosted_per_1k`` is also the API price at which
    both cost the same.
    """
    power_per_year = watts / 1000 * HOURS_PER_YEAR * electricity_per_kwh
    running_per_year = power_per_year + maintenance_per_year
    upfront = hardware + maintenance_once
    self_hosted_total = upfront + years * running_per_year
    kilotokens = tokens_per_day * 365 * years / 1000
    api_per_year = tokens_per_day * 365 / 1000 * api_price_per_1k_tokens
    api_total = years * api_per_year
    savings = api_total - self_hosted_total
    monthly_gain = (api_per_year - running_per_year) / 12
    return {
        "hardware": hardware,
        "watts": watts,
        "kwh_per_year": watts / 1000 * HOURS_PER_YEAR,
        "power_per_year": power_per_year,
        "maintenance_per_year": maintenance_per_year,
        "maintenance_once": maintenance_once,
        "years": years,
        "power_total": years * power_per_year,
        "maintenance_total": maintenance_once + years * maintenance_per_year,
        "self_hosted_total": self_hosted_total,
        "api_per_year": api_per_year,
        "api_total": api_total,
        "savings": savings,
        "savings_percent": savings / api_total * 100 if api_total else None,
        "break_even_months": upfront / monthly_gain if monthly_gain > 0 else None,
        "self_hosted_per_1k_tokens": self_hosted_total / kilotokens if kilotokens else None,
        "api_price_per_1k_tokens": api_price_per_1k_tokens,
        "tokens_per_day": tokens_per_day,
    }


def _for_gpu(overrides, name):
    """An override for GPU ``name``: a number for all GPUs, or a dict keyed by the exact name
    or by words it contains ("rtx 4090"; the key with most words wins); None when none."""
    if not isinstance(overrides, dict):
        return overrides
    if name in overrides:
        return overrides[name]
    have = _gpu_specs.words(name)
    best = None
    for key, value in overrides.items():
        need = _gpu_specs.words(key)
        if need and need <= have and (best is None or len(need) > len(best[0])):
            best = (need, value)
    return best[1] if best else None


def _facts_by_index(gpus, host):
    facts = (gpus or {}).get(host) or {}
    return {g.get("index"): g for g in facts.get("gpus", [])}


def devices(plan, p, gpus=None):
    """One row per device of the plan: host, index, name, kind, busy, memory, and for GPUs
    the bandwidth, watts and price used, each with its source. ``gpus``: the hosts'
    ``teamllm_gpus`` facts (``{host: facts}``), for power limits and measured bandwidth; a
    device's own ``power_limit_w``/``memory_bandwidth_gbps`` keys are used first."""
    rows = []
    for host, spec in sorted((plan.get("placement") or {}).items()):
        facts = _facts_by_index(gpus, host)
        for d in spec.get("devices", []):
            row = {"host": host, "index": d.get("index"), "name": d["name"], "kind": d["kind"],
                   "busy": bool(d.get("instances")), "memory_total": d["memory_total"]}
            if d["kind"] != "gpu":
                row.update(bandwidth_gbps=p["ram_bandwidth_gbps"], bandwidth_source="input",
                           watts=0.0, watts_source="host", price=0.0, price_source="host")
                rows.append(row)
                continue
            fact = {**facts.get(d.get("index"), {}), **d}
            table = _gpu_specs.lookup(d["name"])
            row["bandwidth_gbps"], row["bandwidth_source"] = _throughput.gpu_bandwidth(
                d["name"], fact.get("memory_bandwidth_gbps"))
            watts = _for_gpu(p["gpu_watts"], d["name"])
            if not row["busy"]:
                row["watts"], row["watts_source"] = p["idle_gpu_watts"], "idle"
            elif watts is not None:
                row["watts"], row["watts_source"] = watts, "input"
            elif fact.get("power_limit_w"):
                row["watts"], row["watts_source"] = float(fact["power_limit_w"]), "power limit"
            elif table is not None:
                row["watts"], row["watts_source"] = table.watts, "table"
            else:
                row["watts"], row["watts_source"] = None, "unknown"
            price = _for_gpu(p["gpu_prices"], d["name"])
            if price is not None:
                row["price"], row["price_source"] = price, "input"
            elif table is not None:
                row["price"], row["price_source"] = table.price, f"table {_gpu_specs.PRICES_AS_OF}"
            else:
                row["price"], row["price_source"] = None, "unknown"
            rows.append(row)
    return rows


def figures(plan, params=None, gpus=None):
    """Everything the report states beyond the placement: ``inputs`` (as used), ``devices``
    (see ``devices``), ``instances`` (``{id: _throughput.decode(...) + host, name, gpus,
    how}``), ``capacity``, ``tco``, ``hosts``, ``warnings`` (what had to be guessed)."""
    p = inputs(params)
    rows = devices(plan, p, gpus)
    warnings = []
    for r in rows:
        if r["kind"] != "gpu":
            continue
        label = f"{r['host']} GPU {r['index']} ({r['name']})"
        if r["price"] is None:
            warnings.append(f"{label}: no price known, counted as 0; set llm_plan_costs.gpu_prices")
        if r["watts"] is None:
            warnings.append(f"{label}: no power figure known, counted as 0 W; set llm_plan_costs.gpu_watts")
        if r["bandwidth_gbps"] is None:
            warnings.append(f"{label}: memory bandwidth unknown, no throughput predicted; "
                            "declare memory_bandwidth_gbps in llm_gpus_declared")
    by_device = {(r["host"], r["index"] if r["kind"] == "gpu" else None): r for r in rows}
    instances = {}
    for host, spec in sorted((plan.get("placement") or {}).items()):
        for inst in spec.get("instances", []):
            if inst.get("device") == "cpu":
                bandwidths = [p["ram_bandwidth_gbps"]]
                bandwidth, how = bandwidths[0], "RAM"
            else:
                bandwidths = [by_device.get((host, g), {}).get("bandwidth_gbps") for g in inst["gpus"]]
                bandwidth, how = _throughput.effective_bandwidth(inst, bandwidths)
            result = _throughput.decode(inst, bandwidth, p["decode_efficiency"], p["context_fill"],
                                        p["tokens_per_second_per_user"],
                                        p["serving_seconds_per_sequence"])
            result.update(host=host, name=inst["name"], how=how)
            instances[inst["id"]] = result
    generating = [i for i in instances.values() if i["aggregate_full"] is not None]
    rate = sum(i["aggregate_full"] for i in generating)
    busy_seconds = p["busy_hours_per_day"] * 3600
    per_day = rate * busy_seconds
    capacity = {
        "instances": len(generating),
        "unknown": sorted(k for k, i in instances.items()
                          if i["kind"] == "llm" and i["aggregate_full"] is None),
        "tokens_per_second": rate,
        "tokens_per_busy_day": per_day,
        "users": sum(i["users"] for i in generating),
        "needed_tokens_per_second": p["tokens_per_day"] / busy_seconds,
        "covered": per_day >= p["tokens_per_day"] if generating else False,
        "load_percent": p["tokens_per_day"] / per_day * 100 if per_day else None,
    }
    hosts = sorted(plan.get("placement") or {})
    gpu_rows = [r for r in rows if r["kind"] == "gpu"]
    watts = len(hosts) * p["host_watts"] + sum(r["watts"] or 0 for r in gpu_rows)
    hardware = (sum(r["price"] or 0 for r in gpu_rows) + len(hosts) * p["hardware_per_host"]
                + p["extra_hardware"])
    result = tco(hardware, watts, p["electricity_per_kwh"], p["maintenance_per_year"], p["years"],
                 p["tokens_per_day"], p["api_price_per_1k_tokens"], p["maintenance_once"])
    return {"inputs": p, "devices": rows, "instances": instances, "capacity": capacity,
            "tco": result, "hosts": len(hosts), "gpus": len(gpu_rows),
            "busy_gpus": sum(r["busy"] for r in gpu_rows), "warnings": warnings}
