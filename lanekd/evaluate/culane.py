"""CULane F1 evaluator with bit-exact parity to the official C++ tool (XingangPan/SCNN lane_evaluation).

Algorithm, every step as the official tool (XingangPan/SCNN ``lane_evaluation``) does it:

1. Files: the annotation/prediction path of a list entry is the directory joined with the entry, with
   everything after its last ``.`` replaced by ``lines.txt``. A missing file means zero lanes.
2. Parsing: every text line is one lane (a blank line is a lane with no points; a final newline is not
   a lane); numbers are read pairwise as double and stored as float32; reading a line stops at the first
   token that is not a number, and an unpaired last number is dropped. Where a file relies on those
   rules, the result is the official one and ``warnings`` counts the occurrences (``strict=True`` raises
   :class:`~lanekd.errors.DataError` instead).
3. Interpolation: a lane with 3+ points becomes a natural cubic spline in x(t), y(t) over cumulative
   chord length, sampled 50 times per segment plus the last point (float32); 2-point lanes stay a
   segment; lanes with < 2 points have IoU 0 with everything but still count.
4. Drawing: consecutive points (``cvRound``) joined by thickness-``width`` lines on an H x W canvas with
   OpenCV 4.6's rasteriser (:mod:`lanekd.evaluate._raster`; ``rasterizer="cv2"`` uses the installed
   ``cv2.line`` instead, which differs for a few lanes on opencv-python >= 4.7).
5. IoU = |A and B| / |A or B| in pixels (NaN for 0/0), maximum-weight bipartite matching
   (``scipy.optimize.linear_sum_assignment`` on the IoU matrix, NaN as 0; :mod:`._assign` replicates it
   without the import), TP iff matched IoU > ``iou``.
6. precision = tp/(tp+fp), recall = tp/(tp+fn), -1 where the denominator is 0; F = 2PR/(P+R)
   (0 when P + R = 0, where the C++ tool prints nan).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lanekd.errors import ConfigError, DataError
from lanekd.evaluate import _raster

CULANE_SIZE = (590, 1640)
SPLITS = ("normal", "crowd", "hlight", "shadow", "noline", "arrow", "curve", "cross", "night")
SPLIT_FILES = {name: f"test{i}_{name}.txt" for i, name in enumerate(SPLITS)}
SPLIT_TITLES = {"normal": "Normal", "crowd": "Crowded", "hlight": "Dazzle light", "shadow": "Shadow",
                "noline": "No line", "arrow": "Arrow", "curve": "Curve", "cross": "Crossroad",
                "night": "Night"}
SAMPLES_PER_SEGMENT = 50

# a decimal number as C++ ``istream >> double`` accepts it (the longest such prefix of a token is read)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# characters of a file that may take the fast path (plain decimal numbers, spaces, tabs, newlines)
_NOT_PLAIN = re.compile(r"[^0-9eE+\-. \t\n]")


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
@dataclass
class ParseReport:
    """What :func:`parse_lines` had to tolerate; ``issues`` holds ``(line, message)`` pairs."""

    issues: list[tuple[int, str]] = field(default_factory=list)


def parse_lines(text: str, path: str | Path = "<string>", strict: bool = False,
                report: ParseReport | None = None) -> list[np.ndarray]:
    """Parse a CULane ``.lines.txt`` text exactly as the official tool reads it.

    Args:
        text: file content.
        path: file name for messages.
        strict: raise :class:`DataError` (file:line) on anything the official reader silently tolerates
            (blank lines, non-numeric tokens, an unpaired number).
        report: collects tolerated issues when not strict.

    Returns:
        One (N, 2) float32 array of (x, y) per text line (N may be 0 or 1).
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last lane, it does not start one
    fast = _parse_plain(text, lines)
    if fast is not None:
        return fast
    lanes: list[np.ndarray] = []
    for lineno, line in enumerate(lines, start=1):
        values: list[float] = []
        problem = None
        for tok in line.split():
            m = _NUMBER.match(tok)
            if m is None:
                problem = f"non-numeric token {tok[:20]!r}; the rest of the line is ignored"
                break
            values.append(float(m.group(0)))
            if m.end() != len(tok):
                problem = f"non-numeric token {tok[:20]!r}; the rest of the line is ignored"
                break
        if problem is None and len(values) % 2 == 1:
            problem = "odd number of values; the last one is ignored"
        if problem is None and not values:
            problem = "blank line (counted as a lane without points)"
        if problem is not None:
            if strict:
                raise DataError(path, problem, line=lineno)
            if report is not None:
                report.issues.append((lineno, problem))
        n = len(values) // 2
        lanes.append(np.asarray(values[:2 * n], dtype=np.float64).astype(np.float32).reshape(n, 2))
    return lanes


