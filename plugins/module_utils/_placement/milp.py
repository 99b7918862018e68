# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The per-GPU MILP: a binary per candidate (request x type x group), solved by HiGHS in two
lexicographic stages.

1. maximise replicas placed, then their quality (quantization, engine, fewer GPUs, GPU over
   RAM): weights ``types.weight + rank``, integers, so an absolute gap below 1 proves it;
2. keeping that score, the packing: binpack uses as few hosts, then GPUs, as it can; spread
   minimises replicas sharing a host, then the load of the fullest GPU.

Rows: replicas per request; memory per device (binpack: <= capacity x u_d); replicas of one
request on distinct devices; binpack: u_d <= v_h, identical GPUs of one host used in index
order (symmetry); spread: load_d <= z and the co-location counts y_rh.
"""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._placement import sparse
from ansible_collections.teamllm.stack.plugins.module_utils._placement._numpy import np

GIB = 1024**3


class Problem:
    """The model, its columns' meaning, and the two objectives."""

    def __init__(self, types, cluster, policy, mask=None):
        self.types, self.cluster, self.policy = types, cluster, policy
        self.req, self.type, self.group = types.expand(cluster, mask)
        self.index = {(int(r), int(t), int(g)): i for i, (r, t, g) in
                      enumerate(zip(self.req, self.type, self.group, strict=True))}
        self.model = model = sparse.Model()
        n_x = len(self.req)
        self.n_x = n_x
        self.primary = (types.weight + types.rank[self.type]).astype(np.float64)
        model.columns(self.primary, 0.0, 1.0, integral=True)
        x = np.arange(n_x)
        replicas = np.array([r.replicas for r in types.requests], dtype=np.float64)
        first = model.rows(-np.inf, replicas)
        model.add(x, first + self.req, 1.0)
        width = types.claims.shape[1]
        devs = cluster.group_table[self.group][:, :width]
        claims = types.claims[self.type][:, :devs.shape[1]]
        on = devs >= 0
        ent_x, ent_dev, ent_claim = (np.broadcast_to(x[:, None], devs.shape)[on], devs[on],
                                     claims[on])
        self.used = used = np.unique(ent_dev)
        row_of = np.full(len(cluster.devices), -1, dtype=np.int64)
        capacity = cluster.capacity[used].astype(np.float64)
        first = model.rows(-np.inf, 0.0 if policy == "binpack" else capacity / GIB,
                           count=len(used))
        row_of[used] = first + np.arange(len(used))
        model.add(ent_x, row_of[ent_dev], ent_claim / GIB)
        self._distinct(ent_x, ent_dev)
        self.packing = None
        if policy == "binpack":
            self._binpack(row_of, capacity)
        else:
            self._spread(ent_x, ent_dev, ent_claim)

    def _distinct(self, ent_x, ent_dev):
        multi = np.array([r.replicas > 1 for r in self.types.requests], dtype=bool)
        pick = multi[self.req[ent_x]]
        if not pick.any():
            return
        pairs = self.req[ent_x[pick]] * len(self.cluster.devices) + ent_dev[pick]
        unique, inverse, counts = np.unique(pairs, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        if not shared.any():
            return
        keep, row_ids = np.unique(inverse[shared], return_inverse=True)
        first = self.model.rows(-np.inf, 1.0, count=len(keep))
        self.model.add(ent_x[pick][shared], first + row_ids, 1.0)

    def _binpack(self, row_of, capacity):
        cluster, model, used = self.cluster, self.model, self.used
        hosts = cluster.dev_host[used]
        busy = np.unique(hosts)
        per_host = max((len(h.devices) for h in cluster.hosts.values()), default=1)
        self.u = model.columns(np.zeros(len(used)), 0.0, 1.0, integral=True)
        u = self.u + np.arange(len(used))
        model.add(u, row_of[used], -capacity / GIB)
        first = model.rows(-np.inf, 0.0, count=len(used))  # u_d - v_h <= 0
        model.add(u, first + np.arange(len(used)), 1.0)
        self.v = model.columns(np.zeros(len(busy)), 0.0, 1.0, integral=True)
        self.busy = busy
        model.add(self.v + np.searchsorted(busy, hosts), first + np.arange(len(used)), -1.0)
        previous = {}
        for i, k in enumerate(used):
            d = cluster.devices[k]
            ident = (d.host, d.name, d.total)
            if ident in previous:  # u_previous - u_k >= 0
                row = model.rows(0.0, np.inf, count=1)
                model.add([u[previous[ident]], u[i]], [row, row], [1.0, -1.0])
            previous[ident] = i
        self.packing = np.zeros(model.n_col)
        self.packing[u] = -1.0
        self.packing[self.v:self.v + len(busy)] = -float(per_host + 1)  # a host outweighs GPUs

    def _spread(self, ent_x, ent_dev, ent_claim):
        cluster, model, used = self.cluster, self.model, self.used
        first = model.rows(-np.inf, 0.0, count=len(used))
        load_row = np.full(len(cluster.devices), -1, dtype=np.int64)
        load_row[used] = first + np.arange(len(used))
        model.add(ent_x, load_row[ent_dev], ent_claim / cluster.capacity[ent_dev].clip(min=1))
        self.z = model.columns([0.0], 0.0, 1.0, integral=False)
        model.add(np.full(len(used), self.z), first + np.arange(len(used)), -1.0)
        multi = np.array([r.replicas > 1 for r in self.types.requests], dtype=bool)
        x = np.flatnonzero(multi[self.req])
        pairs = self.req[x] * len(cluster.host_names) + cluster.group_host[self.group[x]]
        unique, inverse, counts = np.unique(pairs, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        keep, row_ids = np.unique(inverse[shared], return_inverse=True)
        first = model.rows(-np.inf, 1.0, count=len(keep))
        model.add(x[shared], first + row_ids, 1.0)
        self.y = model.columns(np.zeros(len(keep)), 0.0, np.inf, integral=False)
        self.y_pairs = unique[keep]
        model.add(self.y + np.arange(len(keep)), first + np.arange(len(keep)), -1.0)
        self.packing = np.zeros(model.n_col)
        self.packing[self.z] = -100.0  # max load in hundredths
        self.packing[self.y:self.y + len(keep)] = -101.0  # one replica fewer on a shared host

    def values(self, chosen):
        """A full, feasible column vector for a plan (list of (request, type, group)), or
        None when the plan uses a candidate this model lacks."""
        cluster = self.cluster
        values = np.zeros(self.model.n_col)
        load = {}
        for r, t, g in chosen:
            i = self.index.get((r, t, g))
            if i is None:
                return None
            values[i] = 1.0
            for k, claim in zip(cluster.group_devs[g], self.types.claims[t], strict=False):
                load[k] = load.get(k, 0) + int(claim)
        if self.policy == "binpack":
            values[self.u + np.flatnonzero(np.isin(self.used, list(load)))] = 1.0
            hosts = np.unique(cluster.dev_host[list(load)]) if load else []
            values[self.v + np.searchsorted(self.busy, hosts)] = 1.0
        else:
            values[self.z] = min(1.0, max([c / max(1, cluster.capacity[k])
                                           for k, c in load.items()] or [0.0]))
            host_of = {}
            for r, _type, g in chosen:
                key = r * len(cluster.host_names) + int(cluster.group_host[g])
                host_of[key] = host_of.get(key, 0) + 1
            for j, pair in enumerate(self.y_pairs):
                values[self.y + j] = max(0, host_of.get(int(pair), 0) - 1)
        return values

    def chosen(self, values):
        picked = np.flatnonzero(values[:self.n_x] > 0.5)
        return [(int(self.req[i]), int(self.type[i]), int(self.group[i])) for i in picked]

    def packing_value(self, values):
        return float(self.packing @ values)


def stage(solver, problem, start, seconds, floor=None):
    """One stage: stage 1 when ``floor`` is None, else stage 2 keeping the score >= floor.
    Returns (outcome, plan or None)."""
    if floor is not None:
        n_x = problem.n_x
        solver.add_row(floor - 0.5, np.inf, np.arange(n_x), problem.primary)
        solver.change_costs(problem.packing)
    if start is not None:
        solver.start(start)
    outcome = solver.run(seconds)
    plan = problem.chosen(outcome.values) if outcome.values is not None else None
    return outcome, plan
