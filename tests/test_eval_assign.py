"""lanekd.evaluate._assign returns scipy's linear_sum_assignment(maximize=True) pairs, ties included, so
CULane counts are unchanged without the scipy.optimize import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from lanekd.evaluate import _assign
from lanekd.evaluate import culane as C


def _matrices(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for t in range(n):
        g, p = (int(v) for v in rng.integers(1, 10, 2))
        kind = t % 5
        if kind == 0:  # few distinct values: many exact ties
            yield rng.integers(0, 4, (g, p)) / 4.0
        elif kind == 1:
            yield rng.random((g, p))
        elif kind == 2:  # sparse IoU-like matrices around the 0.5 threshold
            yield np.where(rng.random((g, p)) < 0.6, 0.0, rng.choice([0.3, 0.5, 0.55, 0.7, 0.9], (g, p)))
        elif kind == 3:  # identical rows / columns (duplicate lanes)
            m = rng.random((g, 1)) * rng.integers(0, 2, (1, p))
            yield np.repeat(m, 2, axis=0) if g < 5 else m
        else:
            yield np.zeros((g, p)) if t % 2 else np.full((g, p), 0.5)


@pytest.mark.parametrize("seed", range(4))
def test_same_pairs_as_scipy(seed):
    for w in _matrices(seed, 1500):
        rows, cols = _assign.max_weight_assignment(w)
        want_r, want_c = linear_sum_assignment(w, maximize=True)
        assert rows.tolist() == want_r.tolist() and cols.tolist() == want_c.tolist(), w


def test_same_counts_as_scipy_through_match_counts():
    rng = np.random.default_rng(7)
    for w in _matrices(11, 1500):
        iou = np.where(rng.random(w.shape) < 0.05, np.nan, w)
        r, c = linear_sum_assignment(np.nan_to_num(iou, nan=0.0), maximize=True)
        tp = int(np.sum(iou[r, c] > 0.5))
        assert C.match_counts(iou, 0.5) == (tp, w.shape[1] - tp, w.shape[0] - tp)


def test_edge_cases():
    assert [a.tolist() for a in _assign.max_weight_assignment(np.zeros((0, 3)))] == [[], []]
    big = np.random.default_rng(0).random((70, 70))  # above LARGE: scipy itself
    assert [a.tolist() for a in _assign.max_weight_assignment(big)] == \
        [a.tolist() for a in linear_sum_assignment(big, maximize=True)]
    with pytest.raises(ValueError, match="invalid numeric entries"):
        _assign.max_weight_assignment(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="invalid numeric entries"):
        _assign.max_weight_assignment(np.array([[np.inf, 1.0]]))


def test_culane_scoring_imports_no_scipy():
    code = ("import sys, numpy as np; from lanekd.evaluate import culane as C; "
            "m = np.array([[0.9, 0.6], [0.7, 0.0]]); assert C.match_counts(m) == (2, 0, 0); "
            "sys.exit('scipy' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
