"""Unit tests for _placement.candidates: device classes, group shapes, candidate types."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._placement import candidates as C
from ansible_collections.teamllm.stack.plugins.module_utils._placement import inputs as I
from ansible_collections.teamllm.stack.plugins.module_utils._placement import needs as N
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    Fake,
    gpus,
)

GIB = I.GIB


def build(models, hosts, reserve=0, fake=None):
    fake = fake or Fake()
    devices, host_map = I.normalize_hosts(hosts, reserve * GIB, 0)
    requests = I.normalize_models(models, set(host_map), fake.ENGINES)
    cluster = C.Cluster(devices, host_map, {r.host for r in requests if r.host})
    return requests, cluster, C.Types(requests, cluster, N.Needs(fake), fake.ENGINES)


def test_identical_gpus_share_a_class_a_pinned_hosts_gpus_do_not():
    hosts = {"a": {"gpus": gpus(24, 24)}, "b": {"gpus": gpus(24, 12)}, "c": {"gpus": gpus(24)}}
    _, cluster, _ = build([{"name": "m32", "quantizations": ["Q4_K_M"]}], hosts)
    assert len(cluster.class_keys) == 2  # 24 GiB and 12 GiB
    assert cluster.class_count.tolist() == [4, 1]
    _, pinned, _ = build([{"name": "m32", "quantizations": ["Q4_K_M"], "host": "c"}], hosts)
    assert len(pinned.class_keys) == 3
    c_class = pinned.dev_class[pinned.hosts["c"].devices[0]]
    assert pinned.class_count[c_class] == 1


def test_shapes_hold_every_group_once_and_groups_match_the_hosts_blocks():
    hosts = {"a": {"gpus": gpus(24, 24, 24, 24)}, "b": {"gpus": gpus(24, 24)},
             "c": {"gpus": gpus(48, 24, 24)}}
    _, cluster, _ = build([{"name": "m32", "quantizations": ["Q4_K_M"]}], hosts)
    every = sorted(g for ids in cluster.shape_groups for g in ids.tolist())
    assert every == list(range(len(cluster.group_devs)))
    blocks = sorted(g for h in cluster.hosts.values() for size in h.blocks
                    for g in h.blocks[size])
    assert sorted(cluster.group_devs) == blocks
    for s, ids in enumerate(cluster.shape_groups):
        for row, g in zip(cluster.shape_devs[s].tolist(), ids.tolist(), strict=True):
            assert tuple(row) == cluster.group_devs[g]
            totals = tuple(cluster.devices[k].total for k in row)
            assert totals == cluster.shape_totals[s]


def test_a_worse_option_taking_as_much_memory_is_dominated():
    # the fake gives llama_cpp and ollama the same memory: ollama (ranked after) never shows
    _, _, types = build([{"name": "m32", "quantizations": ["Q8_0", "Q4_K_M"]}],
                        {"a": {"gpus": gpus(24)}})
    engines = {types.option[t].engine for t in range(len(types.profile))}
    assert "ollama" not in engines
    # Q4_K_M (4 GiB) takes less than Q8_0 (8 GiB): both kept, the better first
    quants = [types.option[t].quantization for t in types.of(0)]
    assert quants == ["Q8_0", "Q4_K_M"]
    assert types.rank[types.of(0)].tolist() == [1, 0]


def test_options_too_big_for_an_empty_group_are_not_candidates():
    _, _, types = build([{"name": "big", "engine": "llama_cpp", "quantizations": ["Q8_0", "Q4_K_M"]}],
                        {"a": {"gpus": gpus(24)}})
    assert [types.option[t].quantization for t in types.of(0)] == ["Q4_K_M"]  # 40 GiB > 24


def test_requests_with_one_profile_share_their_types():
    models = [{"name": "m32", "alias": f"m{i}", "quantizations": ["Q4_K_M"]} for i in range(4)]
    _, _, types = build(models, {"a": {"gpus": gpus(24, 24)}})
    assert len(types.members) == 1
    assert all(types.of(r) == types.of(0) for r in range(4))


@pytest.mark.parametrize("seed", range(5))
def test_count_is_the_number_of_expanded_candidates(seed):
    rng = random.Random(seed)
    hosts = {f"h{i}": {"gpus": gpus(*rng.choices([12, 16, 24, 48], k=rng.randint(1, 4)))}
             for i in range(4)}
    models = [{"name": rng.choice(["m32", "big", "ctx"]), "alias": f"x{i}",
               "quantizations": ["Q8_0", "Q4_K_M"], "replicas": rng.randint(1, 2),
               "host": rng.choice([None, None, "h0"])} for i in range(6)]
    _, cluster, types = build(models, hosts)
    reqs, tids, groups = types.expand(cluster)
    assert types.count() == len(reqs)
    # every candidate fits its empty group and uses a group of its type's shape
    for r, t, g in zip(reqs.tolist(), tids.tolist(), groups.tolist(), strict=True):
        assert cluster.group_shape[g] == types.shape[t]
        assert types.of_request[r] == types.profile[t]
        for k, claim in zip(cluster.group_devs[g], types.claims[t], strict=False):
            assert claim <= cluster.capacity[k]
        if types.requests[r].host:
            assert cluster.devices[cluster.group_devs[g][0]].host == types.requests[r].host
    mask = types.rank == 0
    assert types.count(mask) == len(types.expand(cluster, mask)[0])


def test_score_puts_one_more_replica_above_every_quality_step():
    models = [{"name": "m32", "alias": f"m{i}", "quantizations": ["Q8_0", "Q4_K_M"]}
              for i in range(3)]
    _, cluster, types = build(models, {"a": {"gpus": gpus(24)}})
    best, worst = types.of(0)[0], types.of(0)[-1]
    two_best = [(0, best, 0), (1, best, 0)]
    three_worst = [(0, worst, 0), (1, worst, 0), (2, worst, 0)]
    assert types.score(three_worst)[2] > types.score(two_best)[2]
    assert types.score(two_best)[:2] == (2, 2)
    assert np.all(types.volume[types.of(0)] == types.claims[types.of(0)].sum(axis=1))
