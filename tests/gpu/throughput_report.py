#!/usr/bin/env python3
"""Tables from tests/gpu/measure_throughput.sh's raw results (Markdown on stdout).

    python3 tests/gpu/throughput_report.py tests/gpu/results/throughput-2026-12-01 [--json eff.json]

Decode efficiency, per llama-bench row (tg N at depth D):
  bytes per token = weight bytes read per token (every tensor but token_embd, which llama.cpp
                    keeps in host memory on full offload; of MoE experts only the used ones)
                  + KV bytes per context token x the mean context of the N generated tokens
                    (D + (N + 1) / 2)
  efficiency      = tok/s x bytes per token / bandwidth
against the datasheet bandwidth (4.8 TB/s for the H200), the bandwidth NVML's maximum memory
clock and bus width give (2 transfers per clock), and the read bandwidth a reduction reached on
the same GPU. The collection's constant is the median against the datasheet figure (the number
the plan report is given per GPU model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

SPEC_BYTES_S = {"NVIDIA H200": 4.8e12, "NVIDIA H100 80GB HBM3": 3.35e12}


def load_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip().startswith("{")]


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def efficiency_rows(bench: list[dict], models: dict, gpu: dict) -> list[dict]:
    spec = SPEC_BYTES_S.get(str(gpu.get("name")), 4.8e12)
    nvml = gpu.get("bandwidth_from_clock_and_bus_bytes_s")
    read = gpu.get("read_bytes_s")
    rows = []
    for rec in bench:
        m = models[rec["model_name"]]
        n_gen, depth = int(rec["n_gen"]), int(rec["n_depth"])
        if n_gen <= 0:
            continue
        mean_ctx = depth + (n_gen + 1) / 2
        kv = m["kv_bytes_per_ctx_token"] * mean_ctx
        total = m["weight_bytes_read_per_token"] + kv
        tps = float(rec["avg_ts"])
        achieved = tps * total
        rows.append({
            "model": rec["model_name"], "weights": m.get("weights"), "n_gen": n_gen,
            "depth": depth, "tps": tps, "tps_stddev": float(rec.get("stddev_ts", 0)),
            "weight_bytes": m["weight_bytes_read_per_token"], "kv_bytes": kv,
            "bytes_per_token": total, "achieved_bytes_s": achieved,
            "eff_spec": achieved / spec, "eff_nvml": achieved / nvml if nvml else None,
            "eff_read": achieved / read if read else None, "spec_bytes_s": spec,
        })
    return rows


def efficiency_section(rows: list[dict]) -> tuple[list[str], dict]:
    out = ["| model (weights) | tg @ depth | tok/s | weight bytes/token | KV bytes/token | "
           "achieved GB/s | efficiency (datasheet) | (NVML clock x bus) | (measured read) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(
            f"| {r['model']} ({r['weights']}) | tg{r['n_gen']} @ {r['depth']} | "
            f"{r['tps']:.1f} ± {r['tps_stddev']:.1f} | {r['weight_bytes'] / 1e9:.3f} GB | "
            f"{r['kv_bytes'] / 1e6:.1f} MB | {r['achieved_bytes_s'] / 1e9:.0f} | "
            f"{pct(r['eff_spec'])} | {pct(r['eff_nvml']) if r['eff_nvml'] else '-'} | "
            f"{pct(r['eff_read']) if r['eff_read'] else '-'} |")
    # the constant: one row per model shape and depth (the zero-weight 8B Q8_0 duplicate of the
    # random one is a check of the zero files, not a second sample)
    used = [r for r in rows if not (r["weights"] == "zero" and
                                    any(o["model"] + "-zero" == r["model"] for o in rows))]
    summary = {}
    if used:
        effs = sorted(r["eff_spec"] for r in used)
        summary = {
            "efficiency_median": statistics.median(effs), "efficiency_min": effs[0],
            "efficiency_max": effs[-1], "rows": len(effs),
            "by_depth": {
                str(d): statistics.median(r["eff_spec"] for r in used if r["depth"] == d)
                for d in sorted({r["depth"] for r in used})},
            "nvml_median": statistics.median(r["eff_nvml"] for r in used if r["eff_nvml"])
            if any(r["eff_nvml"] for r in used) else None,
            "read_median": statistics.median(r["eff_read"] for r in used if r["eff_read"])
            if any(r["eff_read"] for r in used) else None,
        }
        if len({r["bytes_per_token"] for r in used}) >= 2:
            # two terms instead of one factor: time per token = fixed + bytes / bandwidth
            xs = [r["bytes_per_token"] for r in used]
            ys = [1 / r["tps"] for r in used]
            mx, my = statistics.fmean(xs), statistics.fmean(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
            fixed = my - slope * mx
            worst = max(abs((fixed + slope * x) * r["tps"] - 1) for x, r in zip(xs, used))
            summary["fit"] = {"fixed_s_per_token": fixed, "bandwidth_bytes_s": 1 / slope,
                              "bandwidth_fraction_of_datasheet": 1 / slope / used[0]["spec_bytes_s"],
                              "worst_relative_error": worst}
        out.append("")
        if "fit" in summary:
            f = summary["fit"]
            out.append(
                f"Two-term fit over the same rows (time per token = fixed + bytes / bandwidth, least "
                f"squares on 1/tok/s): fixed {f['fixed_s_per_token'] * 1e3:.3f} ms per token, bandwidth "
                f"{f['bandwidth_bytes_s'] / 1e12:.2f} TB/s ({pct(f['bandwidth_fraction_of_datasheet'])} of "
                f"the datasheet), worst row off by {pct(f['worst_relative_error'])}.")
            out.append("")
        out.append(
            f"Efficiency against the datasheet bandwidth over {len(effs)} rows (zero-weight 8B "
            f"duplicate left out): median **{pct(summary['efficiency_median'])}**, range "
            f"{pct(effs[0])} to {pct(effs[-1])}; by depth: " + ", ".join(
                f"{d}: {pct(v)}" for d, v in summary["by_depth"].items()) + ".")
    return out, summary


def server_section(server: list[dict], batched: list[dict], bench_rows: list[dict]) -> tuple[list[str], list[dict]]:
    by = {}
    for rec in server:
        by[(rec["label"], rec["streams"])] = rec
    streams = sorted({s for _, s in by})
    s_tg = {int(b["pl"]): float(b["speed_tg"]) for b in batched}
    tg1 = next((r["tps"] for r in bench_rows
                if r["model"] == "llama-3.1-8b-q8_0" and r["depth"] == 0), None)
    out = ["| streams | role defaults: aggregate tok/s | per stream | best tuned server | "
           "aggregate tok/s | per stream | defaults vs best | llama-batched-bench S_TG "
           "(no sampling, no HTTP) |", "|---:|---:|---:|---|---:|---:|---:|---:|"]
    table = []
    for n in streams:
        d = by.get(("defaults", n))
        tuned = [r for (lab, s), r in by.items() if s == n and lab.startswith("tuned")]
        best = max(tuned, key=lambda r: r["aggregate_tps"] or 0, default=None)
        if not d or not best:
            continue
        diff = (d["aggregate_tps"] - best["aggregate_tps"]) / best["aggregate_tps"]
        bb = s_tg.get(n)
        extra = f"{bb:.0f}" if bb else "-"
        if n == 1 and tg1:
            extra += f" (llama-bench tg128: {tg1:.0f})"
        out.append(f"| {n} | {d['aggregate_tps']:.0f} | {d['per_stream_tps']:.1f} | "
                   f"{best['label']} | {best['aggregate_tps']:.0f} | {best['per_stream_tps']:.1f} | "
                   f"{100 * diff:+.1f} % | {extra} |")
        table.append({"streams": n, "defaults": d["aggregate_tps"], "best": best["aggregate_tps"],
                      "best_label": best["label"], "diff": diff,
                      "defaults_per_stream": d["per_stream_tps"],
                      "best_per_stream": best["per_stream_tps"], "batched_s_tg": bb})
    out.append("")
    out.append("Every configuration measured (aggregate tok/s; per-stream tok/s = completion tokens /"
               " request latency, median; server decode = the server's own timings, median):")
    out.append("")
    out.append("| configuration | streams | aggregate tok/s | per stream | server decode tok/s | "
               "errors | GPU MiB | settings |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for (lab, n), r in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        settings = r.get("server_args") or ""
        if r.get("env"):
            env = [e for e in r["env"].split() if not e.startswith(("LLAMA_ARG_MODEL", "LLAMA_ARG_HOST",
                                                                    "LLAMA_ARG_PORT", "LLAMA_ARG_ALIAS"))]
            settings = " ".join(env) + (" " + settings if settings else "")
        settings = settings.replace("/tmp/models/", "")
        out.append(f"| {lab} | {n} | {r['aggregate_tps']:.0f} | {r['per_stream_tps']:.1f} | "
                   f"{r.get('decode_tps_median') or '-'} | {r['errors']} | {r.get('gpu_mib') or '-'} | "
                   f"`{settings.strip()}` |")
    return out, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--json", help="write the summary (efficiency, server table) here")
    args = ap.parse_args()
    d = args.results
    gpu = json.load(open(os.path.join(d, "gpu.json"))) if os.path.exists(os.path.join(d, "gpu.json")) else {}
    models = json.load(open(os.path.join(d, "models.json")))
    bench = load_jsonl(os.path.join(d, "bench.jsonl"))
    rows = efficiency_rows(bench, models, gpu)
    lines = ["## Decode efficiency (llama-bench, batch 1)", ""]
    eff_lines, eff = efficiency_section(rows)
    lines += eff_lines
    srv_lines, srv = server_section(load_jsonl(os.path.join(d, "server.jsonl")),
                                    load_jsonl(os.path.join(d, "batched.jsonl")), rows)
    lines += ["", "## The role's defaults against llama.cpp's best (Llama 3.1 8B Q8_0)", ""] + srv_lines
    batched = load_jsonl(os.path.join(d, "batched.jsonl"))
    if batched:
        lines += ["", "## llama-batched-bench (8B Q8_0, prompt 40, 128 generated, -fa on)", "",
                  "| parallel sequences | S_TG tok/s (aggregate decode) | per sequence |",
                  "|---:|---:|---:|"]
        lines += [f"| {b['pl']} | {b['speed_tg']:.0f} | {b['speed_tg'] / b['pl']:.1f} |" for b in batched]
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"efficiency": eff, "rows": rows, "server": srv}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
