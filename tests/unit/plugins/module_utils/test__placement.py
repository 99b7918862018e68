"""Unit tests for plugins/module_utils/_placement.py, with a fake estimator of round numbers."""

from __future__ import annotations

import copy
import random
import sys

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P
from ansible_collections.teamllm.stack.plugins.module_utils._estimator import Estimate, EstimateError

GIB = P.GIB


class FakeError(EstimateError):
    pass


class Fake:
    """weights (GiB) per model and quantization; KV = context x parallel x MiB per token;
    each GPU of a group takes weights / n + KV / n. No overheads: numbers stay exact."""

    ENGINES = ("llama_cpp", "ollama", "vllm", "localai")
    VLLM = {"BF16", "AWQ"}
    MODELS = {
        # name: (heads, vocab, {quant: GiB}, KV MiB per token)
        "m32": (32, 128256, {"F16": 16, "Q8_0": 8, "Q4_K_M": 4, "BF16": 16, "AWQ": 5}, 0),
        "big": (32, 128256, {"Q8_0": 40, "Q4_K_M": 20, "BF16": 40, "AWQ": 12}, 0),
        "huge": (32, 128256, {"Q4_K_M": 70, "BF16": 70}, 0),
        "ctx": (8, 32000, {"Q8_0": 8, "Q4_K_M": 4}, 1),
    }

    def __init__(self, sizes=None):
        for name, gib in (sizes or {}).items():
            self.MODELS = dict(self.MODELS)
            self.MODELS[name] = (32, 128256, {"Q4_K_M": gib}, 0)
        self.calls = 0

    def valid_tp_sizes(self, model, max_gpus, engine="vllm"):
        heads, vocab = self.MODELS[model][:2]
        if engine != "vllm":
            return list(range(1, max_gpus + 1))
        return [n for n in range(1, max_gpus + 1) if heads % n == 0 and vocab % n == 0]

    def estimate(self, model, engine, quantization, context, parallel=1, tp=1,
                 gpu_total_bytes=None, n_gpu_layers=None, **opts):
        self.calls += 1
        if model not in self.MODELS:
            raise FakeError(f"model {model} unknown")
        _, _, weights, kv_mib = self.MODELS[model]
        kv = context * parallel * kv_mib * 1024 * 1024
        if quantization not in weights or (engine == "vllm") != (quantization in self.VLLM):
            raise FakeError(f"{engine} cannot run {model} {quantization}")
        if engine == "vllm" and tp not in self.valid_tp_sizes(model, tp):
            raise FakeError(f"tp {tp} does not divide the heads of {model}")
        total = weights[quantization] * GIB + kv
        if n_gpu_layers == 0:
            return Estimate(engine, model, quantization, context, parallel, 1, (0,), int(total), {}, None)
        per = int(total // tp)
        util = round(per / gpu_total_bytes, 2) if engine == "vllm" and gpu_total_bytes else None
        return Estimate(engine, model, quantization, context, parallel, tp, (per,) * tp, 0, {}, util)


def gpus(*sizes, name=None):
    return {"gpus": [
        {"index": i, "uuid": f"GPU-{i}", "name": name or f"GPU {gib} GiB",
         "memory_total": int(gib * GIB), "memory_free": int(gib * GIB)}
        for i, gib in enumerate(sizes)
    ], "source": "declared", "reason": None}


def run(models, hosts, fake=None, **kwargs):
    kwargs.setdefault("reserve_gib", 0)
    return P.plan(models, hosts, estimator=fake or Fake(), **kwargs)


def instances(result):
    return [(host, i) for host, spec in result["placement"].items() for i in spec["instances"]]


def strip_timing(result):
    result = copy.deepcopy(result)
    for key in [k for k in result if k.endswith("seconds")]:
        result.pop(key)
    return result


# ------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("solver", ["greedy", "highs"])
@pytest.mark.parametrize("policy", ["binpack", "spread"])
def test_same_input_same_plan_whatever_the_order(solver, policy):
    models = [
        {"name": "m32", "quantizations": ["Q8_0", "Q4_K_M"], "replicas": 2},
        {"name": "big", "engine": "vllm", "quantizations": ["AWQ"]},
        {"name": "ctx", "engine": "llama_cpp", "quantizations": ["Q8_0"], "context": 4096},
        {"name": "m32", "alias": "m32-fast", "engine": "vllm", "quantizations": ["AWQ"]},
    ]
    hosts = {"n1": {"gpus": gpus(24, 24)}, "n2": {"gpus": gpus(16)}, "n3": {"gpus": gpus(24)}}
    first = strip_timing(run(models, hosts, solver=solver, policy=policy))
    for seed in range(3):
        rng = random.Random(seed)
        shuffled = models[:]
        rng.shuffle(shuffled)
        names = list(hosts)
        rng.shuffle(names)
        again = strip_timing(run(shuffled, {n: hosts[n] for n in names}, solver=solver,
                                 policy=policy))
        assert again == first


def test_no_ports_or_routes_the_deployment_plan_assigns_them():
    models = [{"name": "m32", "alias": f"m{i}", "quantizations": ["Q4_K_M"]} for i in range(5)]
    result = run(models, {"a": {"gpus": gpus(24)}, "b": {"gpus": gpus(24)}})
    assert "routes" not in result
    placed = instances(result)
    assert len(placed) == 5
    assert all("port" not in inst for _, inst in placed)
    assert sorted(inst["name"] for _, inst in placed) == [f"m{i}" for i in range(5)]


# ------------------------------------------------------------------------ tensor parallelism


@pytest.mark.parametrize("rig, expected_tp", [(3, 2), (6, 4)])
@pytest.mark.parametrize("solver", ["greedy", "highs"])
def test_vllm_never_gets_tp_that_does_not_divide_the_heads(rig, expected_tp, solver):
    # big BF16 = 40 GiB: two 24 GiB GPUs hold it; huge BF16 = 70 GiB needs four.
    model = "big" if rig == 3 else "huge"
    result = run([{"name": model, "engine": "vllm", "quantizations": ["BF16"]}],
                 {"rig": {"gpus": gpus(*([24] * rig))}}, solver=solver)
    (_, inst), = instances(result)
    assert inst["tensor_parallel_size"] == expected_tp
    assert inst["tensor_parallel_size"] not in (3, 6)
    assert len(inst["gpus"]) == expected_tp
    assert inst["settings"]["tensor_parallel_size"] == expected_tp


def test_vllm_refused_when_only_a_non_dividing_tp_would_fit():
    # 70 GiB over three 24 GiB GPUs would need TP=3, which 32 heads do not allow
    with pytest.raises(P.PlacementError, match="huge"):
        run([{"name": "huge", "engine": "vllm", "quantizations": ["BF16"]}],
            {"rig": {"gpus": gpus(24, 24, 24)}})


def test_llama_cpp_splits_layers_over_three_gpus():
    result = run([{"name": "huge", "engine": "llama_cpp", "quantizations": ["Q4_K_M"]}],
                 {"rig": {"gpus": gpus(24, 24, 24)}})
    (_, inst), = instances(result)
    assert inst["gpus"] == [0, 1, 2]
    assert inst["settings"]["split_mode"] == "layer"
    assert inst["settings"]["tensor_split"] == [0.3333, 0.3333, 0.3333]


# ------------------------------------------------------------------------------- mixed VRAM


@pytest.mark.parametrize("sizes, groupable", [
    ((24, 24), True),
    ((24, 22), True),     # 22 >= 0.9 x 24
    ((24, 21), False),    # 21 < 21.6
    ((24, 12), False),
    ((48, 24, 24), True),  # the two 24s pair up, the 48 stays alone
])
def test_gpus_grouped_only_when_near_equal(sizes, groupable):
    devices, hosts = P.normalize_hosts({"h": {"gpus": gpus(*sizes)}}, 0, 0)
    pairs = hosts["h"].blocks.get(2, ())
    for pair in pairs:
        small, large = sorted(devices[k].total for k in pair)
        assert small >= 0.9 * large
    assert bool(pairs) is groupable


def test_mixed_vram_model_needing_two_gpus_is_refused_on_24_plus_12():
    # big Q8_0 is 40 GiB: 24 + 12 GiB would hold 36 only anyway, and 24 + 21 are not grouped
    with pytest.raises(P.PlacementError, match="big"):
        run([{"name": "big", "engine": "llama_cpp", "quantizations": ["Q8_0"]}],
            {"h": {"gpus": gpus(24, 21)}})
    result = run([{"name": "big", "engine": "llama_cpp", "quantizations": ["Q8_0"]}],
                 {"h": {"gpus": gpus(24, 22)}})
    (_, inst), = instances(result)
    assert inst["gpus"] == [0, 1]


# ------------------------------------------------------------------------------ co-location


@pytest.mark.parametrize("solver", ["greedy", "highs"])
def test_instances_sharing_a_gpu_fit_together(solver):
    models = [{"name": "m32", "alias": f"m{i}", "quantizations": ["Q8_0"]} for i in range(5)]
    # five 8 GiB instances on two hosts of one 24 GiB GPU, 1 GiB reserved: two per GPU fit
    with pytest.raises(P.PlacementError) as err:
        run(models, {"h": {"gpus": gpus(24)}, "i": {"gpus": gpus(24)}}, reserve_gib=1,
            solver=solver)
    result = err.value.result
    for spec in result["placement"].values():
        for device in spec["devices"]:
            assert device["planned"] <= device["memory_total"] - device["reserved"]
            assert len(device["instances"]) <= 2
    assert len(instances(result)) == 4
    assert len(err.value.unplaced) == 1


def test_vllm_fractions_on_one_gpu_sum_below_one():
    models = [{"name": "m32", "alias": f"v{i}", "engine": "vllm", "quantizations": ["AWQ"]}
              for i in range(4)]
    result = run(models, {"h": {"gpus": gpus(24)}}, reserve_gib=1)
    placed = instances(result)
    assert len(placed) == 4
    assert sum(i["gpu_memory_utilization"] for _, i in placed) < 1
    for _, inst in placed:
        assert inst["gpu_memory_utilization"] * 24 * GIB >= 5 * GIB


# -------------------------------------------------------------------------------- pinning


@pytest.mark.parametrize("solver", ["greedy", "highs"])
def test_pinned_model_goes_to_its_host(solver):
    models = [{"name": "m32", "quantizations": ["Q4_K_M"], "host": "b"},
              {"name": "ctx", "quantizations": ["Q4_K_M"]}]
    result = run(models, {"a": {"gpus": gpus(24)}, "b": {"gpus": gpus(8)}}, solver=solver)
    assert [i["name"] for i in result["placement"]["b"]["instances"]] == ["m32"]


def test_pinned_to_an_unknown_host_is_an_input_error():
    with pytest.raises(P.PlacementInputError, match="pinned host 'zz'"):
        run([{"name": "m32", "quantizations": ["Q4_K_M"], "host": "zz"}], {"a": {"gpus": gpus(24)}})


# -------------------------------------------------------------------------- binpack / spread


@pytest.mark.parametrize("solver", ["greedy", "highs"])
def test_binpack_fills_one_gpu_spread_uses_all_hosts(solver):
    models = [{"name": "m32", "alias": f"m{i}", "quantizations": ["Q4_K_M"]} for i in range(3)]
    hosts = {"a": {"gpus": gpus(24)}, "b": {"gpus": gpus(24)}, "c": {"gpus": gpus(24)}}
    packed = run(models, hosts, policy="binpack", solver=solver)
    assert {h for h, _ in instances(packed)} == {"a"}
    spread = run(models, hosts, policy="spread", solver=solver)
    assert sorted(h for h, _ in instances(spread)) == ["a", "b", "c"]


@pytest.mark.parametrize("solver", ["greedy", "highs"])
def test_replicas_on_distinct_gpus_and_spread_on_distinct_hosts(solver):
    models = [{"name": "m32", "quantizations": ["Q4_K_M"], "replicas": 3}]
    hosts = {"a": {"gpus": gpus(24, 24)}, "b": {"gpus": gpus(24)}, "c": {"gpus": gpus(24)}}
    packed = run(models, hosts, policy="binpack", solver=solver)
    used = [(h, tuple(i["gpus"])) for h, i in instances(packed)]
    assert len(used) == 3 and len(set(used)) == 3
    spread = run(models, hosts, policy="spread", solver=solver)
    assert sorted(h for h, _ in instances(spread)) == ["a", "b", "c"]
    assert [i["replica"] for _, i in instances(spread)] == [0, 1, 2]


def test_replicas_more_than_gpus_are_refused():
    with pytest.raises(P.PlacementError, match=r"1 of 3 replicas of model m32.*replicas 2"):
        run([{"name": "m32", "quantizations": ["Q4_K_M"], "replicas": 3}],
            {"a": {"gpus": gpus(24, 24)}})


# ---------------------------------------------------------------------------- preferences


def test_better_quantization_first_when_it_fits():
    result = run([{"name": "m32", "quantizations": ["Q8_0", "Q4_K_M"]}], {"a": {"gpus": gpus(12)}})
    assert instances(result)[0][1]["quantization"] == "Q8_0"


def test_engine_any_prefers_vllm_then_llama_cpp():
    result = run([{"name": "m32", "quantizations": ["AWQ", "Q8_0"]}], {"a": {"gpus": gpus(12)}})
    assert instances(result)[0][1]["engine"] == "vllm"
    result = run([{"name": "m32", "quantizations": ["Q8_0"]}], {"a": {"gpus": gpus(12)}})
    assert instances(result)[0][1]["engine"] == "llama_cpp"


def test_milp_lowers_one_quantization_to_place_both_where_greedy_fails():
    # Q8_0 = 8 GiB, Q4_K_M = 4 GiB, one 11 GiB GPU: greedy gives the first Q8_0 and then
    # neither quantization of the second fits the 3 GiB left; the optimum is Q4_K_M twice.
    models = [{"name": "m32", "alias": a, "engine": "llama_cpp", "quantizations": ["Q8_0", "Q4_K_M"]}
              for a in ("x", "y")]
    hosts = {"a": {"gpus": gpus(11)}}
    with pytest.raises(P.PlacementError):
        run(models, hosts, solver="greedy")
    result = run(models, hosts, solver="highs")
    assert result["solver"] == "highs" and result["optimal"]
    assert [i["quantization"] for _, i in instances(result)] == ["Q4_K_M", "Q4_K_M"]


# -------------------------------------------------------------------- greedy vs exact solver


def test_greedy_fails_where_the_milp_places_all():
    # bins 12 + 12, items 5 5 4 4 3 3: first-fit decreasing strands a 3; 5+4+3 twice fits
    sizes = {f"s{i}": gib for i, gib in enumerate([5, 5, 4, 4, 3, 3])}
    fake = Fake(sizes)
    models = [{"name": n, "engine": "llama_cpp", "quantizations": ["Q4_K_M"]} for n in sizes]
    hosts = {"a": {"gpus": gpus(12)}, "b": {"gpus": gpus(12)}}
    with pytest.raises(P.PlacementError, match="s5|s4"):
        run(models, hosts, fake=fake, solver="greedy")
    result = run(models, hosts, fake=Fake(sizes), solver="highs")
    assert result["solver"] == "highs"
    assert len(instances(result)) == 6
    for spec in result["placement"].values():
        assert sorted(i["name"] for i in spec["instances"])
        assert spec["devices"][0]["planned"] == 12 * GIB


def test_falls_back_to_greedy_without_highspy(monkeypatch):
    monkeypatch.setitem(sys.modules, "highspy", None)  # import highspy -> ImportError
    result = run([{"name": "m32", "quantizations": ["Q4_K_M"]}], {"a": {"gpus": gpus(24)}})
    assert result["solver"] == "greedy"
    assert result["fallback_reason"].startswith("highspy is not installed")
    assert not result["optimal"]  # the packing is not proven without HiGHS
    assert len(instances(result)) == 1
    with pytest.raises(P.PlacementInputError, match="highspy"):
        run([{"name": "m32", "quantizations": ["Q4_K_M"]}], {"a": {"gpus": gpus(24)}},
            solver="highs")


def test_falls_back_to_greedy_when_the_problem_is_too_large():
    result = run([{"name": "m32", "quantizations": ["Q4_K_M"]}], {"a": {"gpus": gpus(24)}},
                 max_candidates=0)
    assert result["solver"] == "greedy"
    assert "max_candidates" in result["fallback_reason"]


# -------------------------------------------------------------------------------- refusals


def test_refusal_names_model_shortfall_and_a_quantization_that_really_fits():
    models = [{"name": "big", "engine": "llama_cpp", "quantizations": ["Q8_0"]}]
    hosts = {"a": {"gpus": gpus(24)}}
    with pytest.raises(P.PlacementError) as err:
        run(models, hosts)
    message = str(err.value)
    # 40 GiB on a 24 GiB GPU (no reserve): 16 GiB short
    assert "model big does not fit" in message
    assert "16.0 GiB short" in message
    assert "even with nothing else on it" in message
    (entry,) = err.value.unplaced
    assert entry["short_bytes"] == 16 * GIB
    assert entry["suggestions"] == ["quantization Q4_K_M"]
    # the suggestion really fits
    fixed = run([dict(models[0], quantizations=["Q4_K_M"])], hosts)
    assert len(instances(fixed)) == 1


def test_refusal_suggests_the_longest_context_that_fits():
    # ctx Q8_0: 8 GiB + 1 GiB per 1024 tokens; 20 GiB GPU -> 12 288 tokens fit, 16 384 not
    models = [{"name": "ctx", "engine": "llama_cpp", "quantizations": ["Q8_0"], "context": 16384}]
    hosts = {"a": {"gpus": gpus(20)}}
    with pytest.raises(P.PlacementError) as err:
        run(models, hosts)
    assert "context 12288" in err.value.unplaced[0]["suggestions"]
    assert "quantization Q4_K_M" in err.value.unplaced[0]["suggestions"]
    assert len(instances(run([dict(models[0], context=12288)], hosts))) == 1
    with pytest.raises(P.PlacementError):
        run([dict(models[0], context=12288 + 256)], hosts)


def test_refusal_suggests_fewer_parallel_sequences():
    models = [{"name": "ctx", "engine": "llama_cpp", "quantizations": ["Q8_0"], "context": 4096,
               "parallel": 4}]
    hosts = {"a": {"gpus": gpus(20)}}
    with pytest.raises(P.PlacementError) as err:
        run(models, hosts)
    assert "parallel 3" in err.value.unplaced[0]["suggestions"]
    assert len(instances(run([dict(models[0], parallel=3)], hosts))) == 1


def test_refusal_counts_memory_left_by_the_others():
    models = [{"name": "m32", "alias": "first", "engine": "llama_cpp", "quantizations": ["Q8_0"],
               "host": "a"},
              {"name": "m32", "alias": "second", "engine": "llama_cpp", "quantizations": ["F16"]}]
    with pytest.raises(P.PlacementError) as err:
        run(models, {"a": {"gpus": gpus(20)}})
    (entry,) = err.value.unplaced
    assert entry["name"] == "second"
    assert entry["short_bytes"] == 4 * GIB  # 16 GiB wanted, 12 left
    assert "even with nothing else" not in str(err.value)
    assert entry["suggestions"][0] == "quantization Q8_0"


def test_refusal_repeats_the_estimators_reason():
    with pytest.raises(P.PlacementError, match="vllm cannot run m32 Q8_0"):
        run([{"name": "m32", "engine": "vllm", "quantizations": ["Q8_0"]}], {"a": {"gpus": gpus(24)}})


def test_allow_partial_returns_the_plan_and_the_unplaced():
    result = run([{"name": "huge", "quantizations": ["Q4_K_M"]},
                  {"name": "m32", "quantizations": ["Q4_K_M"]}],
                 {"a": {"gpus": gpus(24)}}, allow_partial=True)
    assert [i["name"] for _, i in instances(result)] == ["m32"]
    assert [u["name"] for u in result["unplaced"]] == ["huge"]


# ------------------------------------------------------------------------------ CPU hosts


def test_cpu_host_takes_llama_cpp_models_into_ram():
    hosts = {"gpu": {"gpus": gpus(8)}, "cpu": {"gpus": gpus(), "cpu_inference": True,
                                                "ram_bytes": 64 * GIB}}
    models = [{"name": "m32", "alias": "small", "quantizations": ["Q4_K_M"]},
              {"name": "big", "quantizations": ["Q4_K_M"]},
              {"name": "m32", "alias": "vllm-only", "engine": "vllm", "quantizations": ["AWQ"]}]
    result = run(models, hosts, ram_reserve_gib=4)
    # 8 GiB of GPU: vllm-only (5) and small (4) do not both fit; small can go to RAM
    cpu = result["placement"]["cpu"]["instances"]
    assert [i["name"] for i in cpu] == ["big", "small"]
    assert [i["name"] for i in result["placement"]["gpu"]["instances"]] == ["vllm-only"]
    assert all(i["device"] == "cpu" and i["gpus"] == [] for i in cpu)
    assert cpu[0]["settings"]["n_gpu_layers"] == 0
    assert cpu[0]["ram_bytes"] == 20 * GIB
    assert result["placement"]["cpu"]["devices"][0]["planned"] == 24 * GIB


def test_gpu_preferred_over_ram():
    hosts = {"gpu": {"gpus": gpus(8)}, "cpu": {"gpus": gpus(), "cpu_inference": True,
                                                "ram_bytes": 64 * GIB}}
    result = run([{"name": "m32", "quantizations": ["Q8_0", "Q4_K_M"]}], hosts)
    (host, inst), = instances(result)
    assert (host, inst["quantization"]) == ("gpu", "Q8_0")


def test_host_without_gpus_or_cpu_inference_takes_nothing():
    with pytest.raises(P.PlacementError, match="no GPU or CPU host"):
        run([{"name": "m32", "quantizations": ["Q4_K_M"], "host": "plain"}],
            {"plain": {"gpus": gpus()}, "a": {"gpus": gpus(24)}})


# ----------------------------------------------------------------------------- input errors


@pytest.mark.parametrize("models, match", [
    ([], "non-empty list"),
    ([{"quantizations": ["Q4_K_M"]}], "needs a name"),
    ([{"name": "m32", "engine": "tgi", "quantizations": ["Q4_K_M"]}], "engine 'tgi'"),
    ([{"name": "m32"}], "quantizations must be"),
    ([{"name": "m32", "quantizations": ["Q4_K_M"], "replicas": 0}], "replicas"),
    ([{"name": "m32", "quantizations": ["Q4_K_M"], "context": "long"}], "context"),
    ([{"name": "m32", "quantizations": ["Q4_K_M"], "color": "red"}], "unknown keys color"),
    ([{"name": "m32", "quantizations": ["Q4_K_M"]}] * 2, "listed once"),
])
def test_malformed_models_are_input_errors(models, match):
    with pytest.raises(P.PlacementInputError, match=match):
        run(models, {"a": {"gpus": gpus(24)}})


@pytest.mark.parametrize("kwargs, match", [
    ({"policy": "random"}, "policy"),
    ({"solver": "cplex"}, "solver"),
    ({"reserve_gib": -1}, "reserve_gib"),
])
def test_malformed_options_are_input_errors(kwargs, match):
    with pytest.raises(P.PlacementInputError, match=match):
        run([{"name": "m32", "quantizations": ["Q4_K_M"]}], {"a": {"gpus": gpus(24)}}, **kwargs)
