# Copyright (c) teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""What the plan report needs to know about a GPU model and cannot read from it: peak memory
bandwidth, board power and a purchase price, looked up by the name NVML reports.

Private to the collection; standard library only.

    spec = lookup("NVIDIA GeForce RTX 4090")   # GpuSpec(key="rtx 4090", bandwidth_gbps=1008, ...)
    lookup("NVIDIA A100 80GB PCIe").bandwidth_gbps     # 1935
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The date of the prices below; the report prints it beside them.
PRICES_AS_OF = "2025-06"


@dataclass(frozen=True)
class GpuSpec:
    key: str  # the table's name for the card
    bandwidth_gbps: float  # peak memory bandwidth, GB/s (10^9 bytes/s)
    watts: float  # board power (TDP/TGP) at the default power limit
    price: float  # USD, street price as of PRICES_AS_OF (second-hand where teams buy them so)


# Bandwidth and board power: the vendor's spec sheets (NVIDIA product pages and datasheets; for
# GeForce cards the "full specs" pages: memory interface x data rate). Prices: approximate US
# street prices in PRICES_AS_OF, second-hand (eBay sold listings) for cards no longer sold new
# (RTX 3090, A6000, A100), retail otherwise; they move month to month: override them with
# your quotes (llm_plan_costs.gpu_prices). Each key's words must all appear in the normalised name;
# the entry with the most words wins, so "rtx 3090 ti" beats "rtx 3090".
_TABLE = (
    # key,                  GB/s,  W,   USD
    ("rtx 3060", 360, 170, 250),
    ("rtx 3090", 936, 350, 800),
    ("rtx 3090 ti", 1008, 450, 950),
    ("rtx 4060 ti", 288, 165, 450),
    ("rtx 4070 ti super", 672, 285, 800),
    ("rtx 4080", 717, 320, 1000),
    ("rtx 4080 super", 736, 320, 1000),
    ("rtx 4090", 1008, 450, 1800),
    ("rtx 5090", 1792, 575, 2600),
    ("rtx a4000", 448, 140, 600),
    ("rtx a5000", 768, 230, 1400),
    ("rtx a6000", 768, 300, 4000),
    ("rtx 6000 ada", 960, 300, 6800),
    ("t4", 320, 70, 700),
    ("a10", 600, 150, 1800),
    ("l4", 300, 72, 2500),
    ("l40", 864, 300, 7000),
    ("l40s", 864, 350, 8000),
    ("v100", 900, 300, 800),
    ("a100", 1555, 250, 6000),  # 40 GB PCIe (the SXM4 40 GB has the same bandwidth)
    ("a100 80gb", 1935, 300, 12000),  # 80 GB PCIe
    ("a100 sxm4 80gb", 2039, 400, 13000),
    ("h100", 2000, 350, 25000),  # PCIe; NVML calls the SXM card "H100 80GB HBM3"
    ("h100 hbm3", 3350, 700, 30000),
    ("h100 sxm", 3350, 700, 30000),
    ("h100 nvl", 3900, 400, 28000),
    ("h200", 4800, 700, 32000),  # SXM; the H200 NVL has the same 4.8 TB/s at 600 W
    ("h200 nvl", 4800, 600, 32000),
)
TABLE = {key: GpuSpec(key, float(bw), float(w), float(usd)) for key, bw, w, usd in _TABLE}

_NOISE = {"nvidia", "geforce", "tesla", "quadro", "generation"}


def words(name: str) -> set[str]:
    """The words of a GPU name, lower case, without vendor words: "NVIDIA A100-SXM4-80GB" gives
    {"a100", "sxm4", "80gb"}; "RTX 4060 Ti 16GB" gives {"rtx", "4060", "ti", "16gb"}."""
    return {w for w in re.split(r"[\s\-_/,()]+", str(name or "").lower()) if w} - _NOISE


def lookup(name: str) -> GpuSpec | None:
    """The table's entry for a GPU name (as NVML or the inventory spells it), or None."""
    have = words(name)
    best = None
    for key, spec in TABLE.items():
        need = set(key.split())
        if need <= have and (best is None or len(need) > len(best.key.split())):
            best = spec
    return best
