"""Unit tests for _placement.greedy: best fit, worst fit, distinct GPUs, upgrades."""

from __future__ import annotations

import random

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._placement import greedy as G
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    Fake,
    gpus,
)
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement_candidates import (
    GIB,
    build,
)


def where(cluster, chosen):
    return [(cluster.devices[cluster.group_devs[g][0]].host, cluster.group_devs[g])
            for _, _, g in chosen]


def test_binpack_takes_the_tightest_gpu():
    sizes = {"s4": 4}
    _, cluster, types = build([{"name": "s4", "quantizations": ["Q4_K_M"]}],
                              {"a": {"gpus": gpus(24)}, "b": {"gpus": gpus(8)},
                               "c": {"gpus": gpus(12)}}, fake=Fake(sizes))
    (host, _), = where(cluster, G.greedy(types, cluster, "binpack"))
    assert host == "b"


def test_binpack_breaks_ties_towards_a_host_already_in_use():
    sizes = {"s8": 8, "s6": 6}
    models = [{"name": "s8", "quantizations": ["Q4_K_M"]}, {"name": "s6", "quantizations": ["Q4_K_M"]}]
    _, cluster, types = build(models, {"a": {"gpus": gpus(16)}, "b": {"gpus": gpus(10, 16)}},
                              fake=Fake(sizes))
    placed = where(cluster, G.greedy(types, cluster, "binpack"))
    # s8 takes b's 10 GiB GPU (tightest); s6 leaves 10 GiB on a's or b's 16: b is in use
    assert [h for h, _ in placed] == ["b", "b"]


def test_spread_puts_replicas_on_distinct_hosts_then_the_emptiest_gpu():
    models = [{"name": "m32", "quantizations": ["Q4_K_M"], "replicas": 3}]
    _, cluster, types = build(models, {"a": {"gpus": gpus(24, 24)}, "b": {"gpus": gpus(24)},
                                       "c": {"gpus": gpus(24)}})
    placed = where(cluster, G.greedy(types, cluster, "spread"))
    assert sorted(h for h, _ in placed) == ["a", "b", "c"]


def test_replicas_never_share_a_gpu_even_with_room():
    models = [{"name": "m32", "quantizations": ["Q4_K_M"], "replicas": 3}]
    _, cluster, types = build(models, {"a": {"gpus": gpus(48, 48)}})
    placed = where(cluster, G.greedy(types, cluster, "binpack"))
    assert len(placed) == 2
    assert {d for _, devs in placed for d in devs} == {0, 1}


@pytest.mark.parametrize("policy", ["binpack", "spread"])
@pytest.mark.parametrize("seed", range(6))
def test_plans_never_exceed_a_device_and_keep_replicas_apart(policy, seed):
    rng = random.Random(seed)
    hosts = {f"h{i}": {"gpus": gpus(*rng.choices([8, 12, 16, 24], k=rng.randint(1, 3)))}
             for i in range(3)}
    models = [{"name": rng.choice(["m32", "big", "ctx"]), "alias": f"x{i}",
               "quantizations": rng.choice([["Q8_0", "Q4_K_M"], ["Q4_K_M"]]),
               "replicas": rng.randint(1, 3)} for i in range(8)]
    _, cluster, types = build(models, hosts, reserve=1)
    chosen = G.greedy(types, cluster, policy)
    used = [0] * len(cluster.devices)
    per_request = {}
    for r, t, g in chosen:
        for k, claim in zip(cluster.group_devs[g], types.claims[t], strict=False):
            used[k] += int(claim)
            assert k not in per_request.setdefault(r, set())
            per_request[r].add(k)
    assert all(u <= cluster.capacity[k] for k, u in enumerate(used))
    assert all(len([c for c in chosen if c[0] == r]) <= types.requests[r].replicas
               for r in per_request)


def test_upgrade_raises_quality_only_where_memory_is_left():
    models = [{"name": "m32", "alias": a, "engine": "llama_cpp", "quantizations": ["Q8_0", "Q4_K_M"]}
              for a in ("x", "y")]
    _, cluster, types = build(models, {"a": {"gpus": gpus(13)}})
    worst = [(r, types.of(r)[-1]) for r in range(2)]  # both at Q4_K_M: 8 GiB of 13
    chosen, state = G.pack(types, cluster, "binpack", [(r, [[t]]) for r, t in worst])
    assert len(chosen) == 2
    upgraded = G.upgrade(types, cluster, "binpack", chosen, state)
    quants = sorted(types.option[t].quantization for _, t, _ in upgraded)
    assert quants == ["Q4_K_M", "Q8_0"]  # 8 + 4 = 12 GiB fits 13; 8 + 8 does not
    assert state.free[0] == 1 * GIB
