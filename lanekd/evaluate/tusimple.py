"""TuSimple lane benchmark: the official ``evaluate/lane.py`` metric, vectorised with numpy.

Per image (lane.py ``bench``), for GT lanes ``g`` and predicted lanes ``p`` on the GT's ``h_samples``:

* the frame scores ``(0, 0, 1)`` when ``run_time > 200`` (ms) or ``#p > #g + 2``;
* each GT lane gets a point threshold ``20 / cos(arctan(k))``, ``k`` the least-squares slope of x on y
  over its points with x >= 0 (``k = 0`` with fewer than 2 such points);
* negative x values become -100; a (GT, prediction) pair scores the fraction of *all* rows with
  ``|x_p - x_g| < threshold`` (so rows missing on both sides count as correct);
* each GT lane takes its best prediction (no one-to-one matching: FP can be negative); best < 0.85 is a
  miss; with more than 4 GT lanes one miss is forgiven and the worst GT lane is dropped from the sum;
* accuracy = sum of best scores / max(min(4, #g), 1); FP = (#p - matched) / #p (0 without predictions);
  FN = misses / max(min(#g, 4), 1).

The dataset values are sums over *prediction lines* divided by the number of *unique* GT ``raw_file``s.
F1 follows the paper convention (LaneATT tables): ``P = 1 - FP``, ``R = 1 - FN``, ``F1 = 2PR / (P + R)``.

Exactness: lane.py fits the slope with scikit-learn (LAPACK ``gelsd``); we use the closed form, which
agrees to a few ulps. A row decision could flip only when ``|x_p - x_g|`` lies within those ulps of the
threshold, so such rows (within 1e-9 relative) are re-decided with scikit-learn's own fit (or a
replica: centred data, ``scipy.linalg.lstsq``).

Speed: each file is parsed by one ``json.loads`` call (lines joined into an array; per-line parsing
only to locate an error), lanes become one numpy array, and every image is scored at once on padded
``(images, gt, pred, rows)`` arrays. JSON parsing is then most of the time.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lanekd.errors import DataError

PIXEL_THRESH = 20.0
PT_THRESH = 0.85
MAX_RUN_TIME_MS = 200.0


# --------------------------------------------------------------------------------------------- reading
@dataclass
class _Table:
    """A JSON-lines file with every ``lanes`` array flattened.

    ``recs[i]`` is line ``i+1`` (its ``lanes`` value is not used); line ``i`` owns lanes
    ``lane_start[i]:lane_start[i+1]``; lane ``j`` has ``lane_len[j]`` values starting at ``val_start[j]``
    in ``values``.
    """

    path: Path
    recs: list[Any]
    lane_start: np.ndarray
    lane_len: np.ndarray
    val_start: np.ndarray
    values: np.ndarray

    def gather(self, lanes: np.ndarray, n_rows: int) -> np.ndarray:
        """Values of ``lanes`` (all of length ``n_rows``) as an ``(len(lanes), n_rows)`` array."""
        return self.values[self.val_start[lanes][:, None] + np.arange(n_rows)]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fast_loads(data: bytes) -> Any:
    """``json.loads``, through orjson when it is installed (3x faster on label files, same values).

    orjson refuses what strict JSON forbids (NaN, Infinity, integers beyond 64 bits) where ``json``
    accepts them: such files take ``json`` so they read exactly as lane.py reads them.
    """
    try:
        import orjson
    except ImportError:
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _parse_lines(path: Path, data: bytes) -> list[Any]:
    """One JSON value per text line (lane.py reads the file line by line)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline does not start a line
    if not lines:
        raise DataError(path, "empty file")
    whole = b"[" + b",".join(lines) + b"]"
    try:  # one parser call for the whole file (~2x faster); per-line parsing locates errors
        recs = _fast_loads(whole)
        if len(recs) == len(lines):
            return recs
    except ValueError:
        pass
    recs = []
    for i, ln in enumerate(lines, 1):
        if not ln.strip():
            raise DataError(path, "blank line (lane.py reads one JSON object per line)", line=i)
        try:
            recs.append(json.loads(ln))
        except ValueError as e:
            raise DataError(path, f"not valid JSON: {e}", line=i) from None
    return recs


