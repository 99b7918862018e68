"""Unit tests for _placement.explain: what does not fit, bounded in work, and the closest
candidate measured against the memory the plan leaves."""

from __future__ import annotations

import numpy as np

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P
from ansible_collections.teamllm.stack.plugins.module_utils._placement import explain as E
from ansible_collections.teamllm.stack.plugins.module_utils._placement import needs as N
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    GIB,
    Fake,
    gpus,
)
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement_candidates import (
    build,
)


def test_many_unplaced_models_are_analysed_up_to_the_limits_and_named():
    models = [{"name": "big", "alias": f"big-{i:03d}", "engine": "llama_cpp",
               "quantizations": ["Q8_0"]} for i in range(120)]
    result = P.plan(models, {"a": {"gpus": gpus(24, 24)}}, estimator=Fake(), reserve_gib=0,
                    allow_partial=True)
    assert result["placed"] == 1  # 40 GiB over both GPUs, once
    unplaced = result["unplaced"]
    assert len(unplaced) == 119
    detailed = [u for u in unplaced if "no single change to it fits" in u["message"]
                or "it would fit with" in u["message"]]
    assert len(detailed) == E.DETAIL_LIMIT
    analysed = [u for u in unplaced if u["short_bytes"] is not None]
    assert len(analysed) == E.ANALYSE_LIMIT
    assert all(u["message"].endswith("(not analysed)") for u in unplaced[E.ANALYSE_LIMIT:])
    assert result["explain_seconds"] < 2.0


def test_the_closest_group_is_the_one_with_the_most_memory_left():
    models = [{"name": "m32", "engine": "llama_cpp", "quantizations": ["F16"]}]
    requests, cluster, types = build(models, {"a": {"gpus": gpus(24, 12)}, "b": {"gpus": gpus(24)}})
    ctx = E.Context(cluster, N.Needs(Fake()), Fake.ENGINES, Fake(), requests, "binpack", {})
    free = cluster.capacity.copy()
    free[0] = 10 * GIB  # a's 24 GiB GPU mostly used; b's is the nearest for 16 GiB
    short, option, host, group, need = E.closest(ctx, requests[0], types.options[0], free)
    assert (host, group, short) == ("b", (2,), -8 * GIB)
    assert E.fits(ctx, requests[0], types.options[0], free)
    assert not E.fits(ctx, requests[0], types.options[0], free, exclude=(2,))
    free[2] = 15 * GIB
    short, option, host, group, need = E.closest(ctx, requests[0], types.options[0], free)
    assert short == 1 * GIB and option.size == 1 and np.isclose(need.claims[0], 16 * GIB)
