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


def _flat(mats: list[np.ndarray]):
    """_iou_flat's flat layout of per-image IoU matrices."""
    n_gt = np.array([m.shape[0] for m in mats])
    n_pred = np.array([m.shape[1] for m in mats])
    npair = n_gt * n_pred
    lane0 = np.cumsum(n_gt + n_pred) - (n_gt + n_pred)
    pimg = np.repeat(np.arange(len(mats)), npair)
    q = np.arange(int(npair.sum())) - np.repeat(np.cumsum(npair) - npair, npair)
    p = np.maximum(n_pred[pimg], 1)
    a, b = lane0[pimg] + q // p, lane0[pimg] + n_gt[pimg] + q % p
    vals = np.concatenate([np.zeros(0), *(m.ravel() for m in mats)])
    return vals, pimg, a, b, int((n_gt + n_pred).sum()), n_gt, n_pred


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.0, 0.75])
def test_match_flat_equals_one_by_one(threshold, monkeypatch):
    """Images with shared positive pairs: the counts without a per-image assignment (each pair above the
    threshold outweighs its lanes' other IoUs) equal match_counts, including near misses of that rule."""
    rng = np.random.default_rng(int(threshold * 100))
    mats = [np.array([[0.51, 0.49], [0.49, 0.0]]), np.array([[0.6, 0.3], [0.0, 0.3]]),
            np.array([[0.6, 0.3], [0.3, 0.0]]), np.array([[0.9, 0.1, 0.1], [0.1, 0.7, 0.0]])]
    for _ in range(3000):
        g, p = (int(v) for v in rng.integers(1, 9, 2))
        m = np.where(rng.random((g, p)) < 0.5, 0.0, rng.random((g, p)) * rng.choice([0.1, 0.3, 0.6]))
        k = min(g, p)
        m[np.arange(k), rng.permutation(p)[:k]] = rng.choice([0.2, 0.45, 0.55, 0.8, 0.95], k) + \
            rng.normal(0, 0.05, k)
        m = np.clip(m, 0.0, 1.0)
        if rng.random() < 0.1:
            m[rng.random((g, p)) < 0.2] = np.nan
        mats.append(m)
    want = [C.match_counts(m, threshold) for m in mats]
    calls = []
    one = C.match_counts

    def counted(m, t):
        calls.append(1)
        return one(m, t)

    monkeypatch.setattr(C, "match_counts", counted)
    got = C._match_flat(mats, *_flat(mats), threshold)
    assert [tuple(r) for r in got.tolist()] == want
    shared = sum(int(((np.nan_to_num(m) > 0).sum(0) > 1).any() or ((np.nan_to_num(m) > 0).sum(1) > 1).any())
                 for m in mats)
    assert 0 < len(calls) <= shared
    if threshold > 0:  # (at 0 every positive pair is above it: shared ones never outweigh the others)
        assert len(calls) < shared  # the rule resolved some images with shared pairs, not all
