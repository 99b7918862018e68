#!/usr/bin/env python3
"""Summarise measure_throughput.sh's `repeat` phase: the role's defaults against the hand-tuned server.

Reads server.jsonl records labelled r<round>-defaults-np<N> and r<round>-tuned-np<N> and prints,
per stream count, the median and range of the aggregate tokens/s of each over the rounds, and
the paired difference (defaults against tuned in the same round): median and range.

    python3 tests/gpu/repeat_report.py tests/gpu/results/<dir>
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys

LABEL = re.compile(r"^r(?P<round>\d+)-(?P<kind>defaults|tuned|variant)-np(?P<slots>\d+)$")


def collect(records: list[dict]) -> dict[int, dict[int, dict[str, float]]]:
    """streams -> round -> {'defaults': tps, 'tuned': tps} from the repeat phase's records."""
    out: dict[int, dict[int, dict[str, float]]] = {}
    for rec in records:
        m = LABEL.match(rec.get("label", ""))
        if not m or rec.get("errors") or not rec.get("aggregate_tps"):
            continue
        out.setdefault(int(rec["streams"]), {}).setdefault(int(m["round"]), {})[m["kind"]] = float(rec["aggregate_tps"])
    return out


def summary(rounds: dict[int, dict[str, float]]) -> dict:
    paired = [r for r in rounds.values() if "defaults" in r and "tuned" in r]
    diffs = [r["defaults"] / r["tuned"] - 1 for r in paired]
    d = [r["defaults"] for r in paired]
    t = [r["tuned"] for r in paired]
    variant = [r["variant"] / r["tuned"] - 1 for r in rounds.values() if "variant" in r and "tuned" in r]
    return {"rounds": len(paired),
            "variant_diff": (statistics.median(variant), min(variant), max(variant)) if variant else None,
            "defaults": (statistics.median(d), min(d), max(d)) if d else None,
            "tuned": (statistics.median(t), min(t), max(t)) if t else None,
            "diff": (statistics.median(diffs), min(diffs), max(diffs)) if diffs else None,
            "median_ratio": statistics.median(d) / statistics.median(t) - 1 if d else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    args = ap.parse_args()
    with open(os.path.join(args.results, "server.jsonl")) as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    by_streams = collect(records)
    if not by_streams:
        print("no records of the repeat phase", file=sys.stderr)
        return 1
    print("| streams | rounds | role's defaults, slots = streams: median (min-max) tok/s | "
          "tuned by hand: median (min-max) | paired difference: median (min to max) | medians' difference | "
          "variant against tuned, paired: median (min to max) |")
    print("|---:|---:|---|---|---|---:|---|")
    for n in sorted(by_streams):
        s = summary(by_streams[n])
        if not s["rounds"]:
            continue
        dm, dlo, dhi = s["defaults"]
        tm, tlo, thi = s["tuned"]
        pm, plo, phi = s["diff"]
        variant = "-"
        if s["variant_diff"]:
            vm, vlo, vhi = s["variant_diff"]
            variant = f"{100 * vm:+.1f} % ({100 * vlo:+.1f} % to {100 * vhi:+.1f} %)"
        print(f"| {n} | {s['rounds']} | {dm:.0f} ({dlo:.0f}-{dhi:.0f}) | {tm:.0f} ({tlo:.0f}-{thi:.0f}) | "
              f"{100 * pm:+.1f} % ({100 * plo:+.1f} % to {100 * phi:+.1f} %) | {100 * s['median_ratio']:+.1f} % | {variant} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