def _read_table(path: str | Path, warnings: Counter) -> _Table:
    """Read a JSON-lines file and flatten its ``lanes`` (checked: lists of lists of numbers)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(p, "file not found") from None
    except OSError as e:
        raise DataError(p, f"cannot read: {e}") from None
    recs = _parse_lines(p, data)
    counts = np.zeros(len(recs), dtype=np.int64)
    flat: list[Any] = []
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            raise DataError(p, f"expected a JSON object, got {type(r).__name__}", line=i + 1)
        lanes = r.get("lanes", [])
        if not isinstance(lanes, list):
            raise DataError(p, f"'lanes' must be a list of lanes, got {type(lanes).__name__}", line=i + 1)
        for j, lane in enumerate(lanes):
            if not isinstance(lane, list):
                raise DataError(p, f"lane {j} must be a list of x values, not {type(lane).__name__}",
                                line=i + 1)
        counts[i] = len(lanes)
        flat.extend(lanes)
    lane_len = np.array([len(lane) for lane in flat], dtype=np.int64)
    if len(flat) and (lane_len == lane_len[0]).all():
        values = np.array(flat).reshape(-1)  # one C call; no dtype= (3x faster, and the dtype reveals junk)
    else:
        values = np.array([v for lane in flat for v in lane])
    # numpy turns booleans mixed with numbers into 1/0 silently (as lane.py does): look for them only
    # when the text could hold one.
    if (values.dtype.kind not in "iuf" and len(values)) or b"true" in data or b"false" in data:
        for i, r in enumerate(recs):  # locate the offending line
            for j, lane in enumerate(r.get("lanes", [])):
                bad = [v for v in lane if not _is_number(v)]
                if any(not isinstance(v, bool) for v in bad):
                    raise DataError(p, f"lane {j}: x values must be numbers, got {bad[0]!r}", line=i + 1)
                if bad:
                    warnings["boolean_x_values"] += 1  # lane.py reads True/False as 1/0
        values = values.astype(np.float64)
    values = values.astype(np.float64, copy=False)
    lane_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    val_start = (np.cumsum(lane_len) - lane_len).astype(np.int64)
    return _Table(p, recs, lane_start, lane_len, val_start, values)


def _first_line_where(bad: np.ndarray, line_of: np.ndarray) -> int:
    return int(line_of[np.flatnonzero(bad)[0]]) + 1


# ------------------------------------------------------------------------------------------ the metric
def _slopes(G: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Least-squares slope dx/dy of every GT lane ``(nG, R)`` over its x >= 0 points; 0 with < 2 points."""
    valid = G >= 0
    nv = valid.sum(-1)
    safe = np.maximum(nv, 1)
    yb = np.where(valid, ys, 0.0).sum(-1) / safe
    xb = np.where(valid, G, 0.0).sum(-1) / safe
    dy = np.where(valid, ys - yb[:, None], 0.0)
    dx = np.where(valid, G - xb[:, None], 0.0)
    sxx = (dy * dy).sum(-1)
    sxy = (dy * dx).sum(-1)
    return np.where((nv > 1) & (sxx > 0), sxy / np.where(sxx > 0, sxx, 1.0), 0.0)


def _sklearn_slope(xs: np.ndarray, ys: np.ndarray) -> float:
    """The slope scikit-learn's LinearRegression(fit_intercept=True) computes, as lane.py gets it."""
    valid = xs >= 0
    x, y = xs[valid].astype(np.float64), ys[valid].astype(np.float64)
    if len(x) <= 1:
        return 0.0
    try:
        from sklearn.linear_model import LinearRegression  # exact when installed

        return float(LinearRegression().fit(y[:, None], x).coef_[0])
    except ImportError:
        from scipy.linalg import lstsq

        return float(lstsq(y[:, None] - y.mean(), x - x.mean())[0][0])


