# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A linear model assembled from numpy triplets and handed to HiGHS column-wise."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._placement._numpy import np


class Model:
    """Columns and rows added in blocks of arrays; :meth:`csc` sums duplicate entries."""

    def __init__(self):
        self.cost, self.lower, self.upper, self.integral = [], [], [], []
        self.row_lower, self.row_upper = [], []
        self.entries = []  # (columns, rows, values) arrays
        self.named = {}  # block name -> (position among the blocks, first row, rows)
        self.n_col = 0
        self.n_row = 0

    def columns(self, cost, lower, upper, integral):
        """Add ``len(cost)`` columns; return their first index."""
        first = self.n_col
        n = len(cost)
        self.cost.append(np.asarray(cost, dtype=np.float64))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)))
        self.integral.append(np.full(n, 1 if integral else 0, dtype=np.int32))
        self.n_col += n
        return first

    def rows(self, lower, upper, count=None, name=None):
        """Add rows (bounds as arrays or scalars with ``count``); return their first index.
        A ``name`` keeps the block's place so its upper bounds can be changed later."""
        first = self.n_row
        n = count if count is not None else len(np.atleast_1d(upper))
        if name is not None:
            self.named[name] = (len(self.row_upper), first, n)
        self.row_lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)))
        self.row_upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)))
        self.n_row += n
        return first

    def set_upper(self, name, upper):
        position, _first, n = self.named[name]
        self.row_upper[position] = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,))

    def add(self, cols, rows, values):
        cols = np.asarray(cols, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        self.entries.append((cols, rows, np.broadcast_to(
            np.asarray(values, dtype=np.float64), cols.shape)))

    def arrays(self):
        """cost, lower, upper, row_lower, row_upper, start, index, value, integrality."""
        cols = np.concatenate([e[0] for e in self.entries] or [np.zeros(0, np.int64)])
        rows = np.concatenate([e[1] for e in self.entries] or [np.zeros(0, np.int64)])
        vals = np.concatenate([e[2] for e in self.entries] or [np.zeros(0)])
        keys = cols * max(1, self.n_row) + rows
        unique, inverse = np.unique(keys, return_inverse=True)
        summed = np.bincount(inverse, weights=vals, minlength=len(unique))
        keep = summed != 0
        unique, summed = unique[keep], summed[keep]
        col_of = unique // max(1, self.n_row)
        start = np.zeros(self.n_col + 1, dtype=np.int64)
        np.cumsum(np.bincount(col_of, minlength=self.n_col), out=start[1:])
        cat = np.concatenate
        return (cat(self.cost) if self.cost else np.zeros(0), cat(self.lower) if self.lower
                else np.zeros(0), cat(self.upper) if self.upper else np.zeros(0),
                cat(self.row_lower) if self.row_lower else np.zeros(0),
                cat(self.row_upper) if self.row_upper else np.zeros(0), start,
                unique % max(1, self.n_row), summed,
                cat(self.integral) if self.integral else np.zeros(0, np.int32))

    def load(self, solver, maximize=True):
        cost, lower, upper, row_lower, row_upper, start, index, value, integral = self.arrays()
        solver.load_model(cost, lower, upper, row_lower, row_upper, start, index, value,
                          integral, maximize=maximize)