def _parse_plain(text: str, lines: list[str]) -> list[np.ndarray] | None:
    """Fast path of :func:`parse_lines` for files with nothing to tolerate (else None).

    With only these characters, ``float`` accepts a token exactly when the C++ reader reads all of it
    (``[+-]? (digits [. digits] | . digits) ([eE] [+-]? digits)?``), so a file whose every line holds
    whole (x, y) pairs of such tokens reads the same either way.
    """
    if _NOT_PLAIN.search(text) is not None:
        return None
    pairs = [len(line.split()) for line in lines]
    if not all(n and not n & 1 for n in pairs):
        return None
    try:
        values = np.array(list(map(float, text.split())), dtype=np.float64)
    except ValueError:
        return None
    values = values.astype(np.float32).reshape(-1, 2)
    out, a = [], 0
    for n in pairs:
        out.append(values[a:a + n // 2])
        a += n // 2
    return out


def read_lines_file(path: str | Path, strict: bool = False,
                    report: ParseReport | None = None) -> list[np.ndarray]:
    """Read a ``.lines.txt`` file; a missing file is zero lanes (as the official tool reads it)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return []
    except IsADirectoryError:
        raise DataError(p, "is a directory, expected a .lines.txt file") from None
    except OSError as e:
        raise DataError(p, f"cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(p, "not a text file (invalid UTF-8)", line=line) from None
    return parse_lines(text, p, strict=strict, report=report)


_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[9, 10, 32]] = True  # token separators of plain files (tab, newline, space)
_NOT_PLAIN_B = re.compile(_NOT_PLAIN.pattern.encode())


def read_lines_files(paths: Sequence[str | Path], strict: Sequence[bool] | None = None,
                     reports: Sequence[ParseReport | None] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`read_lines_file` of many files at once, as flat arrays.

    Plain files (see :func:`_parse_plain`) are joined and tokenised together with numpy; the others go
    through :func:`parse_lines` one by one, so every file reads exactly as the official tool reads it.

    Args:
        paths: F files (a missing one is zero lanes).
        strict, reports: per file, as for :func:`read_lines_file` (default: not strict, no report).

    Returns:
        ``(pts, lane_len, file_lanes)``: (P, 2) float32 points of all lanes in file order, (L,) int64
        points per lane, (F,) int64 lanes per file.
    """
    n = len(paths)
    strict = [False] * n if strict is None else strict
    reports = [None] * n if reports is None else reports
    raws: list[bytes] = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                raws.append(f.read())
        except FileNotFoundError:
            raws.append(b"")  # zero lanes, like an empty file
        except OSError:
            read_lines_file(p)  # raises the one-line DataError for this path
            raise
    plain = [True] * n
    if _NOT_PLAIN_B.search(b"".join(raws)) is not None:
        plain = [_NOT_PLAIN_B.search(r) is None for r in raws]
    sel = [i for i in range(n) if plain[i]]
    fast = _parse_plain_many([raws[i] for i in sel])
    if fast is None:  # a plain-looking token that is not a number ("1e"): file by file
        sel, plain = [], [False] * n
        fast = _parse_plain_many([])
    f_pts, f_len, f_files, f_bad = fast  # type: ignore[misc]
    for j in np.flatnonzero(f_bad).tolist():
        plain[sel[j]] = False  # blank or odd lines: the tolerant reader
    if all(plain):
        return f_pts, f_len, f_files
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    f_lane0 = np.concatenate([[0], np.cumsum(f_files)])
    f_pt0 = np.concatenate([[0], np.cumsum(f_len)])
    where = {i: j for j, i in enumerate(sel)}
    for i in range(n):
        if plain[i]:
            j = where[i]
            a, b = f_lane0[j], f_lane0[j + 1]
            parts.append((f_pts[f_pt0[a]:f_pt0[b]], f_len[a:b]))
            continue
        lanes = _decode_and_parse(raws[i], paths[i], strict[i], reports[i])
        parts.append((np.concatenate([np.zeros((0, 2), np.float32), *lanes]),
                      np.array([len(v) for v in lanes], np.int64)))
    return (np.concatenate([q for q, _ in parts]).reshape(-1, 2).astype(np.float32, copy=False),
            np.concatenate([np.zeros(0, np.int64), *(c for _, c in parts)]),
            np.array([len(c) for _, c in parts], np.int64))


def _decode_and_parse(raw: bytes, path: str | Path, strict: bool, report: ParseReport | None
                      ) -> list[np.ndarray]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(Path(path), "not a text file (invalid UTF-8)", line=line) from None
    return parse_lines(text, path, strict=strict, report=report)


def _parse_plain_many(raws: list[bytes]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Plain files (no character outside :data:`_NOT_PLAIN`'s complement) tokenised together.

    Returns:
        ``(pts, lane_len, file_lanes, bad)`` as for :func:`read_lines_files`, with ``bad`` (F,) marking
        files with a blank line or an odd number of tokens on a line (zero lanes here: the caller reads
        them with the tolerant rules); None when a token is not a number (``1e``).
    """
    ends = [r if not r or r.endswith(b"\n") else r + b"\n" for r in raws]  # every lane ends with \n
    lines = np.array([r.count(b"\n") for r in ends], np.int64)
    text = b"".join(ends)
    arr = np.frombuffer(text, np.uint8)
    ws = _WHITESPACE[arr]
    start = ~ws
    start[1:] &= ws[:-1]
    newline = np.flatnonzero(arr == 10)
    per_line = np.bincount(np.searchsorted(newline, np.flatnonzero(start)), minlength=len(newline))
    bad_line = (per_line == 0) | (per_line & 1 == 1)
    bad = np.zeros(len(raws), bool)
    if bad_line.any():
        bad[np.repeat(np.arange(len(raws)), lines)[bad_line]] = True
        good = _parse_plain_many([r for r, b in zip(raws, bad, strict=True) if not b])
        if good is None:
            return None
        files = np.zeros(len(raws), np.int64)
        files[~bad] = good[2]
        return good[0], good[1], files, bad
    # float() reads a plain token exactly when the C++ reader reads all of it (see _parse_plain)
    values = _plain_floats(text, int(per_line.sum()))
    if values is None:
        return None
    return values.astype(np.float32).reshape(-1, 2), per_line // 2, lines, bad


def _plain_floats(text: bytes, n: int) -> np.ndarray | None:
    """``float()`` of each of the ``n`` whitespace-separated tokens of ``text`` (None if one is not a number).

    numpy's text reader parses with the same correctly rounded routine as ``float()``, without a Python
    object per token. It raises (older numpy: warns) where it cannot read a token to its end (``1e``,
    ``1-2``); the count check also catches a reader that would split such a token in two.
    """
    if n:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                values = np.fromstring(text, np.float64, sep=" ")
            except (DeprecationWarning, ValueError):
                values = None
        if values is not None and len(values) == n:
            return values
    try:
        return np.array(list(map(float, text.split())), np.float64)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------------------
def spline_points(lane: np.ndarray, times: int = SAMPLES_PER_SEGMENT) -> np.ndarray:
    """The official natural cubic spline over chord length, ``times`` samples per segment.

    Args:
        lane: (N, 2) float32 points, N >= 2 (2-point lanes are returned unchanged).
        times: samples per segment.

    Returns:
        (times * (N - 1) + 1, 2) float32 points (NaN everywhere but the last point when two consecutive
        points coincide, as in the C++ code).
    """
    pts = np.asarray(lane, dtype=np.float32)
    if len(pts) <= 2:
        return pts
    return spline_batch(pts[None], times)[0]


def spline_batch(pts: np.ndarray, times: int = SAMPLES_PER_SEGMENT) -> np.ndarray:
    """:func:`spline_points` of G lanes with the same number of points N >= 3, vectorised over lanes.

    Every lane goes through exactly the scalar code's floating-point operations, in the same order.

    Args:
        pts: (G, N, 2) float32 points.
        times: samples per segment.

    Returns:
        (G, times * (N - 1) + 1, 2) float32.
    """
    pts = np.asarray(pts, dtype=np.float32)
    G, n = pts.shape[:2]
    coef = _spline_coef(pts)
    out = np.empty((G, (n - 1) * times + 1, 2), dtype=np.float32)
    # sample a few lanes at a time so the temporaries stay in cache
    step = max(1, 32768 // ((n - 1) * times))
    for a in range(0, G, step):
        _spline_sample(coef[:, a:a + step], times, out[a:a + step, :-1])
    out[:, -1] = pts[:, -1]
    return out


def _spline_coef(pts: np.ndarray, npts: np.ndarray | None = None) -> np.ndarray:
    """Segment coefficients (h, ax, bx, cx, dx, ay, by, cy, dy) of the official tool's natural spline.

    Every lane goes through exactly the C++ floating-point operations, in the same order (sequential
    along the lane, vectorised across lanes).

    Args:
        pts: (G, N, 2) float32 points of G lanes, padded at the end where a lane is shorter.
        npts: (G,) points per lane (>= 3; default: all N).

    Returns:
        (9, G, N - 1) float64; segment ``s`` of lane ``g`` is meaningful for ``s < npts[g] - 1``.
    """
    G, n = pts.shape[:2]
    npts = np.full(G, n) if npts is None else npts
    rows = np.arange(G)
    # coordinate differences are float32 (float - float in C++), the rest is double
    d = (pts[:, 1:] - pts[:, :-1]).astype(np.float64)
    dxv, dyv = d[..., 0], d[..., 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        h = np.sqrt(dxv ** 2 + dyv ** 2)
        A = h[:, :-1].copy()
        B = 2 * (h[:, :-1] + h[:, 1:])
        C = h[:, 1:].copy()
        Dx = 6 * (dxv[:, 1:] / h[:, 1:] - dxv[:, :-1] / h[:, :-1])
        Dy = 6 * (dyv[:, 1:] / h[:, 1:] - dyv[:, :-1] / h[:, :-1])
        # Thomas algorithm; entries past a lane's end get values nothing of that lane reads
        C[:, 0] = C[:, 0] / B[:, 0]
        Dx[:, 0] = Dx[:, 0] / B[:, 0]
        Dy[:, 0] = Dy[:, 0] / B[:, 0]
        for i in range(1, n - 2):
            tmp = B[:, i] - A[:, i] * C[:, i - 1]
            C[:, i] = C[:, i] / tmp
            Dx[:, i] = (Dx[:, i] - A[:, i] * Dx[:, i - 1]) / tmp
            Dy[:, i] = (Dy[:, i] - A[:, i] * Dy[:, i - 1]) / tmp
        Mx = np.zeros((G, n))
        My = np.zeros((G, n))
        Mx[rows, npts - 2] = Dx[rows, npts - 3]
        My[rows, npts - 2] = Dy[rows, npts - 3]
        ragged = bool((npts != n).any())
        for i in range(n - 4, -1, -1):
            mx = Dx[:, i] - C[:, i] * Mx[:, i + 2]
            my = Dy[:, i] - C[:, i] * My[:, i + 2]
            if ragged:  # lanes shorter than i + 4 points start their back substitution later
                inside = i <= npts - 4
                mx = np.where(inside, mx, Mx[:, i + 1])
                my = np.where(inside, my, My[:, i + 1])
            Mx[:, i + 1] = mx
            My[:, i + 1] = my
        Mx[:, 0] = My[:, 0] = 0.0
        Mx[rows, npts - 1] = My[rows, npts - 1] = 0.0
        ax = pts[:, :-1, 0].astype(np.float64)
        ay = pts[:, :-1, 1].astype(np.float64)
        bx = dxv / h - (2 * h * Mx[:, :-1] + h * Mx[:, 1:]) / 6
        by = dyv / h - (2 * h * My[:, :-1] + h * My[:, 1:]) / 6
        cx, cy = Mx[:, :-1] / 2, My[:, :-1] / 2
        ddx = (Mx[:, 1:] - Mx[:, :-1]) / (6 * h)
        ddy = (My[:, 1:] - My[:, :-1]) / (6 * h)
    return np.stack([h, ax, bx, cx, ddx, ay, by, cy, ddy])  # (9, G, n - 1)


def _spline_sample(coef: np.ndarray, times: int, out: np.ndarray) -> None:
    """Evaluate spline segments ``coef`` (9, g, s) at ``times`` steps each into ``out`` (g, s * times, 2)."""
    g = out.shape[0]
    for col, v in enumerate(_spline_values(coef, times)):
        out[..., col] = v.reshape(g, -1)


def _spline_values(coef: np.ndarray, times: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y, float64 (..., times), of spline segments ``coef`` (9, ...) at ``times`` steps each:
    ``a + b*t + c*pow(t, 2) + d*pow(t, 3)`` summed left to right as in the C++ code."""
    h, ax, bx, cx, ddx, ay, by, cy, ddy = (c[..., None] for c in coef)
    with np.errstate(invalid="ignore", over="ignore"):
        t = (h / times) * np.arange(times, dtype=np.float64)
        t2 = t * t
        t3 = np.power(t, 3.0)
        res = []
        for a, b, c, d in ((ax, bx, cx, ddx), (ay, by, cy, ddy)):
            acc = b * t  # in place from here: + and * commute exactly
            acc += a
            tmp = c * t2
            acc += tmp
            np.multiply(d, t3, out=tmp)
            acc += tmp
            res.append(acc)
    return res[0], res[1]


# --------------------------------------------------------------------------------------------------
# Rasterisation and IoU
# --------------------------------------------------------------------------------------------------
RASTERIZERS = ("opencv46", "cv2", "reference")


def _pixel_points(lane: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    lane = np.asarray(lane, dtype=np.float32).reshape(-1, 2)
    if len(lane) < 2:
        return None
    pts = spline_points(lane) if len(lane) > 2 else lane
    return _raster.cv_round(pts[:, 0]), _raster.cv_round(pts[:, 1])


def rasterize_lane(lane: np.ndarray, width: int = 30, size: tuple[int, int] = CULANE_SIZE,
                   rasterizer: str = "opencv46") -> _raster.LaneShape | None:
    """Interpolate and draw one lane as the official tool does.

    Args:
        lane: (N, 2) points (x, y) in pixels.
        width: line thickness.
        size: canvas (H, W).
        rasterizer: ``opencv46`` (default: OpenCV 4.6 pixels, fast), ``reference`` (same pixels, slow
            literal port used by tests) or ``cv2`` (the installed ``cv2.line``).

    Returns:
        The lane's pixel set, or None for a lane with fewer than 2 points (IoU 0 with everything).
    """
    pp = _pixel_points(lane)
    if pp is None:
        return None
    px, py = pp
    if rasterizer == "opencv46" and width >= 2:
        return _raster.lane_shape(px, py, size, width)
    if rasterizer == "reference" and width >= 2:
        m = _raster.draw_lane_reference(px, py, size, width)
    elif rasterizer in RASTERIZERS:
        m = _draw_cv2(px, py, size, width)
    else:
        raise ConfigError(f"unknown rasterizer {rasterizer!r}; choose from {', '.join(RASTERIZERS)}")
    return _mask_shape(m)


def _draw_cv2(px: np.ndarray, py: np.ndarray, size: tuple[int, int], width: int) -> np.ndarray:
    import cv2

    m = np.zeros(size, dtype=np.uint8)
    for i in range(len(px) - 1):
        cv2.line(m, (int(px[i]), int(py[i])), (int(px[i + 1]), int(py[i + 1])), 1, width)
    return m


def _mask_shape(m: np.ndarray) -> _raster.LaneShape:
    area = int(np.count_nonzero(m))
    if area == 0:
        return _raster.EMPTY
    ys = np.flatnonzero(m.any(axis=1))
    xs = np.flatnonzero(m.any(axis=0))
    sub = m[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1].copy()
    box = (int(ys[0]), int(xs[0]), int(ys[-1]), int(xs[-1]))
    return _raster.LaneShape(area, box, mask=(int(ys[0]), int(xs[0]), sub))


def iou_matrix(gt_lanes: Sequence[np.ndarray], pred_lanes: Sequence[np.ndarray], width: int = 30,
               size: tuple[int, int] = CULANE_SIZE, rasterizer: str = "opencv46") -> np.ndarray:
    """Pixel IoU of every (ground-truth, predicted) lane pair, as the official tool computes it.

    Args:
        gt_lanes, pred_lanes: lists of (N, 2) arrays of (x, y) points.
        width: line thickness in pixels.
        size: canvas (H, W).
        rasterizer: see :func:`rasterize_lane`.

    Returns:
        (G, P) float64 IoUs; 0 where a lane has < 2 points, NaN where both lanes draw no pixel.
    """
    if rasterizer == "opencv46" and width >= 2:
        return iou_matrices([(gt_lanes, pred_lanes)], width, size)[0]
    ga = [rasterize_lane(g, width, size, rasterizer) for g in gt_lanes]
    pa = [rasterize_lane(p, width, size, rasterizer) for p in pred_lanes]
    return _iou_from_shapes(ga, pa)


def _pixel_points_many(lanes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Interpolated pixel points of many lanes (each with >= 2 points), lanes with the same point count
    splined together.

    Returns:
        (px, py, counts, order): int32 ``cv_round`` coordinates of the lanes ``order[0], order[1], ...``
        concatenated, and (len(lanes),) points per lane in that order.
    """
    pts = np.concatenate([np.asarray(v, np.float32).reshape(-1, 2) for v in lanes])
    return lane_pixels(pts, np.array([len(v) for v in lanes], np.int64), dedupe=False)


_BLOCK = 32768  # spline samples evaluated together (the float64 temporaries stay in the L2 cache)


def _round_into(v: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = cvRound(float(v))``: ``v`` float64 stored as float32 (the C++ ``Point2f``), rounded half to
    even; NaN and values beyond int32 become ``INT_MIN`` (as :func:`_raster.cv_round32`)."""
    r = v.astype(np.float32)
    np.rint(r, out=r)
    lo, hi = (r.min(), r.max()) if r.size else (0.0, 0.0)
    if not (lo > -2.0**31 and hi < 2.0**31):  # NaN fails too
        r = np.where(np.abs(r) < np.float32(2.0**31), r, np.float32(_raster.INT_MIN))
    out[...] = r.reshape(out.shape)


def lane_pixels(pts: np.ndarray, lane_len: np.ndarray, dedupe: bool = True
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Interpolated pixel points of L lanes given flat, vectorised across all of them.

    Lanes with 3+ points are splined (:func:`spline_points`, the same floating-point operations), lanes
    with 2 points stay a segment; both are rounded with ``cvRound``.

    Args:
        pts: (P, 2) float32 points of the lanes, lane after lane.
        lane_len: (L,) points per lane, each >= 2.
        dedupe: drop consecutive repeated pixel points (a zero-length segment draws nothing more); the
            rasteriser does it anyway, earlier is cheaper.

    Returns:
        (px, py, counts, order): int32 pixel coordinates of lanes ``order[0], order[1], ...`` concatenated
        and (L,) points per lane in that order (lanes sorted by point count, stable).
    """
    pts = np.asarray(pts, np.float32).reshape(-1, 2)
    n = np.asarray(lane_len, np.int64)
    L = len(n)
    order = np.argsort(n, kind="stable")
    ns = n[order]
    first = (np.cumsum(n) - n)[order]  # first point of each lane, in sorted order
    # body: the spline samples of every segment (3+ points) or the first point (2 points); then the last
    body = np.where(ns > 2, SAMPLES_PER_SEGMENT * (ns - 1), 1)
    two = int(np.searchsorted(ns, 3))
    nb = int(body.sum())
    bx = np.empty(nb, np.int32)
    by = np.empty(nb, np.int32)
    p0 = pts[first[:two]]
    _round_into(p0[:, 0], bx[:two])
    _round_into(p0[:, 1], by[:two])
    coefs = []
    # 3+ point lanes splined together, each padded to the longest of its group (the lanes are sorted by
    # point count; a group's longest has at most twice the points of its shortest)
    g0 = two
    while g0 < L:
        g1 = int(np.searchsorted(ns, 2 * ns[g0], side="right"))
        k = ns[g0:g1]
        idx = first[g0:g1, None] + np.minimum(np.arange(int(k[-1])), k[:, None] - 1)
        c = _spline_coef(pts[idx], k)
        coefs.append(c[:, np.arange(c.shape[2]) < (k[:, None] - 1)])  # (9, segments), lane after lane
        g0 = g1
    if coefs:
        coef = np.concatenate(coefs, axis=1)
        step = max(1, _BLOCK // SAMPLES_PER_SEGMENT)
        for s in range(0, coef.shape[1], step):
            c = coef[:, s:s + step]
            o = slice(two + s * SAMPLES_PER_SEGMENT, two + (s + c.shape[1]) * SAMPLES_PER_SEGMENT)
            x, y = _spline_values(c, SAMPLES_PER_SEGMENT)
            _round_into(x, bx[o])
            _round_into(y, by[o])
    last = pts[first + ns - 1]
    lx = np.empty(L, np.int32)
    ly = np.empty(L, np.int32)
    _round_into(last[:, 0], lx)
    _round_into(last[:, 1], ly)
    if dedupe and nb > 1:
        keep = np.empty(nb, bool)
        keep[0] = True
        np.not_equal(bx[1:], bx[:-1], out=keep[1:])
        keep[1:] |= by[1:] != by[:-1]
        start = np.cumsum(body) - body
        keep[start] = True  # each lane's first point
        idx = np.flatnonzero(keep)
        bx, by = bx[idx], by[idx]
        body = np.diff(np.r_[np.searchsorted(idx, start), len(idx)])
    # lane j: its body, then its last point (unless it repeats the body's last)
    with_last = np.ones(L, bool)
    if dedupe and nb:
        end = np.cumsum(body) - 1
        with_last = (lx != bx[end]) | (ly != by[end])
    cnt = body + with_last
    is_last = np.zeros(int(cnt.sum()), bool)
    is_last[(np.cumsum(cnt) - 1)[with_last]] = True
    px = np.empty(len(is_last), np.int32)
    py = np.empty(len(is_last), np.int32)
    px[~is_last] = bx
    py[~is_last] = by
    px[is_last] = lx[with_last]
    py[is_last] = ly[with_last]
    return px, py, cnt, order


def iou_matrices(images: Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]], width: int = 30,
                 size: tuple[int, int] = CULANE_SIZE) -> list[np.ndarray]:
    """:func:`iou_matrix` (``opencv46`` rasteriser) of many images at once, vectorised across them.

    Args:
        images: (gt_lanes, pred_lanes) per image, lanes as (N, 2) arrays of (x, y) points.
        width: line thickness (>= 2).
        size: canvas (H, W).

    Returns:
        One (G, P) float64 IoU matrix per image.
    """
    lanes = [np.asarray(v, np.float32).reshape(-1, 2) for g, p in images for v in (*g, *p)]
    pts = np.concatenate([np.zeros((0, 2), np.float32), *lanes])
    lane_len = np.array([len(v) for v in lanes], np.int64)
    n_gt = np.array([len(g) for g, _ in images], np.int64)
    n_pred = np.array([len(p) for _, p in images], np.int64)
    return _iou_flat(pts, lane_len, n_gt, n_pred, width, size)[0]


def _iou_flat(pts: np.ndarray, lane_len: np.ndarray, n_gt: np.ndarray, n_pred: np.ndarray, width: int,
              size: tuple[int, int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray,
                                              np.ndarray]:
    """IoU matrices of I images whose lanes are given flat (each image: its GT lanes, then its predictions).

    Args:
        pts: (P, 2) float32 points; lane_len: (L,) points per lane; n_gt, n_pred: (I,) lanes per image.
        width, size: as for :func:`iou_matrix`.

    Returns:
        ``(matrices, vals, pair_image, a, b)``: one (G, P) float64 matrix per image, and the same values
        flat (images one after another, row-major) with the image, GT lane and predicted lane of each.
    """
    I = len(n_gt)
    per = n_gt + n_pred
    lane0 = np.cumsum(per) - per
    npair = n_gt * n_pred
    pimg = np.repeat(np.arange(I), npair)
    q = np.arange(int(npair.sum())) - np.repeat(np.cumsum(npair) - npair, npair)
    npr = n_pred[pimg]
    a = lane0[pimg] + q // np.maximum(npr, 1)  # GT lane of each pair
    b = lane0[pimg] + n_gt[pimg] + q % np.maximum(npr, 1)  # predicted lane
    vals = np.zeros(len(q))
    valid = lane_len >= 2
    drawn = np.flatnonzero(valid)
    use = valid[a] & valid[b]
    if len(drawn) and use.any():
        px, py, counts, order = lane_pixels(pts[np.repeat(valid, lane_len)],
                                            lane_len[drawn])
        runs = _raster.rasterize_batch(px, py, counts, size, width, deduped=True)
        rank = np.zeros(len(lane_len), np.int64)
        rank[drawn[order]] = np.arange(len(drawn))  # lane i is row rank[i] of the runs
        ra, rb = rank[a[use]], rank[b[use]]
        inter = runs.intersections(ra, rb)
        union = runs.area[ra] + runs.area[rb] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            vals[use] = np.where(union > 0, inter / union, math.nan)
    mats = np.split(vals, np.cumsum(npair)[:-1]) if I else []
    mats = [m.reshape(g, p) for m, g, p in zip(mats, n_gt.tolist(), n_pred.tolist(), strict=True)]
    return mats, vals, pimg, a, b


def _match_flat(mats: list[np.ndarray], vals: np.ndarray, pimg: np.ndarray, a: np.ndarray, b: np.ndarray,
                L: int, n_gt: np.ndarray, n_pred: np.ndarray, threshold: float) -> np.ndarray:
    """:func:`match_counts` of every image from :func:`_iou_flat`'s output -> (I, 3) int64 (tp, fp, fn).

    Where the positive pairs of an image form a matching (the usual case) every maximum-weight assignment
    takes all of them, so TPs are counted directly. So it does where each pair above the threshold
    outweighs the largest other IoU of its GT lane and of its predicted lane together: an assignment
    without such a pair gains by swapping it in, so every maximum-weight assignment holds all of them
    (and no other pair above the threshold). Other images are matched one by one.
    """
    I = len(n_gt)
    pos = vals > 0  # NaN is not
    lane_img = np.repeat(np.arange(I), n_gt + n_pred)
    shared = (np.bincount(a[pos], minlength=L) > 1) | (np.bincount(b[pos], minlength=L) > 1)
    hard = np.bincount(lane_img[shared], minlength=I) > 0
    above = vals > threshold
    tp = np.bincount(pimg[above], minlength=I)
    if hard.any():
        w = np.where(pos, vals, 0.0)
        # margin: far above the solver's rounding, so its choice cannot differ from the exact optimum
        weak = above & ~(w > _max_of_others(a, w) + _max_of_others(b, w) + 1e-9)
        hard &= np.bincount(pimg[weak], minlength=I) > 0
    for i in np.flatnonzero(hard).tolist():
        tp[i] = match_counts(mats[i], threshold)[0]
    return np.stack([tp, n_pred - tp, n_gt - tp], axis=1)


def _max_of_others(key: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per element, the largest ``w`` (>= 0) among the other elements with the same ``key`` (0 if none)."""
    if not len(w):
        return w
    order = np.lexsort((w, key))
    k, v = key[order], w[order]
    last = np.ones(len(k), bool)
    last[:-1] = k[1:] != k[:-1]
    end = np.flatnonzero(last)
    group = np.cumsum(np.r_[True, last[:-1]]) - 1
    top = v[end]
    second = np.where((end > 0) & (k[end - 1] == k[end]), v[end - 1], 0.0)
    out = np.empty(len(w))
    out[order] = np.where(last, second[group], top[group])
    return out


def _iou_from_shapes(ga: list[_raster.LaneShape | None], pa: list[_raster.LaneShape | None]) -> np.ndarray:
    out = np.zeros((len(ga), len(pa)), dtype=np.float64)
    for i, g in enumerate(ga):
        if g is None:
            continue
        for j, p in enumerate(pa):
            if p is None:
                continue
            inter = _raster.shape_intersection(g, p)
            union = g.area + p.area - inter
            out[i, j] = inter / union if union > 0 else math.nan
    return out


def match_counts(iou: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int]:
    """(tp, fp, fn) of one image from its IoU matrix (maximum-weight matching, strict threshold)."""
    g, p = iou.shape
    if g == 0 or p == 0:
        return 0, p, g
    positive = iou > 0  # NaN is not
    if positive.sum(axis=0).max() <= 1 and positive.sum(axis=1).max() <= 1:
        # the positive pairs form a matching: every maximum-weight assignment takes all of them
        tp = int(np.count_nonzero(iou > threshold))
        return tp, p - tp, g - tp
    from lanekd.evaluate._assign import max_weight_assignment

    rows, cols = max_weight_assignment(np.nan_to_num(iou, nan=0.0))
    matched = iou[rows, cols]
    tp = int(np.sum(matched > threshold))  # NaN compares False: never a TP
    return tp, p - tp, g - tp


def score_image(gt_lanes: Sequence[np.ndarray], pred_lanes: Sequence[np.ndarray], width: int = 30,
                iou: float = 0.5, size: tuple[int, int] = CULANE_SIZE,
                rasterizer: str = "opencv46") -> tuple[int, int, int]:
    """CULane (tp, fp, fn) of one image from in-memory lanes.

    Args:
        gt_lanes, pred_lanes: lists of (N, 2) arrays of (x, y) source-pixel points (empty arrays count
            as lanes with IoU 0, as in the official tool; drop them first if that is not wanted).
        width: line thickness (30 for CULane).
        iou: a matched pair is a TP iff its IoU is strictly greater.
        size: canvas (H, W).
        rasterizer: see :func:`rasterize_lane`.

    Returns:
        (tp, fp, fn).
    """
    if len(gt_lanes) == 0 or len(pred_lanes) == 0:
        return 0, len(pred_lanes), len(gt_lanes)
    return match_counts(iou_matrix(gt_lanes, pred_lanes, width, size, rasterizer), iou)


def prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    """Counts with precision, recall and F1 under the official tool's -1 conventions."""
    precision = tp / (tp + fp) if tp + fp > 0 else -1.0
    recall = tp / (tp + fn) if tp + fn > 0 else -1.0
    s = precision + recall
    f1 = 2 * precision * recall / s if s != 0 else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


# --------------------------------------------------------------------------------------------------
# Whole-list evaluation
# --------------------------------------------------------------------------------------------------
def lines_path(root: str | Path, entry: str) -> str:
    """The official path mapping: ``root`` + entry with everything after its last '.' -> 'lines.txt'.

    The C++ tool concatenates strings; we join so a missing trailing slash on ``root`` or a leading
    slash on the entry (``test.txt`` has one, ``test_split`` lists do not) both work.
    """
    entry = entry.strip()
    dot = entry.rfind(".")
    stem = entry[:dot + 1] if dot >= 0 else entry + "."
    return os.path.join(str(root), stem.lstrip("/") + "lines.txt")


def read_list(path: str | Path) -> list[str]:
    """Image entries of a list file (first whitespace-separated field of each non-empty line)."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise DataError(p, "list file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(p, f"cannot read list file: {e}") from None
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _image_key(entry: str) -> str:
    e = entry.strip().lstrip("/")
    dot = e.rfind(".")
    return e[:dot] if dot >= 0 else e


_BATCH = 128  # images rasterised together (bounds the (lanes, H) run arrays to a few MB)


@dataclass
class _Job:
    gt_dir: str
    pred_dir: str
    width: int
    iou: float
    size: tuple[int, int]
    rasterizer: str
    strict: bool


def _score_entries(job: _Job, entries: list[str]) -> tuple[list[tuple[int, int, int]], list[np.ndarray],
                                                            list[tuple[str, int, str]]]:
    issues: list[tuple[str, int, str]] = []
    if job.rasterizer != "opencv46" or job.width < 2:
        counts, ious = [], []
        for entry in entries:
            pr_path = lines_path(job.pred_dir, entry)
            rep = ParseReport()
            g = read_lines_file(lines_path(job.gt_dir, entry))
            p = read_lines_file(pr_path, strict=job.strict, report=rep)
            issues.extend((pr_path, ln, msg) for ln, msg in rep.issues)
            m = (iou_matrix(g, p, job.width, job.size, job.rasterizer) if g and p
                 else np.zeros((len(g), len(p))))
            ious.append(m)
            counts.append(match_counts(m, job.iou))
        return counts, ious, issues
    counts_all: list[tuple[int, int, int]] = []
    ious_all: list[np.ndarray] = []
    for s in range(0, len(entries), _BATCH):
        part = entries[s:s + _BATCH]
        paths = [lines_path(d, e) for e in part for d in (job.gt_dir, job.pred_dir)]
        reports = [None if i % 2 == 0 else ParseReport() for i in range(len(paths))]
        strict = [job.strict and i % 2 == 1 for i in range(len(paths))]
        pts, lane_len, file_lanes = read_lines_files(paths, strict, reports)
        for path, rep in zip(paths, reports, strict=True):
            if rep is not None and rep.issues:
                issues.extend((path, ln, msg) for ln, msg in rep.issues)
        n_gt, n_pred = file_lanes[0::2], file_lanes[1::2]
        mats, vals, pimg, a, b = _iou_flat(pts, lane_len, n_gt, n_pred, job.width, job.size)
        c = _match_flat(mats, vals, pimg, a, b, len(lane_len), n_gt, n_pred, job.iou)
        counts_all.extend(map(tuple, c.tolist()))
        ious_all.extend(mats)
    return counts_all, ious_all, issues


def _score_chunk(args: tuple[_Job, list[str]]) -> Any:
    return _score_entries(*args)


def evaluate_culane(gt_dir: str | Path, pred_dir: str | Path, list_file: str | Path | None = None,
                    split_dir: str | Path | None = None, iou: float = 0.5, width: int = 30,
                    workers: int | str = "auto", size: tuple[int, int] = CULANE_SIZE, per_image: bool = False,
                    rasterizer: str = "opencv46", strict: bool = False) -> dict[str, Any]:
    """Evaluate a CULane prediction tree like the official tool (see module docstring).

    Args:
        gt_dir: annotation root (``.lines.txt`` next to the list's image paths).
        pred_dir: prediction root with the same relative layout.
        list_file: image list; default ``<gt_dir>/list/test.txt``.
        split_dir: folder with ``test0_normal.txt`` .. ``test8_night.txt``; default ``<list dir>/test_split``
            when present. Images of the list that no split names count only in ``overall``.
        iou: TP threshold (strict ``>``).
        width: line thickness in pixels.
        workers: processes (1 = in-process; ``"auto"``: the CPUs this process may use).
        size: canvas (H, W).
        per_image: include ``images``: {key: {tp, fp, fn, iou}} in the result.
        rasterizer: ``opencv46`` (default), ``reference`` or ``cv2``; see :func:`rasterize_lane`.
        strict: raise :class:`DataError` on prediction files the official tool reads only by tolerance.

    Returns:
        ``{"benchmark": "culane", "overall": {tp, fp, fn, precision, recall, f1}, "splits": {name: {...}},
        "images_evaluated": N, "warnings": N, "warning_examples": [...], "missing_predictions": N,
        "settings": {...}}``. ``warning_examples`` starts with a line saying so when most prediction
        files are missing; a list entry without a ground-truth file raises :class:`DataError`.
    """
    if rasterizer not in RASTERIZERS:
        raise ConfigError(f"unknown rasterizer {rasterizer!r}; choose from {', '.join(RASTERIZERS)}")
    if width < 1:
        raise ConfigError(f"--width must be >= 1, got {width}")
    if not 0.0 <= iou <= 1.0:
        raise ConfigError(f"--iou must be in [0, 1], got {iou}")
    workers = resolve_workers(workers)
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    if not gt_dir.is_dir():
        raise DataError(gt_dir, "ground-truth directory not found")
    if not pred_dir.is_dir():
        raise DataError(pred_dir, "prediction directory not found")
    list_path = Path(list_file) if list_file is not None else gt_dir / "list" / "test.txt"
    entries = read_list(list_path)
    if split_dir is None and (list_path.parent / "test_split").is_dir():
        split_dir = list_path.parent / "test_split"
    splits: dict[str, list[str]] = {}
    if split_dir is not None:
        sd = Path(split_dir)
        if not sd.is_dir():
            raise DataError(sd, "split directory not found")
        for name, fname in SPLIT_FILES.items():
            if (sd / fname).is_file():
                splits[name] = [_image_key(e) for e in read_list(sd / fname)]
    notes, missing = _check_files(gt_dir, pred_dir, list_path, entries)
    job = _Job(str(gt_dir), str(pred_dir), width, iou, tuple(size), rasterizer, strict)  # type: ignore[arg-type]
    counts, ious, issues = _run(job, entries, workers)
    keys = [_image_key(e) for e in entries]
    per = dict(zip(keys, counts, strict=True))
    total = np.sum(np.array(counts, dtype=np.int64).reshape(-1, 3), axis=0)
    result: dict[str, Any] = {
        "benchmark": "culane",
        "overall": prf(*(int(v) for v in total)),
        "splits": {},
        "images_evaluated": len(entries),
        "warnings": len(notes) + len(issues),
        "warning_examples": notes + [f"{p}:{ln}: {msg}" for p, ln, msg in issues[:5]],
        "missing_predictions": missing,
        "settings": {"iou": iou, "width": width, "size": list(size), "rasterizer": rasterizer},
    }
    for name, skeys in splits.items():
        missing = [k for k in skeys if k not in per]
        if missing:
            raise DataError(Path(split_dir) / SPLIT_FILES[name],  # type: ignore[arg-type]
                            f"{len(missing)} entries are not in {list_path.name} (e.g. {missing[0]})")
        c = np.sum(np.array([per[k] for k in skeys], dtype=np.int64).reshape(-1, 3), axis=0)
        result["splits"][name] = prf(*(int(v) for v in c))
    if per_image:
        # NaN (0/0 IoU) becomes null so the document stays valid JSON
        result["images"] = {k: {"tp": c[0], "fp": c[1], "fn": c[2],
                                "iou": [[None if math.isnan(v) else v for v in row] for row in m.tolist()]}
                            for k, c, m in zip(keys, counts, ious, strict=True)}
    return result


def resolve_workers(workers: int | str) -> int:
    """``"auto"`` -> the CPUs available to this process; else a count >= 1 (``ConfigError`` if not)."""
    if workers == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    try:
        n = int(workers)
    except ValueError:
        raise ConfigError(f"--workers must be 'auto' or a number >= 1, got {workers!r}") from None
    if n < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    return n


def _check_files(gt_dir: Path, pred_dir: Path, list_path: Path, entries: list[str]
                 ) -> tuple[list[str], int]:
    """Refuse list entries without ground truth; warn when most prediction files are missing.

    The official tool scores a missing file as an image without lanes, silently: a wrong ``--pred`` or
    ``--list`` would still give a (meaningless) score.
    """
    for entry in entries:
        gt = lines_path(gt_dir, entry)
        if not os.path.isfile(gt):
            raise DataError(list_path, f"entry {entry} has no ground-truth file {gt}",
                            line=_list_line(list_path, entry))
    missing = sum(not os.path.isfile(lines_path(pred_dir, e)) for e in entries)
    if entries and missing == len(entries):
        return [f"{pred_dir}: none of the {len(entries)} prediction files exists (every image scored as "
                f"no lanes; e.g. {lines_path(pred_dir, entries[0])})"], missing
    if missing * 2 > len(entries):
        return [f"{pred_dir}: {missing} of {len(entries)} prediction files are missing (scored as "
                "no lanes)"], missing
    return [], missing


def _list_line(path: Path, entry: str) -> int | None:
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if line.split()[:1] == [entry]:
            return i
    return None


def _run(job: _Job, entries: list[str], workers: int) -> tuple[list, list, list]:
    if workers <= 1 or len(entries) < 64:
        return _score_entries(job, entries)
    import multiprocessing as mp

    if job.rasterizer == "opencv46" and job.width >= 2:
        _raster.prepare_tables(job.width)  # build the stamp tables once, before forking
    n_chunks = workers * 4
    size = math.ceil(len(entries) / n_chunks)
    chunks = [(job, entries[i:i + size]) for i in range(0, len(entries), size)]
    counts: list = []
    ious: list = []
    issues: list = []
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(workers) as pool:
        for c, m, w in pool.map(_score_chunk, chunks):
            counts.extend(c)
            ious.extend(m)
            issues.extend(w)
    return counts, ious, issues