def _distinct(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (``np.unique`` imports ``numpy.ma``: ~10 ms)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a


def _first_of(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _per_image(values: np.ndarray, counts: np.ndarray, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Scatter per-lane ``values`` into ``(n, max(counts))`` (lane order kept) plus a validity mask."""
    n, m = len(counts), int(counts.max(initial=0))
    row = np.repeat(np.arange(n), counts)
    col = np.arange(len(values)) - np.repeat(_first_of(counts), counts)
    out = np.full((n, m), fill)
    out[row, col] = values
    mask = np.zeros((n, m), dtype=bool)
    mask[row, col] = True
    return out, mask


def _bench_group(P: np.ndarray, pc: np.ndarray, G: np.ndarray, gc: np.ndarray,
                 ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lane.py ``bench`` for ``n`` images at once (none of them early-exited).

    Args:
        P: ``(sum(pc), R)`` predicted lanes of all images, image after image; ``pc``: ``(n,)`` counts.
        G: ``(sum(gc), R)`` GT lanes likewise; ``gc``: ``(n,)`` counts.
        ys: ``(R,)`` the GT's ``h_samples``.

    Returns:
        Per-image accuracy, FP and FN rates, each ``(n,)``.
    """
    n, R = len(pc), len(ys)
    thresh = PIXEL_THRESH / np.cos(np.arctan(_slopes(G, ys)))  # (nG,)
    g_img = np.repeat(np.arange(n), gc)
    # Every (GT lane, prediction of the same image) pair, grouped by GT lane.
    per_g = pc[g_img]
    pair_g = np.repeat(np.arange(len(G)), per_g)
    pair_p = np.repeat(_first_of(pc)[g_img] - _first_of(per_g), per_g) + np.arange(len(pair_g))
    best = np.zeros(len(G))
    if len(pair_g):
        Ps = np.where(P >= 0, P, -100.0)  # NaN compares False: missing, as in lane.py
        Gs = np.where(G >= 0, G, -100.0)
        diff = np.abs(Ps[pair_p] - Gs[pair_g])  # (pairs, R)
        margin = diff - thresh[pair_g, None]
        correct = margin < 0
        near = np.flatnonzero((np.abs(margin) <= 1e-9 * thresh[pair_g, None]).any(1))
        for k in near.tolist():  # decisions within ulps of the threshold: use lane.py's own fit
            t = PIXEL_THRESH / np.cos(np.arctan(_sklearn_slope(G[pair_g[k]], ys)))
            correct[k] = diff[k] < t
        score = correct.sum(1) / R
        has = per_g > 0
        best[has] = np.maximum.reduceat(score, _first_of(per_g)[has])
    best2, gmask = _per_image(best, gc, 0.0)
    miss = ((best2 < PT_THRESH) & gmask).sum(1)
    fp = pc - (gc - miss)
    fn = miss - ((gc > 4) & (miss > 0))
    s = np.zeros(n)
    for j in range(best2.shape[1]):  # sequential like Python's sum(line_accs); padding adds an exact 0.0
        s = s + best2[:, j]
    worst = np.where(gmask, best2, np.inf).min(1, initial=np.inf)
    s = np.where(gc > 4, s - worst, s)
    denom = np.maximum(np.minimum(4, gc), 1).astype(np.float64)
    return s / denom, np.where(pc > 0, fp / np.maximum(pc, 1), 0.0), fn / denom


def evaluate_tusimple(gt_file: str | Path, pred_file: str | Path, per_image: bool = False) -> dict[str, Any]:
    """Score a TuSimple prediction file exactly as the official ``lane.py``.

    Args:
        gt_file: ground-truth JSON lines (``raw_file``, ``lanes``, ``h_samples``), e.g. ``test_label.json``.
        pred_file: prediction JSON lines (``raw_file``, ``lanes`` with one x per GT ``h_samples`` row,
            negative = no point, ``run_time`` in ms), one line per GT line.
        per_image: also return ``images``: ``{raw_file: [accuracy, fp, fn]}``.

    Returns:
        ``{"benchmark": "tusimple", "accuracy", "fp", "fn", "precision", "recall", "f1", "num_images",
        "num_gt", "zeroed": {"run_time", "lane_count"}, "warnings": {...}}`` (fractions, not percent;
        ``precision``/``recall`` are ``1 - fp``/``1 - fn``), plus ``images`` when requested.

    Raises:
        DataError: unreadable or malformed files (naming file and line), a prediction for an unknown
            ``raw_file``, or a line count that differs from the GT's (lane.py rejects these too).
    """
    warnings: Counter = Counter()
    gt = _read_table(gt_file, warnings)
    gts: dict[str, int] = {}
    good_hs: dict[tuple, int] = {}
    gt_rows = np.zeros(len(gt.recs), dtype=np.int64)
    gt_hs_id = np.zeros(len(gt.recs), dtype=np.int64)
    for i, r in enumerate(gt.recs):
        if not isinstance(r, dict):
            raise DataError(gt.path, f"expected a JSON object, got {type(r).__name__}", line=i + 1)
        for key in ("raw_file", "lanes", "h_samples"):
            if key not in r:
                raise DataError(gt.path, f"missing key {key!r}", line=i + 1)
        hs = r["h_samples"]
        key = tuple(hs) if isinstance(hs, list) else None
        if key not in good_hs:
            if key is None or not hs or not all(_is_number(v) for v in hs):
                raise DataError(gt.path, "'h_samples' must be a non-empty list of numbers", line=i + 1)
            good_hs[key] = len(good_hs)  # validated once per distinct row set (usually one per file)
        gt_rows[i], gt_hs_id[i] = len(hs), good_hs[key]
        if r["raw_file"] in gts:
            warnings["duplicate_gt_raw_file"] += 1  # lane.py keeps the last line
        gts[r["raw_file"]] = i
    gt_nl = np.diff(gt.lane_start)
    bad = gt.lane_len != np.repeat(gt_rows, gt_nl)
    if bad.any():
        line = _first_line_where(bad, np.repeat(np.arange(len(gt.recs)), gt_nl))
        raise DataError(gt.path, f"a lane's length differs from len(h_samples) = {gt_rows[line - 1]}",
                        line=line)
    if not np.isfinite(gt.values).all():
        vline = np.repeat(np.repeat(np.arange(len(gt.recs)), gt_nl), gt.lane_len)
        raise DataError(gt.path, "non-finite x value (lane.py's regression rejects it)",
                        line=_first_line_where(~np.isfinite(gt.values), vline))

    pred = _read_table(pred_file, warnings)
    n = len(pred.recs)
    if n != len(gt.recs):
        raise DataError(pred.path, f"{n} prediction lines for {len(gt.recs)} ground-truth lines in {gt.path} "
                        "(lane.py needs one prediction per test image)")
    gidx = np.zeros(n, dtype=np.int64)
    run_time = np.zeros(n)
    seen: set[str] = set()
    for i, r in enumerate(pred.recs):
        if not isinstance(r, dict):
            raise DataError(pred.path, f"expected a JSON object, got {type(r).__name__}", line=i + 1)
        for key in ("raw_file", "lanes", "run_time"):
            if key not in r:
                raise DataError(pred.path, f"missing key {key!r} (lane.py needs raw_file, lanes, run_time)",
                                line=i + 1)
        raw = r["raw_file"]
        if not isinstance(raw, str) or raw not in gts:
            raise DataError(pred.path, f"raw_file {raw!r} is not in the ground truth {gt.path}", line=i + 1)
        if raw in seen:
            warnings["duplicate_pred_raw_file"] += 1  # lane.py counts the line again
        seen.add(raw)
        gidx[i] = gts[raw]
        rt = r["run_time"]
        if isinstance(rt, bool):
            warnings["boolean_run_time"] += 1
        elif not _is_number(rt):
            raise DataError(pred.path, f"run_time must be a number of milliseconds, got {rt!r}", line=i + 1)
        run_time[i] = rt
    p_nl = np.diff(pred.lane_start)
    rows = gt_rows[gidx]
    bad = pred.lane_len != np.repeat(rows, p_nl)
    if bad.any():
        line = _first_line_where(bad, np.repeat(np.arange(n), p_nl))
        raise DataError(pred.path, f"a lane's length differs from the ground truth's len(h_samples) = "
                        f"{rows[line - 1]} (lane.py: 'Format of lanes error')", line=line)
    nonfinite = int((~np.isfinite(pred.values)).sum())
    if nonfinite:
        warnings["nonfinite_pred_values"] += nonfinite  # lane.py reads NaN/-inf as missing, +inf as wrong

    g_nl = gt_nl[gidx]
    slow = run_time > MAX_RUN_TIME_MS  # NaN compares False, as in lane.py
    crowd = ~slow & (p_nl > g_nl + 2)
    early = slow | crowd
    acc, fp, fn = np.zeros(n), np.zeros(n), np.where(early, 1.0, 0.0)
    hs_list = list(good_hs)
    for h in _distinct(gt_hs_id[gidx[~early]]):
        idx = np.flatnonzero(~early & (gt_hs_id[gidx] == h))
        R = len(hs_list[h])
        p_lanes = _ranges(pred.lane_start[idx], p_nl[idx])
        g_lanes = _ranges(gt.lane_start[gidx[idx]], g_nl[idx])
        ys = np.asarray(hs_list[h], dtype=np.float64)
        res = _bench_group(pred.gather(p_lanes, R), p_nl[idx], gt.gather(g_lanes, R), g_nl[idx], ys)
        acc[idx], fp[idx], fn[idx] = res
    num = len(gts)
    # Sequential sums in file order, as lane.py accumulates them.
    accuracy, fp_rate, fn_rate = sum(acc.tolist()) / num, sum(fp.tolist()) / num, sum(fn.tolist()) / num
    result: dict[str, Any] = {
        "benchmark": "tusimple",
        "accuracy": accuracy,
        "fp": fp_rate,
        "fn": fn_rate,
        "precision": 1.0 - fp_rate,
        "recall": 1.0 - fn_rate,
        "f1": f1_paper(fp_rate, fn_rate),
        "num_images": n,
        "num_gt": num,
        "zeroed": {"run_time": int(slow.sum()), "lane_count": int(crowd.sum())},
        "warnings": dict(warnings),
    }
    if per_image:
        result["images"] = {r["raw_file"]: [float(acc[i]), float(fp[i]), float(fn[i])]
                            for i, r in enumerate(pred.recs)}
    return result


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every (s, c)."""
    total = int(counts.sum())
    return np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)


def f1_paper(fp: float, fn: float) -> float:
    """TuSimple F1 by the paper convention (P = 1 - FP, R = 1 - FN) from FP and FN rates."""
    p, r = 1.0 - fp, 1.0 - fn
    return 2 * p * r / (p + r) if p + r > 0 and not math.isnan(p + r) else 0.0


def format_tusimple(result: dict[str, Any]) -> str:
    """Human-readable table of an :func:`evaluate_tusimple` result."""
    rows = [
        ("Accuracy", f"{100 * result['accuracy']:.2f} %"),
        ("FP", f"{result['fp']:.4f}"),
        ("FN", f"{result['fn']:.4f}"),
        ("F1", f"{100 * result['f1']:.2f} %  (P = 1 - FP, R = 1 - FN)"),
        ("images", f"{result.get('num_images', '?')} ({result.get('num_gt', '?')} unique GT)"),
    ]
    z = result.get("zeroed", {})
    if z.get("run_time") or z.get("lane_count"):
        rows.append(("zeroed", f"{z.get('run_time', 0)} over 200 ms, "
                               f"{z.get('lane_count', 0)} with more than #gt + 2 lanes"))
    w = result.get("warnings") or {}
    if w:
        rows.append(("warnings", ", ".join(f"{k}: {v}" for k, v in sorted(w.items()))))
    width = max(len(k) for k, _ in rows)
    return "\n".join(["TuSimple (official lane.py metric)"] + [f"  {k:<{width}}  {v}" for k, v in rows])
