"""Maximum-weight assignment of a small matrix without importing ``scipy.optimize`` (~0.5 s).

:func:`max_weight_assignment` is ``scipy.optimize.linear_sum_assignment(w, maximize=True)``: the same
shortest augmenting path algorithm (Crouse 2016, as scipy's ``rectangular_lsap.cpp`` implements it:
costs negated, a tall matrix transposed, rows augmented in order, columns scanned from the last, a
tie on the lowest reduced cost broken towards an unassigned column), step for step in the same
floating-point operations, so it returns the same pairs, ties included (tests/test_eval_culane.py
compares them on random matrices with many ties). CULane images have a handful of lanes, so plain
Python is faster than the import; matrices above :data:`LARGE` entries go to scipy.
"""

from __future__ import annotations

import math

import numpy as np

#: entries above which scipy's compiled solver is used (same result, cubic time in Python)
LARGE = 4096


def max_weight_assignment(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a maximum-weight assignment of the finite (G, P) matrix ``w``, as scipy's
    ``linear_sum_assignment(w, maximize=True)`` returns them (rows ascending, min(G, P) pairs)."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"expected a matrix (2-D array), got a {w.ndim} array")
    if w.size > LARGE:
        from scipy.optimize import linear_sum_assignment

        return linear_sum_assignment(w, maximize=True)
    nr, nc = w.shape
    if nr == 0 or nc == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    transpose = nc < nr
    cost = (-(w.T if transpose else w)).tolist()
    if transpose:
        nr, nc = nc, nr
    if any(c != c or c == -math.inf for row in cost for c in row):
        raise ValueError("matrix contains invalid numeric entries")
    col4row = _solve(cost, nr, nc)
    if transpose:
        order = sorted(range(nr), key=col4row.__getitem__)
        return np.array([col4row[k] for k in order], np.int64), np.array(order, np.int64)
    return np.arange(nr, dtype=np.int64), np.array(col4row, np.int64)


def _solve(cost: list[list[float]], nr: int, nc: int) -> list[int]:
    """``col4row`` of a minimum-cost assignment, nr <= nc (scipy's ``solve``)."""
    inf = math.inf
    u = [0.0] * nr
    v = [0.0] * nc
    path = [-1] * nc
    col4row = [-1] * nr
    row4col = [-1] * nc
    for cur in range(nr):
        # shortest augmenting path from row ``cur`` (scipy's ``augmenting_path``)
        in_sr = [False] * nr
        in_sc = [False] * nc
        spc = [inf] * nc
        remaining = list(range(nc - 1, -1, -1))  # reversed: a constant matrix gives the identity
        min_val = 0.0
        i = cur
        sink = -1
        while sink == -1:
            index = -1
            lowest = inf
            in_sr[i] = True
            ci, ui = cost[i], u[i]
            for it, j in enumerate(remaining):
                r = min_val + ci[j] - ui - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    index = it
            min_val = lowest
            if min_val == inf:
                raise ValueError("cost matrix is infeasible")
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            in_sc[j] = True
            remaining[index] = remaining[-1]
            remaining.pop()
        # dual update, then augment along the path
        u[cur] += min_val
        for k in range(nr):
            if in_sr[k] and k != cur:
                u[k] += min_val - spc[col4row[k]]
        for k in range(nc):
            if in_sc[k]:
                v[k] -= min_val - spc[k]
        j = sink
        while True:
            k = path[j]
            row4col[j] = k
            col4row[k], j = j, col4row[k]
            if k == cur:
                break
    return col4row
