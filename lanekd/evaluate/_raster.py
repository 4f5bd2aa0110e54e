"""Thick-line rasterisation compatible with OpenCV 4.6's ``cv::line`` (8-connected, no anti-aliasing).

The official CULane evaluator draws every lane as consecutive ``cv::line`` segments of thickness 30 on
a 590x1640 canvas, and its published vectors were produced against OpenCV 4.6. opencv-python 4.7+
rasterises a few thick lines differently, so this module re-implements the 4.6 algorithm from its
description (our own code, no OpenCV source):

* a segment of thickness ``t > 1`` is a convex quadrilateral (the segment's rectangle, corners offset by
  ``round(t/2 * normal)`` in 16.16 fixed point) filled by OpenCV's convex-polygon scan converter, whose
  outline is also drawn with its fixed-point line walker (``Line2``), plus a filled Bresenham circle of
  radius ``(t + 1) // 2`` at both ends (round caps);
* pixel coordinates are ``cvRound`` of the float32 points (round half to even; NaN or out-of-range
  values become ``INT_MIN``, which the official tool hits on lanes with repeated points);
* the line clipper's double-precision intercepts are reproduced, so such degenerate lanes draw the same
  pixels (two 1-px lines across the image: the outline of a quad whose fill OpenCV skips).

Two implementations share these rules:

* :func:`draw_lane_reference` - literal, scalar, slow; the definition used by the tests (and by
  ``rasterizer="reference"``);
* :func:`rasterize_batch` - many lanes at once, vectorised: a y-monotone chain of unit steps is the union
  of its cap disks plus a few corner pixels (precomputed stamps); longer steps clear of the border add
  their shape's rows from a table; steps the border clipper touches and lanes that are not y-monotone
  are drawn by :func:`segment_runs_batch`, the scan converter, outline walker and caps vectorised over
  segments. Only lanes with ``INT_MIN``/huge points or a single point use the scalar painter.

A lane is returned as a :class:`LaneShape`: either one run per row (``rows``) or a bitmap (``mask``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

XY_SHIFT = 16
XY_ONE = 1 << XY_SHIFT
HALF = XY_ONE >> 1
INT_MIN = -(1 << 31)
_M64 = (1 << 64) - 1


def _wrap64(v: int) -> int:
    v &= _M64
    return v - (1 << 64) if v >= (1 << 63) else v


def _wrap32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def cv_round(values: np.ndarray) -> np.ndarray:
    """``cvRound`` of float32 values as x86 OpenCV does: half to even; NaN/overflow -> ``INT_MIN``.

    Args:
        values: float array of any shape.

    Returns:
        int64 array of the same shape.
    """
    return cv_round32(values).astype(np.int64)


def cv_round32(values: np.ndarray) -> np.ndarray:
    """:func:`cv_round` as int32 (the C result type)."""
    r = np.rint(np.asarray(values, dtype=np.float32))
    # NaN fails the comparison; -2**31 itself is INT_MIN either way
    return np.where(np.abs(r) < np.float32(2.0**31), r, np.float32(INT_MIN)).astype(np.int32)


# --------------------------------------------------------------------------------------------------
# Scalar reference painter (literal port of the algorithm's arithmetic)
# --------------------------------------------------------------------------------------------------
class _Canvas:
    """A uint8 bitmap covering rows ``y0..y0+h-1`` and columns ``x0..x0+w-1`` of an ``H x W`` image."""

    def __init__(self, size: tuple[int, int], box: tuple[int, int, int, int] | None = None) -> None:
        self.H, self.W = size
        if box is None:
            box = (0, 0, self.H, self.W)
        self.y0, self.x0, h, w = box
        self.mask = np.zeros((h, w), dtype=np.uint8)

    def hline(self, y: int, x1: int, x2: int) -> None:
        # callers clip to the image; the box always covers every pixel a lane can touch
        self.mask[y - self.y0, x1 - self.x0:x2 - self.x0 + 1] = 1

    def put(self, x: int, y: int) -> None:
        self.mask[y - self.y0, x - self.x0] = 1

    def put_many(self, xs: np.ndarray, ys: np.ndarray) -> None:
        self.mask[ys - self.y0, xs - self.x0] = 1


class _Recorder(_Canvas):
    """A canvas that records what is drawn (runs and pixels) instead of painting a bitmap: lanes with
    ``INT_MIN`` points draw two 1-px lines across the image, which would need a full-image bitmap."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.H, self.W = size
        self.y0 = self.x0 = 0
        self.runs: list[tuple[int, int, int]] = []
        self.pixels: list[tuple[np.ndarray, np.ndarray]] = []

    def hline(self, y: int, x1: int, x2: int) -> None:
        self.runs.append((y, x1, x2))

    def put(self, x: int, y: int) -> None:
        self.runs.append((y, x, x))

    def put_many(self, xs: np.ndarray, ys: np.ndarray) -> None:
        self.pixels.append((xs, ys))

    def flat(self) -> np.ndarray:
        """Sorted unique flat indices ``y * W + x`` of every recorded pixel."""
        r = np.array(self.runs, np.int64).reshape(-1, 3)
        owner, within = _ragged_arange(r[:, 2] - r[:, 1] + 1)
        parts = [r[owner, 0] * self.W + r[owner, 1] + within]
        parts += [ys.astype(np.int64) * self.W + xs for xs, ys in self.pixels]
        return np.unique(np.concatenate(parts))


def _clip_line(w: int, h: int, x1: int, y1: int, x2: int, y2: int) -> tuple[bool, int, int, int, int]:
    """Clip a segment to ``[0, w-1] x [0, h-1]``; intercepts in double precision, truncated to integer.

    The double arithmetic matters only for huge coordinates (``INT_MIN`` points), where an exact integer
    product would differ from what OpenCV 4.6 computes.
    """
    right, bottom = w - 1, h - 1
    c1 = (x1 < 0) + (x1 > right) * 2 + (y1 < 0) * 4 + (y1 > bottom) * 8
    c2 = (x2 < 0) + (x2 > right) * 2 + (y2 < 0) * 4 + (y2 > bottom) * 8
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += int(float(a - y1) * float(x2 - x1) / float(y2 - y1))
            y1 = a
            c1 = (x1 < 0) + (x1 > right) * 2
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += int(float(a - y2) * float(x2 - x1) / float(y2 - y1))
            y2 = a
            c2 = (x2 < 0) + (x2 > right) * 2
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += int(float(a - x1) * float(y2 - y1) / float(x2 - x1))
                x1 = a
                c1 = 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += int(float(a - x2) * float(y2 - y1) / float(x2 - x1))
                x2 = a
                c2 = 0
    return (c1 | c2) == 0, x1, y1, x2, y2


def _line2(cv: _Canvas, x1: int, y1: int, x2: int, y2: int) -> None:
    """Fixed-point (16.16) one-pixel line walker used for polygon outlines."""
    ok, x1, y1, x2, y2 = _clip_line(cv.W << XY_SHIFT, cv.H << XY_SHIFT, x1, y1, x2, y2)
    if not ok:
        return
    dx, dy = x2 - x1, y2 - y1
    ax, ay = abs(dx), abs(dy)
    if ax > ay:
        if dx < 0:
            dy = -dy
            x1, y1, x2, y2 = x2, y2, x1, y1
        x_step, y_step = XY_ONE, _cdiv(_wrap64(dy << XY_SHIFT), ax | 1)
        ecount = _wrap32((x2 - x1) >> XY_SHIFT)
    else:
        if dy < 0:
            dx = -dx
            x1, y1, x2, y2 = x2, y2, x1, y1
        x_step, y_step = _cdiv(_wrap64(dx << XY_SHIFT), ay | 1), XY_ONE
        ecount = _wrap32((y2 - y1) >> XY_SHIFT)
    x1 += HALF
    y1 += HALF
    W, H = cv.W, cv.H

    def put(x: int, y: int) -> None:
        x, y = _wrap32(x), _wrap32(y)
        if 0 <= x < W and 0 <= y < H:
            cv.put(x, y)

    put((x2 + HALF) >> XY_SHIFT, (y2 + HALF) >> XY_SHIFT)
    if ax > ay:
        x = x1 >> XY_SHIFT
        for _ in range(ecount + 1):
            put(x, y1 >> XY_SHIFT)
            x += 1
            y1 += y_step
    else:
        y = y1 >> XY_SHIFT
        for _ in range(ecount + 1):
            put(x1 >> XY_SHIFT, y)
            x1 += x_step
            y += 1


def _fill_convex_poly(cv: _Canvas, v: list[tuple[int, int]], line: Callable[..., None] = _line2) -> None:
    """Convex polygon scan conversion, vertices in 16.16 fixed point (shift 16, 8-connected).

    ``line`` draws the outline (:func:`_line2`, or its vectorised twin for the bitmap fallback).
    """
    npts = len(v)
    delta = HALF
    p0 = v[-1]
    xmin = xmax = v[0][0]
    ymin = ymax = v[0][1]
    imin = 0
    for i, p in enumerate(v):
        if p[1] < ymin:
            ymin, imin = p[1], i
        ymax = max(ymax, p[1])
        xmax = max(xmax, p[0])
        xmin = min(xmin, p[0])
        line(cv, p0[0], p0[1], p[0], p[1])
        p0 = p
    xmin = (xmin + delta) >> XY_SHIFT
    xmax = (xmax + delta) >> XY_SHIFT
    ymin = (ymin + delta) >> XY_SHIFT
    ymax = (ymax + delta) >> XY_SHIFT
    W, H = cv.W, cv.H
    if npts < 3 or _wrap32(xmax) < 0 or _wrap32(ymax) < 0 or _wrap32(xmin) >= W or _wrap32(ymin) >= H:
        return
    ymax = min(ymax, H - 1)
    e_idx = [imin, imin]
    e_di = [1, npts - 1]
    e_x = [-XY_ONE, -XY_ONE]
    e_dx = [0, 0]
    y = _wrap32(ymin)
    e_ye = [y, y]
    edges = npts
    while True:
        for i in (0, 1):
            if y >= e_ye[i]:
                idx0, di = e_idx[i], e_di[i]
                idx = idx0 + di
                if idx >= npts:
                    idx -= npts
                while True:
                    go = edges > 0
                    edges -= 1
                    if not go:
                        break
                    ty = _wrap32((v[idx][1] + delta) >> XY_SHIFT)
                    if ty > y:
                        xs, xe = v[idx0][0], v[idx][0]
                        e_ye[i] = ty
                        e_dx[i] = _cdiv((xe - xs) * 2 + (ty - y), 2 * (ty - y))
                        e_x[i] = xs
                        e_idx[i] = idx
                        break
                    idx0 = idx
                    idx += di
                    if idx >= npts:
                        idx -= npts
        if edges < 0:
            break
        if y >= 0:
            left, right = (1, 0) if e_x[0] > e_x[1] else (0, 1)
            xx1 = _wrap32((e_x[left] + delta) >> XY_SHIFT)
            xx2 = _wrap32((e_x[right] + delta) >> XY_SHIFT)
            if xx2 >= 0 and xx1 < W:
                cv.hline(y, max(xx1, 0), min(xx2, W - 1))
        e_x[0] += e_dx[0]
        e_x[1] += e_dx[1]
        y += 1
        if y > ymax:
            break


@lru_cache(maxsize=16)
def disk_halfwidths(radius: int) -> np.ndarray:
    """Half-width of OpenCV's filled Bresenham circle per row offset ``-radius..radius``.

    Returns:
        int64 array of length ``2 * radius + 1``; row ``d`` covers ``cx - w[d + radius] .. cx + w[...]``.
    """
    w = np.full(2 * radius + 1, -1, dtype=np.int64)
    err, dx, dy, plus, minus = 0, radius, 0, 1, (radius << 1) - 1
    while dx >= dy:
        for off, half in ((dy, dx), (-dy, dx), (dx, dy), (-dx, dy)):
            w[off + radius] = max(w[off + radius], half)
        dy += 1
        err += plus
        plus += 2
        mask = (err <= 0) - 1
        err -= minus & mask
        dx += mask
        minus -= mask & 2
    return w


def _circle(cv: _Canvas, cx: int, cy: int, radius: int) -> None:
    """Filled circle, clipped to the image (same pixels as OpenCV's inside/outside branches)."""
    W, H = cv.W, cv.H
    # the extreme columns/rows wrap in 32-bit int for INT_MIN centres: then nothing is drawn
    if not (_wrap32(cx - radius) < W and _wrap32(cx + radius) >= 0
            and _wrap32(cy - radius) < H and _wrap32(cy + radius) >= 0):
        return
    for d, half in enumerate(disk_halfwidths(radius)):
        y = cy + d - radius
        if 0 <= y < H:
            x1, x2 = max(cx - int(half), 0), min(cx + int(half), W - 1)
            if x1 <= x2:
                cv.hline(y, x1, x2)


def _quad(x0: int, y0: int, x1: int, y1: int, width: int) -> list[tuple[int, int]] | None:
    """The 16.16 fixed-point rectangle of a thick segment between integer pixel points, or None."""
    p0x, p0y, p1x, p1y = x0 << XY_SHIFT, y0 << XY_SHIFT, x1 << XY_SHIFT, y1 << XY_SHIFT
    dx = (p0x - p1x) / XY_ONE
    dy = (p1y - p0y) / XY_ONE
    r = dx * dx + dy * dy
    if abs(r) <= np.finfo(np.float64).eps:
        return None
    odd = width & 1
    r = ((width << (XY_SHIFT - 1)) + odd * XY_ONE * 0.5) / np.sqrt(r)
    dpx, dpy = _wrap32(int(np.rint(dy * r))), _wrap32(int(np.rint(dx * r)))
    return [(p0x + dpx, p0y + dpy), (p0x - dpx, p0y - dpy), (p1x - dpx, p1y - dpy), (p1x + dpx, p1y + dpy)]


def cap_radius(width: int) -> int:
    return ((width << (XY_SHIFT - 1)) + HALF) >> XY_SHIFT


def _thick_segment(cv: _Canvas, x0: int, y0: int, x1: int, y1: int, width: int, caps: int = 3,
                   line: Callable[..., None] = _line2) -> None:
    q = _quad(x0, y0, x1, y1, width)
    if q is not None:
        _fill_convex_poly(cv, q, line)
    radius = cap_radius(width)
    if caps & 1:
        _circle(cv, x0, y0, radius)
    if caps & 2:
        _circle(cv, x1, y1, radius)


def dedupe(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop consecutive repeated pixel points (a zero-length thick segment only repeats its caps)."""
    if len(px) < 2:
        return px, py
    keep = np.ones(len(px), dtype=bool)
    keep[1:] = (px[1:] != px[:-1]) | (py[1:] != py[:-1])
    return px[keep], py[keep]


def draw_lane_reference(px: np.ndarray, py: np.ndarray, size: tuple[int, int], width: int) -> np.ndarray:
    """Literal rendering of ``cv::line(p[i], p[i+1], 1, width)`` for consecutive pixel points.

    Args:
        px, py: (N,) integer pixel coordinates (``cv_round`` of the float32 points), N >= 2.
        size: canvas (H, W).
        width: line thickness in pixels (>= 2).

    Returns:
        (H, W) uint8 mask with 1 on lane pixels.
    """
    cv = _Canvas(size)
    px, py = dedupe(np.asarray(px, np.int64), np.asarray(py, np.int64))
    if len(px) == 1:
        _circle(cv, int(px[0]), int(py[0]), cap_radius(width))
    for i in range(len(px) - 1):
        _thick_segment(cv, int(px[i]), int(py[i]), int(px[i + 1]), int(py[i + 1]), width,
                       caps=3 if i == 0 else 2)
    return cv.mask


# --------------------------------------------------------------------------------------------------
# Fast path
# --------------------------------------------------------------------------------------------------
@dataclass
class LaneShape:
    """The pixel set of one rasterised lane.

    Exactly one of three forms: ``rows`` - ``(y0, left, right)`` with ``left[i]..right[i]`` the single run
    of row ``y0 + i`` (``left > right`` for an empty row); ``mask`` - ``(y0, x0, bitmap)``; or ``pixels``
    - ``(W, idx)``, the sorted flat indices ``y * W + x`` (sparse lanes spread over the whole image).
    ``area`` is the pixel count; ``box`` = (ymin, xmin, ymax, xmax) inclusive, or None when empty.
    """

    area: int
    box: tuple[int, int, int, int] | None
    rows: tuple[int, np.ndarray, np.ndarray] | None = None
    mask: tuple[int, int, np.ndarray] | None = None
    pixels: tuple[int, np.ndarray] | None = None

    def to_mask(self, size: tuple[int, int]) -> np.ndarray:
        """Full-canvas (H, W) uint8 mask (for tests and debugging)."""
        out = np.zeros(size, dtype=np.uint8)
        if self.rows is not None:
            y0, left, right = self.rows
            for i in range(len(left)):
                if left[i] <= right[i]:
                    out[y0 + i, left[i]:right[i] + 1] = 1
        elif self.mask is not None:
            y0, x0, m = self.mask
            out[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
        elif self.pixels is not None:
            W, idx = self.pixels
            out[idx // W, idx % W] = 1
        return out


EMPTY = LaneShape(0, None)

# unit steps between 8-neighbours, indexed by (dx + 1) * 3 + (dy + 1)
_DIRS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
_DIAGONAL = [k for k, (dx, dy) in enumerate(_DIRS) if dx and dy]
_BIG = 1 << 40


@dataclass(frozen=True)
class _StampTable:
    """Row runs of every unit thick segment (caps included), relative to its start pixel.

    ``left``/``right`` are (V, 2R+1): variant ``k`` in 0..8 is the direction ``_DIRS[k]`` away from the
    image border; the other variants are the same segments with their start at a fixed distance from
    one border, where OpenCV's line clipper moves some outline pixels (found by exhaustive rendering,
    so the table is exact by construction). Empty rows have ``left > right``.
    """

    R: int
    left: np.ndarray
    right: np.ndarray
    ok: bool  # every variant is one run per row (the fast path relies on it)
    near: int  # border distances ``-near..near`` (start pixel vs first/last row or column) have variants

    def variant(self, border: int, dist: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Variant index for ``border`` 0..3 (left, right, top, bottom) at ``dist`` = -near..near."""
        return 9 + (border * (2 * self.near + 1) + dist + self.near) * 9 + k


def _render_runs(x: int, y: int, dx: int, dy: int, width: int, size: tuple[int, int], R: int
                 ) -> tuple[np.ndarray, np.ndarray, bool]:
    cv = _Canvas(size)
    _thick_segment(cv, x, y, x + dx, y + dy, width)
    n = 2 * R + 1
    left = np.full(n, _BIG, dtype=np.int64)
    right = np.full(n, -_BIG, dtype=np.int64)
    ok = True
    for r in range(n):
        yy = y - R + r
        if not 0 <= yy < size[0]:
            continue
        xs = np.flatnonzero(cv.mask[yy])
        if len(xs):
            left[r], right[r] = xs[0] - x, xs[-1] - x
            ok &= bool(xs[-1] - xs[0] + 1 == len(xs))
    return left, right, ok


def _stamp_starts(width: int) -> tuple[int, int, int, list[tuple[int, int, int, int]]]:
    """(R, near, canvas side, [(x, y, dx, dy)] of every stamp variant in table order): the interior
    stamps start mid-canvas, where the clipper never engages; the border variants start ``dist``
    pixels from the canvas's left/right/top/bottom edge."""
    R = cap_radius(width) + 2
    near = R + 2
    big = 4 * R + 8
    out = [(big // 2, big // 2, dx, dy) for dx, dy in _DIRS]
    for border in range(4):
        for dist in range(-near, near + 1):
            c, e = big // 2, big - 1 - dist
            x, y = [(dist, c), (e, c), (c, dist), (c, e)][border]
            out += [(x, y, dx, dy) for dx, dy in _DIRS]
    return R, near, big, out


@lru_cache(maxsize=8)
def _stamps(width: int) -> _StampTable:
    """The stamp table, every variant drawn at once by :func:`segment_runs_batch` (equal to
    :func:`_stamps_painted`, the scalar painter's table; a test compares them)."""
    R, near, big, starts = _stamp_starts(width)
    x, y, dx, dy = (np.array(v, np.int64) for v in zip(*starts, strict=True))
    V = len(x)
    left = np.full((V, 2 * R + 1), _BIG, np.int64)
    right = np.full((V, 2 * R + 1), -_BIG, np.int64)
    seg = np.flatnonzero((dx != 0) | (dy != 0))
    xs, ys = x[seg], y[seg]
    top, lv, rv, ok = segment_runs_batch(xs, ys, xs + dx[seg], ys + dy[seg], (big, big), width)
    for t in range(lv.shape[1]):
        r = top + t - (y[seg] - R)  # stamp row of table column t
        use = (r >= 0) & (r <= 2 * R) & (top + t < big) & (lv[:, t] <= rv[:, t])
        left[seg[use], r[use]] = lv[use, t] - x[seg[use]]
        right[seg[use], r[use]] = rv[use, t] - x[seg[use]]
    return _StampTable(R, left, right, bool(ok.all()), near)


def _stamps_painted(width: int) -> _StampTable:
    """The stamp table from the scalar painter, variant by variant (the definition; slow)."""
    radius = cap_radius(width)
    R = radius + 2
    near = R + 2
    big = 4 * R + 8
    lefts, rights, ok = [], [], True
    # interior: start in the middle of a canvas large enough for the clipper never to engage
    for dx, dy in _DIRS:
        if dx == 0 and dy == 0:
            lefts.append(np.full(2 * R + 1, _BIG, dtype=np.int64))
            rights.append(np.full(2 * R + 1, -_BIG, dtype=np.int64))
            continue
        lv, rv, o = _render_runs(big // 2, big // 2, dx, dy, width, (big, big), R)
        lefts.append(lv)
        rights.append(rv)
        ok &= o
    # near one border: canvas whose left/right/top/bottom edge is ``dist`` pixels from the start
    for border in range(4):
        for dist in range(-near, near + 1):
            for dx, dy in _DIRS:
                if dx == 0 and dy == 0:
                    lefts.append(lefts[4])
                    rights.append(rights[4])
                    continue
                if border == 0:
                    x, y, size = dist, big // 2, (big, big)
                elif border == 1:
                    x, y, size = big - 1 - dist, big // 2, (big, big)
                elif border == 2:
                    x, y, size = big // 2, dist, (big, big)
                else:
                    x, y, size = big // 2, big - 1 - dist, (big, big)
                lv, rv, o = _render_runs(x, y, dx, dy, width, size, R)
                lefts.append(lv)
                rights.append(rv)
                ok &= o
    return _StampTable(R, np.stack(lefts), np.stack(rights), ok, near)


def _bitmap_shape(px: np.ndarray, py: np.ndarray, size: tuple[int, int], width: int) -> LaneShape:
    """Exact scalar painting into a bounding-box bitmap (fallback for unusual lanes)."""
    H, W = size
    radius = cap_radius(width)
    finite = px != INT_MIN
    if finite.all():
        pad = radius + 2
        y0 = int(max(py.min() - pad, 0))
        y1 = int(min(py.max() + pad, H - 1))
        x0 = int(max(px.min() - pad, 0))
        x1 = int(min(px.max() + pad, W - 1))
        if y0 > y1 or x0 > x1:
            return EMPTY
        cv = _Canvas(size, (y0, x0, y1 - y0 + 1, x1 - x0 + 1))
    else:  # INT_MIN points draw lines that may cross the whole image: record the pixels
        cv = _Recorder(size)
    if len(px) == 1:
        _circle(cv, int(px[0]), int(py[0]), radius)
    for i in range(len(px) - 1):
        _thick_segment(cv, int(px[i]), int(py[i]), int(px[i + 1]), int(py[i + 1]), width,
                       caps=3 if i == 0 else 2, line=_line2 if finite.all() else _line2_np)
    if isinstance(cv, _Recorder):
        return _pixel_shape(cv.flat(), W)
    m = cv.mask
    area = int(np.count_nonzero(m))
    if area == 0:
        return EMPTY
    ys = np.flatnonzero(m.any(axis=1))
    xs = np.flatnonzero(m.any(axis=0))
    m = m[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
    by, bx = y0 + int(ys[0]), x0 + int(xs[0])
    box = (by, bx, by + m.shape[0] - 1, bx + m.shape[1] - 1)
    # prefer the run form when every row is one run (fast IoU against other run-form lanes)
    cnt = m.sum(axis=1, dtype=np.int64)
    first = np.argmax(m, axis=1)
    last = m.shape[1] - 1 - np.argmax(m[:, ::-1], axis=1)
    if np.all(last - first + 1 == cnt):
        return LaneShape(area, box, rows=(by, bx + first.astype(np.int64), bx + last.astype(np.int64)))
    return LaneShape(area, box, mask=(by, bx, m))


def _pixel_shape(idx: np.ndarray, W: int) -> LaneShape:
    """:class:`LaneShape` of sorted unique flat pixel indices (run form when every row is one run)."""
    if not len(idx):
        return EMPTY
    y, x = idx // W, idx % W
    rows, first, cnt = np.unique(y, return_index=True, return_counts=True)
    lo, hi = x[first], x[first + cnt - 1]
    box = (int(rows[0]), int(x.min()), int(rows[-1]), int(x.max()))
    if np.all(hi - lo + 1 == cnt):
        n = int(rows[-1] - rows[0]) + 1
        left = np.full(n, _BIG, np.int64)
        right = np.full(n, -_BIG, np.int64)
        left[rows - rows[0]], right[rows - rows[0]] = lo, hi
        return LaneShape(len(idx), box, rows=(int(rows[0]), left, right))
    return LaneShape(len(idx), box, pixels=(W, idx))


# --------------------------------------------------------------------------------------------------
# Exact thick segments, vectorised over segments (same arithmetic as the scalar painter above)
# --------------------------------------------------------------------------------------------------
def _cdiv_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C integer division (truncation toward zero) of int64 arrays, ``b > 0``."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def _clip_lines_np(w: int, h: int, x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_clip_line` of many segments (int64 arrays; the same double-precision intercepts)."""
    right, bottom = w - 1, h - 1
    x1, y1, x2, y2 = (v.astype(np.int64) for v in (x1, y1, x2, y2))

    def code(x: np.ndarray, y: np.ndarray, with_y: bool = True) -> np.ndarray:
        c = (x < 0) + (x > right) * 2
        return c + (y < 0) * 4 + (y > bottom) * 8 if with_y else c

    def cut(m: np.ndarray, a: np.ndarray, u: np.ndarray, du: np.ndarray, dv: np.ndarray) -> np.ndarray:
        # int(float(a - u) * float(dv) / float(du)) where m, else 0
        f = np.float64
        return np.where(m, np.trunc((a - u).astype(f) * dv.astype(f) / du.astype(f)), 0).astype(np.int64)

    c1, c2 = code(x1, y1), code(x2, y2)
    go = ((c1 & c2) == 0) & ((c1 | c2) != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # first the top/bottom edges (end 1, then end 2 with end 1 already moved), then left/right
        m = go & ((c1 & 12) != 0)
        a = np.where(c1 < 8, 0, bottom)
        x1, y1 = x1 + cut(m, a, y1, y2 - y1, x2 - x1), np.where(m, a, y1)
        c1 = np.where(m, code(x1, y1, False), c1)
        m = go & ((c2 & 12) != 0)
        a = np.where(c2 < 8, 0, bottom)
        x2, y2 = x2 + cut(m, a, y2, y2 - y1, x2 - x1), np.where(m, a, y2)
        c2 = np.where(m, code(x2, y2, False), c2)
        go &= ((c1 & c2) == 0) & ((c1 | c2) != 0)
        m = go & (c1 != 0)
        a = np.where(c1 == 1, 0, right)
        y1, x1 = y1 + cut(m, a, x1, x2 - x1, y2 - y1), np.where(m, a, x1)
        c1 = np.where(m, 0, c1)
        m = go & (c2 != 0)
        a = np.where(c2 == 1, 0, right)
        y2, x2 = y2 + cut(m, a, x2, x2 - x1, y2 - y1), np.where(m, a, x2)
        c2 = np.where(m, 0, c2)
    return (c1 | c2) == 0, x1, y1, x2, y2


def _outline_pixels_np(size: tuple[int, int], x1: np.ndarray, y1: np.ndarray, x2: np.ndarray,
                       y2: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Pixels of :func:`_line2` for L 16.16 lines, clipped to the image: (line index, x, y) of the
    walks, then of the separately drawn end pixels."""
    H, W = size
    ok, x1, y1, x2, y2 = _clip_lines_np(W << XY_SHIFT, H << XY_SHIFT, x1, y1, x2, y2)
    dx, dy = x2 - x1, y2 - y1
    xmaj = np.abs(dx) > np.abs(dy)
    flip = np.where(xmaj, dx < 0, dy < 0)
    x1, x2 = np.where(flip, x2, x1), np.where(flip, x1, x2)
    y1, y2 = np.where(flip, y2, y1), np.where(flip, y1, y2)
    dx, dy = x2 - x1, y2 - y1
    major = np.where(xmaj, dx, dy)
    step = _cdiv_np(np.where(xmaj, dy, dx) << XY_SHIFT, major | 1)
    ecount = np.where(ok, major >> XY_SHIFT, -1) + 1  # walk pixels per line (0 when clipped away)
    line, j = _ragged_arange(ecount)
    bx, by = x1[line] + HALF, y1[line] + HALF
    minor = np.where(xmaj[line], by, bx) + j * step[line]
    xs = np.where(xmaj[line], (bx >> XY_SHIFT) + j, minor >> XY_SHIFT)
    ys = np.where(xmaj[line], minor >> XY_SHIFT, (by >> XY_SHIFT) + j)
    end = np.flatnonzero(ok)
    out = []
    for li, x, y in ((line, xs, ys), (end, (x2[end] + HALF) >> XY_SHIFT, (y2[end] + HALF) >> XY_SHIFT)):
        keep = (x >= 0) & (x < W) & (y >= 0) & (y < H)
        out.append((li[keep], x[keep], y[keep]))
    return out


def _line2_np(cv: _Canvas, x1: int, y1: int, x2: int, y2: int) -> None:
    """:func:`_line2` with the pixel walk vectorised (same clipping and fixed-point steps); for the
    image-crossing outlines of lanes with ``INT_MIN`` points."""
    ok, x1, y1, x2, y2 = _clip_line(cv.W << XY_SHIFT, cv.H << XY_SHIFT, x1, y1, x2, y2)
    if not ok:
        return
    dx, dy = x2 - x1, y2 - y1
    xmaj = abs(dx) > abs(dy)
    if (dx < 0) if xmaj else (dy < 0):
        x1, y1, x2, y2 = x2, y2, x1, y1
        dx, dy = -dx, -dy
    # clipped to the canvas, every value below fits in int64 (no 32/64-bit wrap as in the C code)
    major, minor = (dx, dy) if xmaj else (dy, dx)
    step = _cdiv(minor << XY_SHIFT, major | 1)
    j = np.arange((major >> XY_SHIFT) + 1, dtype=np.int64)
    bx, by = x1 + HALF, y1 + HALF
    if xmaj:
        xs, ys = (bx >> XY_SHIFT) + j, (by + j * step) >> XY_SHIFT
    else:
        xs, ys = (bx + j * step) >> XY_SHIFT, (by >> XY_SHIFT) + j
    xs = np.append(xs, (x2 + HALF) >> XY_SHIFT)
    ys = np.append(ys, (y2 + HALF) >> XY_SHIFT)
    keep = (xs >= 0) & (xs < cv.W) & (ys >= 0) & (ys < cv.H)
    cv.put_many(xs[keep], ys[keep])


def _quads_np(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, width: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_quad` of N segments (none of zero length): vertex x and y, each (N, 4) int64 16.16."""
    p0x, p0y, p1x, p1y = (v.astype(np.int64) << XY_SHIFT for v in (x0, y0, x1, y1))
    dx = (p0x - p1x) / XY_ONE
    dy = (p1y - p0y) / XY_ONE
    r = ((width << (XY_SHIFT - 1)) + (width & 1) * XY_ONE * 0.5) / np.sqrt(dx * dx + dy * dy)
    dpx, dpy = np.rint(dy * r).astype(np.int64), np.rint(dx * r).astype(np.int64)
    vx = np.stack([p0x + dpx, p0x - dpx, p1x - dpx, p1x + dpx], axis=1)
    vy = np.stack([p0y + dpy, p0y - dpy, p1y - dpy, p1y + dpy], axis=1)
    return vx, vy


def _fill_quads_np(vx: np.ndarray, vy: np.ndarray, size: tuple[int, int], top: np.ndarray, T: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_fill_convex_poly` of N quads, row runs (N, T) for rows ``top .. top + T - 1``.

    The scan converter's state machine (two active edges, horizontal edges skipped, an edge budget)
    runs row by row, vectorised across quads; empty rows have ``left > right``.
    """
    H, W = size
    N = len(vx)
    ar = np.arange(N)
    lo = np.full((N, T), _BIG, np.int64)
    hi = np.full((N, T), -_BIG, np.int64)
    xmin = (vx.min(axis=1) + HALF) >> XY_SHIFT
    xmax = (vx.max(axis=1) + HALF) >> XY_SHIFT
    imin = np.argmin(vy, axis=1)
    ymin = (vy[ar, imin] + HALF) >> XY_SHIFT
    ymax = np.minimum((vy.max(axis=1) + HALF) >> XY_SHIFT, H - 1)
    active = (xmax >= 0) & (ymax >= 0) & (xmin < W) & (ymin < H)
    e_idx = np.stack([imin, imin], axis=1)
    e_x = np.full((N, 2), -XY_ONE, np.int64)
    e_dx = np.zeros((N, 2), np.int64)
    y = ymin.copy()
    e_ye = np.stack([y, y], axis=1)
    edges = np.full(N, 4, np.int64)
    tyv = (vy + HALF) >> XY_SHIFT
    while active.any():
        for i, di in ((0, 1), (1, 3)):
            pend = active & (y >= e_ye[:, i])
            idx0 = e_idx[:, i].copy()
            idx = (idx0 + di) % 4
            while pend.any():
                go = edges > 0
                edges -= pend
                pend &= go
                ty = tyv[ar, idx]
                hit = pend & (ty > y)
                if hit.any():
                    h = np.flatnonzero(hit)
                    xs, xe = vx[h, idx0[h]], vx[h, idx[h]]
                    e_ye[h, i] = ty[h]
                    e_dx[h, i] = _cdiv_np((xe - xs) * 2 + (ty[h] - y[h]), 2 * (ty[h] - y[h]))
                    e_x[h, i] = xs
                    e_idx[h, i] = idx[h]
                pend &= ~hit
                idx0 = np.where(pend, idx, idx0)
                idx = np.where(pend, (idx + di) % 4, idx)
        active &= edges >= 0
        a = np.flatnonzero(active & (y >= 0))
        xx1 = (e_x[a].min(axis=1) + HALF) >> XY_SHIFT
        xx2 = (e_x[a].max(axis=1) + HALF) >> XY_SHIFT
        t = y[a] - top[a]
        draw = (xx2 >= 0) & (xx1 < W) & (t >= 0) & (t < T)
        lo[a[draw], t[draw]] = np.maximum(xx1[draw], 0)
        hi[a[draw], t[draw]] = np.minimum(xx2[draw], W - 1)
        e_x += e_dx
        y += 1
        active &= y <= ymax
    return lo, hi


def segment_runs_batch(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray,
                       size: tuple[int, int], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Row runs of N thick segments with both caps, exactly as :func:`_thick_segment` draws them.

    Args:
        x0, y0, x1, y1: (N,) integer end points (|coordinate| < 2**29, no zero-length segment).
        size: canvas (H, W).
        width: thickness (>= 2).

    Returns:
        ``top`` (N,) first row, ``left``/``right`` (N, T) runs of rows ``top .. top + T - 1`` (empty:
        ``left > right``, clipped to the image) and ``ok`` (N,) False where some row is not one run.
    """
    H, W = size
    x0, y0, x1, y1 = (np.asarray(v, np.int64) for v in (x0, y0, x1, y1))
    N = len(x0)
    rad = cap_radius(width)
    R = rad + 2
    top = np.clip(np.minimum(y0, y1) - R, 0, H - 1)
    bot = np.clip(np.maximum(y0, y1) + R, 0, H - 1)
    T = int((bot - top).max(initial=0)) + 1
    rows = top[:, None] + np.arange(T)[None, :]  # (N, T)
    # intervals of a row: quad fill, the two caps, and per outline edge its walk (a run per row)
    vx, vy = _quads_np(x0, y0, x1, y1, width)
    fl, fr = _fill_quads_np(vx, vy, size, top, T)
    ivl = [fl, fr]
    w = disk_halfwidths(rad)
    for cx, cy in ((x0, y0), (x1, y1)):
        d = rows - cy[:, None]
        inside = (np.abs(d) <= rad) & (rows < H)
        half = w[np.clip(d + rad, 0, 2 * rad)]
        cl = np.maximum(cx[:, None] - half, 0)
        cr = np.minimum(cx[:, None] + half, W - 1)
        ivl += [np.where(inside, cl, _BIG), np.where(inside, cr, -_BIG)]
    ex0 = np.concatenate([vx[:, 3], vx[:, 0], vx[:, 1], vx[:, 2]])
    ey0 = np.concatenate([vy[:, 3], vy[:, 0], vy[:, 1], vy[:, 2]])
    ex1 = np.concatenate([vx[:, 0], vx[:, 1], vx[:, 2], vx[:, 3]])
    ey1 = np.concatenate([vy[:, 0], vy[:, 1], vy[:, 2], vy[:, 3]])
    # a walk is monotone, so its pixels in one row are a run; its end pixel is drawn apart
    for line, px, py in _outline_pixels_np(size, ex0, ey0, ex1, ey1):
        t = py - top[line % N]
        inwin = (t >= 0) & (t < T)
        cell = (line * T + t)[inwin]
        ol = np.full(4 * N * T, _BIG, np.int64)
        orr = np.full(4 * N * T, -_BIG, np.int64)
        np.minimum.at(ol, cell, px[inwin])
        np.maximum.at(orr, cell, px[inwin])
        for e in range(4):
            ivl += [ol.reshape(4, N, T)[e], orr.reshape(4, N, T)[e]]
    nl = len(ivl) // 2
    lefts = np.stack([ivl[2 * i] for i in range(nl)], axis=-1)  # (N, T, intervals)
    rights = np.stack([ivl[2 * i + 1] for i in range(nl)], axis=-1)
    # merge the runs of each row: sort by left end (packed with the right end into one key); a run
    # starting past the running right end + 1 is a hole
    empty = lefts > rights
    span = W + 2
    key = np.sort(np.where(empty, W * span, lefts * span + rights + 1), axis=-1)
    sl, sr = key // span, key % span - 1
    reach = np.maximum.accumulate(sr, axis=-1)
    gap = (sl[..., 1:] < W) & (reach[..., :-1] >= 0) & (sl[..., 1:] > reach[..., :-1] + 1)
    left = np.where(sl[..., 0] < W, sl[..., 0], _BIG)
    right = np.where(reach[..., -1] >= 0, reach[..., -1], -_BIG)
    ok = ~gap.any(axis=(1, 2))
    return top, left, right, ok


# --------------------------------------------------------------------------------------------------
# Batched fast path: many lanes at once, one pixel run per row
# --------------------------------------------------------------------------------------------------
_B32 = 1 << 29  # "no pixel" in the int32 run arrays (sums and differences stay inside int32)
# widths for which the corner rule (see rasterize_batch) was checked against every rendered corner
# position (tests/test_eval_culane.py re-checks it); other widths draw near-corner steps one by one
_CORNER_RULE_WIDTHS = frozenset({30})
_XPAD = 64  # x is clamped to [-_XPAD, W - 1 + _XPAD]: further out nothing reaches the image either way


@dataclass(frozen=True)
class _Decomposition:
    """Every unit-segment stamp as ``clip(disk(start) | disk(end) | corrected row ends)``.

    A unit thick segment covers its two cap disks plus, for diagonal directions, one more pixel at an
    end of a few rows (corners of the quadrilateral). Slot ``s`` of direction ``k`` is row offset
    ``rows_l[k, s]``; ``val_l[v, s]`` is that row's left end relative to the start pixel for stamp
    variant ``v`` (``_B32``: unused, e.g. the border clipper dropped the pixel); ``*_r`` likewise for
    right ends. ``exact[v]`` marks variants that do not decompose (drawn one by one). Built by checking
    every variant of the exhaustively rendered stamp table, so it is exact by construction.
    """

    ok: bool
    rows_l: np.ndarray  # (9, S) int64
    val_l: np.ndarray  # (V, S) int32
    rows_r: np.ndarray
    val_r: np.ndarray
    exact: np.ndarray  # (V,) bool


def _norm_runs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    empty = left > right
    return np.where(empty, _BIG, left), np.where(empty, -_BIG, right)


@lru_cache(maxsize=8)
def _decomposition(width: int) -> _Decomposition:
    import itertools

    st = _stamps(width)
    R, near, rad = st.R, st.near, cap_radius(width)
    w = disk_halfwidths(rad)
    offs = np.arange(-R, R + 1)
    dl = np.full((9, 2 * R + 1), _BIG, dtype=np.int64)
    dr = np.full((9, 2 * R + 1), -_BIG, dtype=np.int64)
    for k, (dx, dy) in enumerate(_DIRS):
        for cx, cy in ((0, 0), (dx, dy)):
            inside = np.abs(offs - cy) <= rad
            d = offs[inside] - cy + rad
            dl[k, inside] = np.minimum(dl[k, inside], cx - w[d])
            dr[k, inside] = np.maximum(dr[k, inside], cx + w[d])
    ok = st.ok
    slots_l: list[np.ndarray] = []
    slots_r: list[np.ndarray] = []
    for k in range(9):
        lft, rgt = st.left[k], st.right[k]
        if k != 4:
            ok &= bool(np.all(lft <= dl[k]) and np.all(rgt >= dr[k]))
        slots_l.append(np.flatnonzero(lft < dl[k]) if k != 4 else np.zeros(0, np.int64))
        slots_r.append(np.flatnonzero(rgt > dr[k]) if k != 4 else np.zeros(0, np.int64))
    S = max(1, *(len(s) for s in slots_l + slots_r))
    V = st.left.shape[0]
    rows_l = np.zeros((9, S), np.int64)
    rows_r = np.zeros((9, S), np.int64)
    val_l = np.full((V, S), _B32, np.int32)
    val_r = np.full((V, S), -_B32, np.int32)
    exact = np.zeros(V, bool)
    for k in range(9):
        rows_l[k, :len(slots_l[k])] = offs[slots_l[k]]
        rows_r[k, :len(slots_r[k])] = offs[slots_r[k]]
    for v in range(V):
        k = v % 9  # variants are laid out 9 per (border, distance)
        if k == 4 or not ok:
            continue
        border, dist = (None, 0) if v < 9 else divmod((v - 9) // 9, 2 * near + 1)
        dist -= near if border is not None else 0
        want = _norm_runs(st.left[v], st.right[v])
        sl, sr = slots_l[k], slots_r[k]
        for keep in itertools.product((True, False), repeat=len(sl) + len(sr)):
            lft, rgt = dl[k].copy(), dr[k].copy()
            kl, kr = np.array(keep[:len(sl)], bool), np.array(keep[len(sl):], bool)
            lft[sl[kl]] = st.left[k][sl[kl]]
            rgt[sr[kr]] = st.right[k][sr[kr]]
            if border == 0:
                lft = np.maximum(lft, -dist)
            elif border == 1:
                rgt = np.minimum(rgt, dist)
            elif border in (2, 3):
                off_image = offs < -dist if border == 2 else offs > dist
                lft, rgt = np.where(off_image, _BIG, lft), np.where(off_image, -_BIG, rgt)
            got = _norm_runs(lft, rgt)
            if np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]):
                val_l[v, :len(sl)] = np.where(kl, st.left[k][sl], _B32)
                val_r[v, :len(sr)] = np.where(kr, st.right[k][sr], -_B32)
                break
        else:
            exact[v] = True
    return _Decomposition(ok, rows_l, val_l, rows_r, val_r, exact)


@dataclass
class RowRuns:
    """Pixel sets of K lanes on an H x W canvas, one run per row.

    ``left``/``right``: (K, H) int32, row ``y`` of lane ``k`` is ``left[k, y]..right[k, y]`` (empty when
    ``left > right``). ``area``: (K,) int64 pixel counts. ``masks``: lanes whose rows are not single runs
    (rare fallback), as bitmap :class:`LaneShape`; their rows in ``left``/``right`` are empty.
    """

    left: np.ndarray
    right: np.ndarray
    area: np.ndarray
    masks: dict[int, LaneShape]

    def shape(self, k: int) -> LaneShape:
        """Lane ``k`` as a :class:`LaneShape`."""
        if k in self.masks:
            return self.masks[k]
        lft, rgt = self.left[k].astype(np.int64), self.right[k].astype(np.int64)
        filled = np.flatnonzero(lft <= rgt)
        if len(filled) == 0:
            return EMPTY
        a, b = int(filled[0]), int(filled[-1])
        lft, rgt = _norm_runs(lft[a:b + 1], rgt[a:b + 1])
        return LaneShape(int(self.area[k]), (a, int(lft.min()), b, int(rgt.max())), rows=(a, lft, rgt))

    def intersections(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pixel counts of ``lane a[i] & lane b[i]`` for index arrays ``a``, ``b`` -> (len(a),) int64."""
        out = np.zeros(len(a), np.int64)
        # only the rows some lane fills (lanes rarely reach the top of the image)
        filled = np.flatnonzero((self.left <= self.right).any(axis=0)) if len(a) else np.zeros(0, int)
        if not len(filled):
            lft = rgt = self.left[:, :0]
        else:
            lft = self.left[:, filled[0]:filled[-1] + 1]
            rgt = self.right[:, filled[0]:filled[-1] + 1]
        step = max(1, (1 << 20) // max(1, lft.shape[1]))
        for s in range(0, len(a), step):
            ia, ib = a[s:s + step], b[s:s + step]
            ov = np.minimum(rgt[ia], rgt[ib])
            ov -= np.maximum(lft[ia], lft[ib])
            ov += 1
            out[s:s + step] = np.maximum(ov, 0).sum(axis=1)
        if self.masks:
            special = np.flatnonzero(np.isin(a, list(self.masks)) | np.isin(b, list(self.masks)))
            for i in special.tolist():
                ka, kb = int(a[i]), int(b[i])
                if kb in self.masks and ka not in self.masks:
                    ka, kb = kb, ka
                pix = self.masks[ka].pixels
                if pix is not None and kb not in self.masks:  # pixel set vs one run per row: look up
                    w, idx = pix
                    y, x = idx // w, idx % w
                    out[i] = np.count_nonzero((self.left[kb, y] <= x) & (x <= self.right[kb, y]))
                else:
                    out[i] = shape_intersection(self.shape(ka), self.shape(kb))
        return out


def shape_intersection(a: LaneShape, b: LaneShape) -> int:
    """Pixel count of the intersection of two lane shapes."""
    if a.box is None or b.box is None:
        return 0
    y0, x0 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    y1, x1 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    if y0 > y1 or x0 > x1:
        return 0
    if a.pixels is not None or b.pixels is not None:
        if b.pixels is not None:
            a, b = b, a
        W, idx = a.pixels  # type: ignore[misc]
        if b.pixels is not None:
            return int(np.intersect1d(idx, b.pixels[1], assume_unique=True).size)
        y, x = idx // W, idx % W
        inside = (y >= y0) & (y <= y1) & (x >= x0) & (x <= x1)
        y, x = y[inside], x[inside]
        if b.rows is not None:
            ry, left, right = b.rows
            return int(np.count_nonzero((left[y - ry] <= x) & (x <= right[y - ry])))
        return int(np.count_nonzero(_window(b, y0, x0, y1, x1)[y - y0, x - x0]))
    if a.rows is not None and b.rows is not None:
        ay0, al, ar = a.rows
        by0, bl, br = b.rows
        sa, sb = slice(y0 - ay0, y1 - ay0 + 1), slice(y0 - by0, y1 - by0 + 1)
        ov = np.minimum(ar[sa], br[sb]) - np.maximum(al[sa], bl[sb]) + 1
        return int(ov[ov > 0].sum())
    return int(np.count_nonzero(_window(a, y0, x0, y1, x1) & _window(b, y0, x0, y1, x1)))


def _window(s: LaneShape, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    if s.mask is not None:
        my, mx, m = s.mask
        return m[y0 - my:y1 - my + 1, x0 - mx:x1 - mx + 1].astype(bool)
    ry, left, right = s.rows  # type: ignore[misc]
    cols = np.arange(x0, x1 + 1)[None, :]
    sl = slice(y0 - ry, y1 - ry + 1)
    return (cols >= left[sl, None]) & (cols <= right[sl, None])


def _ragged_arange(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, index within owner) for concatenated ``arange(n)`` over ``lengths``."""
    owner = np.repeat(np.arange(len(lengths)), lengths)
    first = np.cumsum(lengths) - lengths
    return owner, np.arange(int(lengths.sum())) - first[owner]


def rasterize_batch(px: np.ndarray, py: np.ndarray, counts: np.ndarray, size: tuple[int, int],
                    width: int, deduped: bool = False) -> RowRuns:
    """Rasterise K lanes at once, pixel-identical to :func:`draw_lane_reference` for each.

    The common lane (a y-monotone chain of unit steps) is the union of the cap disks of all its points
    plus a few corner pixels of diagonal steps (see :class:`_Decomposition`), so a row's run is a
    min-plus convolution of the per-row extreme x of the points with the disk profile, vectorised over
    all lanes. Long steps and steps near an image corner are drawn exactly one by one; non-monotone
    lanes and lanes with ``INT_MIN`` points use the exact painter on a bounding box.

    Args:
        px, py: concatenated (sum(counts),) integer pixel coordinates (``cv_round`` output, int32 range).
        counts: (K,) points per lane.
        size: canvas (H, W).
        width: thickness (>= 2).
        deduped: no lane repeats a point consecutively (``lane_pixels`` output): skip that check.

    Returns:
        :class:`RowRuns` of the K lanes.
    """
    H, W = size
    counts = np.asarray(counts, np.int64)
    K = len(counts)
    # int32 arithmetic below; lanes with a coordinate beyond 2**29 (INT_MIN included) go to the painter
    px, py = np.asarray(px, np.int32), np.asarray(py, np.int32)
    if len(px) > 1 and not deduped:  # drop consecutive repeats (a zero-length segment only repeats a cap)
        keep = np.ones(len(px), bool)
        keep[1:] = (px[1:] != px[:-1]) | (py[1:] != py[:-1])
        first = np.cumsum(counts) - counts
        keep[first[counts > 0]] = True  # a lane's first point
        if not keep.all():  # (lane_pixels has dropped them already)
            idx = np.flatnonzero(keep)
            counts = np.diff(np.r_[np.searchsorted(idx, first), len(idx)])
            px, py = px[idx], py[idx]
    starts = np.concatenate([[0], np.cumsum(counts)])
    n = len(px)
    left = np.full((K, H), _B32, np.int32)
    right = np.full((K, H), -_B32, np.int32)
    masks: dict[int, LaneShape] = {}
    st, dec = _stamps(width), _decomposition(width)
    R, near = st.R, st.near

    def lane_of(i: np.ndarray) -> np.ndarray:
        return np.searchsorted(starts, i, side="right") - 1

    # segment i joins points i and i + 1 (``same``: both in one lane)
    x0, y0 = px[:-1], py[:-1]
    sx, sy = np.diff(px), np.diff(py)
    same = np.ones(max(n - 1, 0), bool)
    same[(starts[1:-1] - 1)[starts[1:-1] > 0]] = False
    long = (((sx + 1).view(np.uint32) > 2) | ((sy + 1).view(np.uint32) > 2)) & same
    slow = counts < 2
    if not (st.ok and dec.ok):
        slow[:] = True
    lim = 1 << 29
    lo, hi = (min(px.min(), py.min()), max(px.max(), py.max())) if n else (0, 0)
    if lo < -lim or hi > lim:
        bad = np.flatnonzero((np.abs(px.astype(np.int64)) > lim) | (np.abs(py.astype(np.int64)) > lim))
        slow[lane_of(bad)] = True
    two = np.flatnonzero(counts >= 2)
    if len(two):  # a lane must be y-monotone: no two of its steps go opposite ways in y
        # a lane's steps are starts[k] .. starts[k + 1] - 2; the step between lanes (not ``same``) and
        # those of skipped lanes (< 2 points: none of their own) have dy = 0 here
        dy = np.where(same, sy, 0)
        up = np.logical_or.reduceat(dy > 0, starts[two])
        down = np.logical_or.reduceat(dy < 0, starts[two])
        slow[two] |= up & down

    # unit steps near a border use its stamp variant; near a corner the x- and y-border variants
    # combine (a corner pixel survives iff both keep it); anything else is drawn one by one
    nearb = (x0 <= near) | (x0 >= W - 1 - near) | (y0 <= near) | (y0 >= H - 1 - near)
    nearb &= same & ~long
    extra = [np.flatnonzero(long)]
    if dec.exact[:9].any():
        kall = (np.clip(sx, -1, 1) + 1) * 3 + np.clip(sy, -1, 1) + 1
        extra.append(np.flatnonzero(dec.exact[kall] & same & ~long))
    diag = same & ~long & (sx != 0) & (sy != 0)
    nb = np.flatnonzero(nearb)
    sub = _Variants(nb, px, py, size, st, dec, width)
    extra.append(nb[sub.extra])
    ex = np.unique(np.concatenate(extra))
    ex = ex[~slow[lane_of(ex)]]
    # the one-by-one steps of fast lanes: those clear of the border add their shape's rows beyond the
    # cap disks (table), the others are drawn exactly (batched); a row with a hole makes the lane slow
    is_extra = np.zeros(len(same), bool)
    is_extra[ex] = True
    ex = ex[_touches_image(x0[ex], y0[ex], sx[ex], sy[ex], size, R)]
    clear = _clear(x0[ex], y0[ex], sx[ex], sy[ex], size, R)
    fixes = _shapes(width).cells(ex[clear], lane_of(ex[clear]), x0, y0, sx, sy, H, corrections=True)
    tab = _shapes(width)
    slow[lane_of(ex[clear])[~tab.ok[tab.ids(sx[ex[clear]], sy[ex[clear]])]]] = True
    ez = ex[~clear]
    # unit steps near one border only: their exact runs are the rows of their stamp variant (rendered
    # at that distance from that border); the others (long, near a corner) are drawn one by one
    stamp_cells, ez = _stamp_runs(ez, lane_of(ez), long, x0, y0, sx, sy, size, st)
    # short steps near one border only: their shape drawn at that distance from that border (cached)
    bseg, bcode, ez = _border_steps(ez, x0, y0, sx, sy, size, R)
    bsid = tab.ids(sx[bseg], sy[bseg], bcode)  # (before reading tab.ok: new shapes extend it)
    slow[lane_of(bseg)[~tab.ok[bsid]]] = True
    border_cells = tab.cells(bseg, lane_of(bseg), x0, y0, sx, sy, H, bd=bcode)
    etop, el, er, eok = segment_runs_batch(x0[ez], y0[ez], x0[ez] + sx[ez], y0[ez] + sy[ez], size, width)
    slow[lane_of(ez[~eok])] = True

    # slow lanes: every segment drawn exactly, rows merged; lanes with a hole, a single point or huge
    # coordinates (INT_MIN) are painted on a bitmap
    huge = np.zeros(K, bool)
    if lo < -_EXACT_LIM or hi > _EXACT_LIM:
        bad = np.flatnonzero((np.abs(px.astype(np.int64)) > _EXACT_LIM)
                             | (np.abs(py.astype(np.int64)) > _EXACT_LIM))
        huge[lane_of(bad)] = True
    merge = slow & (counts >= 2) & ~huge
    if merge.any():
        seg = np.flatnonzero(same)
        seg = seg[merge[lane_of(seg)]]
        seg = seg[_touches_image(x0[seg], y0[seg], sx[seg], sy[seg], size, R)]
        cell, lv_m, rv_m = _segment_cells(seg, lane_of(seg), x0, y0, sx, sy, size, width, R)
        g, gl, gr, hole = _union_runs(cell, lv_m, rv_m)
        holed = np.unique(g[hole] // H)
        for k in holed.tolist():  # several runs in a row: paint the exact runs into a bitmap
            mine = cell // H == k
            masks[k] = _runs_bitmap(cell[mine] % H, lv_m[mine], rv_m[mine], W)
        keep = ~np.isin(g // H, holed)
        left.ravel()[g[keep]] = gl[keep]
        right.ravel()[g[keep]] = gr[keep]
    for k in np.flatnonzero(slow & ((counts < 2) | huge)):
        if counts[k] == 0:
            continue
        shp = _bitmap_shape(px[starts[k]:starts[k + 1]].astype(np.int64),
                            py[starts[k]:starts[k + 1]].astype(np.int64), size, width)
        if shp.mask is not None or shp.pixels is not None:
            masks[int(k)] = shp
        elif shp.rows is not None:
            top, lv, rv = shp.rows
            left[k, top:top + len(lv)] = np.where(lv <= rv, lv, _B32)
            right[k, top:top + len(rv)] = np.where(lv <= rv, rv, -_B32)

    fast = ~slow & (counts >= 2)
    if fast.any():
        _fill_fast(fast, px, py, starts, size, width, left, right)
        # corner pixels of the decomposed diagonal steps: interior ones, then those near a border
        di = np.flatnonzero(diag & ~nearb & ~is_extra)
        kd = (sx[di] + 1) * 3 + sy[di] + 1
        _corners_interior(di, lane_of(di), kd, px, py, H, dec, fast, left, right)
        dn = np.flatnonzero(diag & nearb & ~is_extra)
        pos = np.searchsorted(nb, dn)
        kd = (sx[dn] + 1) * 3 + sy[dn] + 1
        _corners(dn, lane_of(dn), kd, sub.vx[pos], sub.vy[pos], px, py, size, dec, fast, left, right)
    # one-by-one steps of the fast lanes, merged with what the disks drew
    for cells, lv, rv in (fixes, stamp_cells, border_cells):
        use = ~slow[cells // H] if len(cells) else np.zeros(0, bool)
        np.minimum.at(left.ravel(), cells[use & (lv < _B32)], lv[use & (lv < _B32)])
        np.maximum.at(right.ravel(), cells[use & (rv > -_B32)], rv[use & (rv > -_B32)])
    eln = lane_of(ez)
    use = eok & ~slow[eln]
    if use.any():
        rows = etop[use, None] + np.arange(el.shape[1])[None, :]
        filled = (el[use] <= er[use]) & (rows < H)
        cell = (eln[use, None] * H + rows)[filled]
        np.minimum.at(left.ravel(), cell, el[use][filled].astype(np.int32))
        np.maximum.at(right.ravel(), cell, er[use][filled].astype(np.int32))
    np.maximum(left, 0, out=left)
    np.minimum(right, W - 1, out=right)
    area = np.maximum(right - left + 1, 0).sum(axis=1, dtype=np.int64)
    for k, shp in masks.items():
        area[k] = shp.area
    return RowRuns(left, right, area, masks)



def _stamp_runs(seg: np.ndarray, lane: np.ndarray, long: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                sx: np.ndarray, sy: np.ndarray, size: tuple[int, int], st: _StampTable
                ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Runs of the unit steps among ``seg`` whose start is near exactly one image border, from the stamp
    table: ((cells ``lane * H + row``, left, right), the other segments)."""
    H, W = size
    xs, ys = x0[seg], y0[seg]
    dist = np.stack([xs, W - 1 - xs, ys, H - 1 - ys])
    close = np.abs(dist) <= st.near
    one = ~long[seg] & (close.sum(axis=0) == 1)
    idx = np.flatnonzero(one)
    b = np.argmax(close[:, idx], axis=0)
    k = (sx[seg[idx]] + 1) * 3 + sy[seg[idx]] + 1
    v = st.variant(b, dist[b, idx], k)
    lv, rv = st.left[v], st.right[v]  # (n, 2R + 1) relative to the start pixel
    row = ys[idx, None] + np.arange(-st.R, st.R + 1)
    use = (lv <= rv) & (row >= 0) & (row < H)
    i = np.nonzero(use)[0]
    cells = lane[idx][i].astype(np.int64) * H + row[use]
    left = (lv[use] + xs[idx][i]).astype(np.int32)
    right = (rv[use] + xs[idx][i]).astype(np.int32)
    return (cells, left, right), seg[~one]


def _runs_bitmap(rows: np.ndarray, left: np.ndarray, right: np.ndarray, W: int) -> LaneShape:
    """Bitmap :class:`LaneShape` of the union of runs (row, left..right); unused ends are +-_B32."""
    use = (left <= right) & (left < _B32) & (right > -_B32)
    rows, left, right = rows[use], np.maximum(left[use], 0), np.minimum(right[use], W - 1)
    use = left <= right
    rows, left, right = rows[use], left[use], right[use]
    if not len(rows):
        return EMPTY
    y0, x0 = int(rows.min()), int(left.min())
    h, w = int(rows.max()) - y0 + 1, int(right.max()) - x0 + 1
    acc = np.zeros((h, w + 1), np.int32)
    np.add.at(acc, (rows - y0, left - x0), 1)
    np.add.at(acc, (rows - y0, right - x0 + 1), -1)
    m = (np.cumsum(acc, axis=1)[:, :w] > 0).astype(np.uint8)
    return LaneShape(int(m.sum()), (y0, x0, y0 + h - 1, x0 + w - 1), mask=(y0, x0, m))


_EXACT_LIM = 1 << 12  # beyond this the scan converter's row loop gets long: such lanes use the painter
_SHAPE_MAX = 16  # steps up to this long in x and y use the shape table when clear of the border


def _touches_image(x0: np.ndarray, y0: np.ndarray, sx: np.ndarray, sy: np.ndarray, size: tuple[int, int],
                   R: int) -> np.ndarray:
    """Segments that can draw a pixel: their box grown by ``R`` meets the image."""
    H, W = size
    return ((np.minimum(x0, x0 + sx) - R <= W - 1) & (np.maximum(x0, x0 + sx) + R >= 0)
            & (np.minimum(y0, y0 + sy) - R <= H - 1) & (np.maximum(y0, y0 + sy) + R >= 0))


def _clear(x0: np.ndarray, y0: np.ndarray, sx: np.ndarray, sy: np.ndarray, size: tuple[int, int],
           R: int) -> np.ndarray:
    """Segments short enough for the shape table whose pixels the border clipper cannot touch."""
    H, W = size
    return ((np.abs(sx) <= _SHAPE_MAX) & (np.abs(sy) <= _SHAPE_MAX)
            & (np.minimum(x0, x0 + sx) > R + 2) & (np.maximum(x0, x0 + sx) < W - R - 3)
            & (np.minimum(y0, y0 + sy) > R + 2) & (np.maximum(y0, y0 + sy) < H - R - 3))


def _border_steps(seg: np.ndarray, x0: np.ndarray, y0: np.ndarray, sx: np.ndarray, sy: np.ndarray,
                  size: tuple[int, int], R: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps among ``seg`` short enough for the shape table that only one image border's clipper can
    touch, and their shape code ``bd = 1 + border * 1024 + dist + 512`` (border 0..3: left, right, top,
    bottom; ``dist``: the start pixel's distance to it). Such a step draws the same pixels, relative to
    its start, as at that distance from that border of any canvas whose other borders are as far
    (> R + 2 pixels) from it. Returns (those steps, their codes, the other steps)."""
    H, W = size
    xs, ys, dx, dy = x0[seg], y0[seg], sx[seg], sy[seg]
    near = np.stack([np.minimum(xs, xs + dx) <= R + 2, np.maximum(xs, xs + dx) >= W - R - 3,
                     np.minimum(ys, ys + dy) <= R + 2, np.maximum(ys, ys + dy) >= H - R - 3])
    dist = np.stack([xs, W - 1 - xs, ys, H - 1 - ys])
    border = np.argmax(near, axis=0)
    d = np.take_along_axis(dist, border[None], 0)[0]
    one = ((near.sum(axis=0) == 1) & (np.abs(dx) <= _SHAPE_MAX) & (np.abs(dy) <= _SHAPE_MAX)
           & (d >= -R - _SHAPE_MAX) & (d <= _SHAPE_MAX + 5))
    return seg[one], (1 + border * 1024 + d + 512)[one], seg[~one]


class _ShapeTable:
    """Row runs of thick segments clear of the border, by step (dx, dy), drawn exactly on first use.

    Row ``o`` of a shape is row ``y0 + o - M`` (``M = R + _SHAPE_MAX``) relative to the start pixel,
    columns relative to ``x0``; ``corr_l``/``corr_r`` mark row ends that reach past the two cap disks
    (what a fast lane, whose disks are drawn separately, must add).
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.R = cap_radius(width) + 2
        self.M = self.R + _SHAPE_MAX
        T = 2 * self.M + 1
        self.index: dict[int, int] = {}
        self.left = np.zeros((0, T), np.int32)
        self.right = np.zeros((0, T), np.int32)
        self.corr_l = np.zeros((0, T), bool)
        self.corr_r = np.zeros((0, T), bool)
        self.ok = np.zeros(0, bool)

    def ids(self, sx: np.ndarray, sy: np.ndarray, bd: np.ndarray | None = None) -> np.ndarray:
        """Shape rows of steps (sx, sy); ``bd`` (see :func:`_border_steps`): drawn at that distance from
        that image border (0: clear of every border)."""
        keys = (sx.astype(np.int64) << 16) + sy
        if bd is not None:
            keys += bd.astype(np.int64) << 32
        uk = np.unique(keys)
        new = np.array([k for k in uk.tolist() if k not in self.index], np.int64)
        if len(new):
            b = (new + (1 << 31)) >> 32  # keys are bd * 2**32 + dx * 2**16 + dy with |dx|, |dy| < 2**15
            rest = new - (b << 32)
            dx = (rest + (1 << 15)) >> 16
            self._build(dx, rest - (dx << 16), b)
            for k in new.tolist():
                self.index[k] = len(self.index)
        lut = np.array([self.index[k] for k in uk.tolist()], np.int64)
        return lut[np.searchsorted(uk, keys)]

    def _build(self, dx: np.ndarray, dy: np.ndarray, bd: np.ndarray) -> None:
        M, T = self.M, 2 * self.M + 1
        c = M + 4
        S = 2 * c + 1
        n = len(dx)
        # start pixel: mid-canvas, or ``dist`` from the canvas border ``border`` (bd = 1 + border * 1024
        # + dist + 512); the canvas's other borders stay as far as the image's (see _border_steps)
        border, dist = np.divmod(np.maximum(bd - 1, 0), 1024)
        dist -= 512
        cx = np.where(bd == 0, c, np.select([border == 0, border == 1], [dist, S - 1 - dist], c))
        cy = np.where(bd == 0, c, np.select([border == 2, border == 3], [dist, S - 1 - dist], c))
        top, lv, rv, ok = segment_runs_batch(cx, cy, cx + dx, cy + dy, (S, S), self.width)
        left = np.full((n, T), _B32, np.int64)
        right = np.full((n, T), -_B32, np.int64)
        for t in range(lv.shape[1]):
            o = top + t - cy + M
            use = (o >= 0) & (o < T) & (lv[:, t] <= rv[:, t]) & (top + t < S)
            left[np.flatnonzero(use), o[use]] = lv[use, t] - cx[use]
            right[np.flatnonzero(use), o[use]] = rv[use, t] - cx[use]
        rad = cap_radius(self.width)
        w = disk_halfwidths(rad)
        offs = np.arange(T) - M
        dl = np.full((n, T), _B32, np.int64)
        dr = np.full((n, T), -_B32, np.int64)
        for ex, ey in ((np.zeros(n, np.int64), np.zeros(n, np.int64)), (dx, dy)):
            d = offs[None, :] - ey[:, None]
            inside = np.abs(d) <= rad
            half = w[np.clip(d + rad, 0, 2 * rad)]
            dl = np.where(inside, np.minimum(dl, ex[:, None] - half), dl)
            dr = np.where(inside, np.maximum(dr, ex[:, None] + half), dr)
        filled = left <= right
        self.left = np.concatenate([self.left, left.astype(np.int32)])
        self.right = np.concatenate([self.right, right.astype(np.int32)])
        self.corr_l = np.concatenate([self.corr_l, filled & (left < dl)])
        self.corr_r = np.concatenate([self.corr_r, filled & (right > dr)])
        self.ok = np.concatenate([self.ok, ok])

    def cells(self, idx: np.ndarray, lane: np.ndarray, x0: np.ndarray, y0: np.ndarray, sx: np.ndarray,
              sy: np.ndarray, H: int, corrections: bool = False, bd: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat cells ``lane * H + row`` with run ends of segments ``idx`` (unused end: +-_B32).

        ``corrections``: only the ends that reach past the cap disks; else every row of the shape.
        ``bd``: as for :meth:`ids`, per segment of ``idx``.
        """
        if not len(idx):
            z = np.zeros(0, np.int64)
            return z, z.astype(np.int32), z.astype(np.int32)
        sid = self.ids(sx[idx], sy[idx], bd)
        if corrections:
            cl, cr = self.corr_l[sid], self.corr_r[sid]
            sel = cl | cr
        else:
            cl = cr = sel = self.left[sid] <= self.right[sid]
        i, o = np.nonzero(sel)
        xs = x0[idx][i]
        s = sid[i]
        lv = np.where(cl[i, o], self.left[s, o] + xs, _B32).astype(np.int32)
        rv = np.where(cr[i, o], self.right[s, o] + xs, -_B32).astype(np.int32)
        cell = lane[i].astype(np.int64) * H + y0[idx][i] + o - self.M
        return cell, lv, rv


_SHAPE_TABLES: dict[int, _ShapeTable] = {}


def _shapes(width: int) -> _ShapeTable:
    if width not in _SHAPE_TABLES:
        _SHAPE_TABLES[width] = _ShapeTable(width)
    return _SHAPE_TABLES[width]


def prepare_tables(width: int) -> None:
    """Build the stamp tables and the common step shapes now (before forking workers, which inherit them)."""
    _decomposition(width)
    d = np.arange(-4, 5)
    dx, dy = np.repeat(d, len(d)), np.tile(d, len(d))
    step = (dx != 0) | (dy != 0)
    _shapes(width).ids(dx[step], dy[step])


def _segment_cells(seg: np.ndarray, lane: np.ndarray, x0: np.ndarray, y0: np.ndarray, sx: np.ndarray,
                   sy: np.ndarray, size: tuple[int, int], width: int, R: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel run of segments ``seg`` (of lanes ``lane``) as (cell ``lane * H + row``, left, right);
    a row may hold several runs (thick segments whose rows have a hole)."""
    H = size[0]
    clear = _clear(x0[seg], y0[seg], sx[seg], sy[seg], size, R)
    tab = _shapes(width)
    sc = seg[clear]
    sid = tab.ids(sx[sc], sy[sc])
    cell_a, la, ra = tab.cells(sc[tab.ok[sid]], lane[clear][tab.ok[sid]], x0, y0, sx, sy, H)
    ez, ln = seg[~clear], lane[~clear]
    top, lv, rv, ok = segment_runs_batch(x0[ez], y0[ez], x0[ez] + sx[ez], y0[ez] + sy[ez], size, width)
    rows = top[:, None] + np.arange(lv.shape[1])[None, :]
    filled = (lv <= rv) & (rows < H) & ok[:, None]
    parts = [(cell_a, la, ra), ((ln[:, None].astype(np.int64) * H + rows)[filled],
                                lv[filled].astype(np.int32), rv[filled].astype(np.int32))]
    # segments with a holed row (rare): their runs from the scalar painter, cached by shape when clear
    holed_seg = np.r_[sc[~tab.ok[sid]], ez[~ok]]
    holed_lane = np.r_[lane[clear][~tab.ok[sid]], ln[~ok]]
    for i, k in zip(holed_seg.tolist(), holed_lane.tolist(), strict=True):
        key = (int(sx[i]), int(sy[i]), width)
        if not _clear(x0[i:i + 1], y0[i:i + 1], sx[i:i + 1], sy[i:i + 1], size, R)[0]:
            r, lo, hi = _painted_runs(int(x0[i]), int(y0[i]), int(sx[i]), int(sy[i]), size, width)
        else:
            if key not in _HOLED:
                c = R + _SHAPE_MAX + 4
                _HOLED[key] = _painted_runs(c, c, key[0], key[1], (2 * c + 1, 2 * c + 1), width, c)
            r, lo, hi = _HOLED[key]
            r, lo, hi = r + int(y0[i]), lo + int(x0[i]), hi + int(x0[i])
        parts.append((k * H + r, lo.astype(np.int32), hi.astype(np.int32)))
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]


_HOLED: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _painted_runs(x0: int, y0: int, dx: int, dy: int, size: tuple[int, int], width: int, origin: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pixel runs (row, left, right) of one thick segment from the scalar painter, relative to
    ``origin`` (the start pixel of a cached shape) or absolute (``origin=0``)."""
    H, W = size
    R = cap_radius(width) + 2
    ylo, yhi = max(min(y0, y0 + dy) - R, 0), min(max(y0, y0 + dy) + R, H - 1)
    xlo, xhi = max(min(x0, x0 + dx) - R, 0), min(max(x0, x0 + dx) + R, W - 1)
    if ylo > yhi or xlo > xhi:
        z = np.zeros(0, np.int64)
        return z, z, z
    cv = _Canvas(size, (ylo, xlo, yhi - ylo + 1, xhi - xlo + 1))
    _thick_segment(cv, x0, y0, x0 + dx, y0 + dy, width)
    d = np.diff(np.pad(cv.mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    r, lo = np.nonzero(d == 1)
    _, hi = np.nonzero(d == -1)
    return r + ylo - origin, lo + xlo - origin, hi - 1 + xlo - origin


def _union_runs(cell: np.ndarray, left: np.ndarray, right: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Union of runs per cell: (cells, left, right, hole) with ``hole`` where the union is not one run."""
    order = np.lexsort((left, cell))
    c, lo, hi = cell[order], left[order].astype(np.int64), right[order].astype(np.int64)
    if not len(c):
        return c, lo, hi, np.zeros(0, bool)
    first = np.ones(len(c), bool)
    first[1:] = c[1:] != c[:-1]
    # running right end within a cell: cells are sorted, so offsetting by the cell keeps them apart
    reach = np.maximum.accumulate((c << 32) + hi + (1 << 30)) - (c << 32) - (1 << 30)
    gap = np.zeros(len(c), bool)
    gap[1:] = ~first[1:] & (lo[1:] > reach[:-1] + 1)
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(c)] - 1
    hole = np.logical_or.reduceat(gap, starts)
    return c[starts], lo[starts], reach[ends], hole


class _Variants:
    """Stamp variants (``vx``: x-border, ``vy``: y-border) of the unit segments ``idx`` near a border."""

    def __init__(self, idx: np.ndarray, px: np.ndarray, py: np.ndarray, size: tuple[int, int],
                 st: _StampTable, dec: _Decomposition, width: int) -> None:
        H, W = size
        x0, y0 = px[idx], py[idx]
        sx, sy = px[idx + 1] - x0, py[idx + 1] - y0
        k = (sx + 1) * 3 + sy + 1
        dist = np.stack([x0, W - 1 - x0, y0, H - 1 - y0])
        close = np.abs(dist) <= st.near
        self.vx, self.vy = k.copy(), k.copy()
        for b, v in ((0, self.vx), (1, self.vx), (2, self.vy), (3, self.vy)):
            v[close[b]] = st.variant(b, dist[b, close[b]], k[close[b]])
        self.extra = (dec.exact[self.vx] | dec.exact[self.vy] | (close[0] & close[1])
                      | (close[2] & close[3]))
        if width not in _CORNER_RULE_WIDTHS:
            self.extra |= (close[0] | close[1]) & (close[2] | close[3])


def _corners(idx: np.ndarray, lane: np.ndarray, k: np.ndarray, vx: np.ndarray, vy: np.ndarray,
             px: np.ndarray, py: np.ndarray, size: tuple[int, int], dec: _Decomposition,
             fast: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    """Add the corner pixels of diagonal unit segments ``idx`` (direction ``k``, variants ``vx``/``vy``)."""
    H, W = size
    use_lane = fast[lane]
    idx, lane, k, vx, vy = idx[use_lane], lane[use_lane], k[use_lane], vx[use_lane], vy[use_lane]
    xs = np.clip(px[idx], -_XPAD, W - 1 + _XPAD).astype(np.int32)
    y0 = py[idx]
    for rows, vals, op, dst in ((dec.rows_l, dec.val_l, np.minimum, left),
                                (dec.rows_r, dec.val_r, np.maximum, right)):
        for s in range(rows.shape[1]):
            v = vals[vx, s]
            row = y0 + rows[k, s]
            use = (np.abs(v) < _B32) & (np.abs(vals[vy, s]) < _B32) & (row >= 0) & (row < H)
            op.at(dst.ravel(), (lane * H + row)[use], xs[use] + v[use])


def _corners_interior(idx: np.ndarray, lane: np.ndarray, k: np.ndarray, px: np.ndarray, py: np.ndarray,
                      H: int, dec: _Decomposition, fast: np.ndarray, left: np.ndarray, right: np.ndarray
                      ) -> None:
    """:func:`_corners` of diagonal unit steps whose start is more than ``near`` pixels from every border.

    Such a step uses its own direction's stamp (no variant), its corner rows (offsets within
    ``-R..R``) lie inside the image and its x needs no clamp, so the per-slot tests go; both slots of a
    side may be added in any order (``minimum``/``maximum``).
    """
    if not fast.all():
        use_lane = fast[lane]
        idx, lane, k = idx[use_lane], lane[use_lane], k[use_lane]
    base = lane * H + py[idx]
    xs = px[idx]
    for rows, vals, op, dst in ((dec.rows_l, dec.val_l, np.minimum, left),
                                (dec.rows_r, dec.val_r, np.maximum, right)):
        for s in range(rows.shape[1]):
            cell = base + rows[:, s].take(k)
            v = xs + vals[:9, s].take(k)
            if not (np.abs(vals[_DIAGONAL, s]) < _B32).all():  # a slot some direction does not use
                keep = np.abs(v - xs) < _B32
                cell, v = cell[keep], v[keep]
            op.at(dst.ravel(), cell, v)


@lru_cache(maxsize=16)
def _disk_levels(radius: int) -> tuple[tuple[int, int], ...] | None:
    """The disk profile as nested row intervals: ``(a, h)`` pairs, ``h`` each distinct half-width and
    ``a`` the largest row offset whose half-width is >= ``h`` (None if some such set is not the
    interval ``-a..a``). Then ``min_e(f[y + e] - w[e]) == min_h(min(f[y - a .. y + a]) - h)``."""
    w = disk_halfwidths(radius)
    d = np.arange(-radius, radius + 1)
    out = []
    for h in sorted(set(w.tolist()), reverse=True):
        a = int(np.abs(d[w >= h]).max())
        if not np.array_equal(w >= h, np.abs(d) <= a):
            return None
        out.append((a, h))
    return tuple(out)


def _disk_conv(f: np.ndarray, Q: int, w: np.ndarray, levels: tuple[tuple[int, int], ...] | None,
               sign: int, n: int) -> np.ndarray:
    """``out[i] = min_e(f[i + e] - w[e])`` (``sign`` 1) or ``max_e(f[i + e] + w[e])`` (``sign`` -1) for
    ``e = 0 .. 2Q``, ``i < n``: nested window extremes from a sparse table of power-of-two windows."""
    op = np.minimum if sign > 0 else np.maximum
    out = np.empty(n, f.dtype)
    tmp = np.empty(n, f.dtype)
    if levels is None:  # not nested intervals: every offset
        out[...] = sign * (1 << 14) if f.dtype == np.int16 else sign * _B32
        for e in range(2 * Q + 1):
            np.subtract(f[e:e + n], sign * w[e], out=tmp)
            op(out, tmp, out=out)
        return out
    table = [f]  # table[k][i] = extreme of f[i .. i + 2**k - 1]
    while (1 << len(table)) <= 2 * Q + 1:
        k = len(table)
        prev = table[-1]
        half = 1 << (k - 1)
        table.append(op(prev[:len(prev) - half], prev[half:]))
    first = True
    for a, h in levels:
        s = 2 * a + 1
        k = s.bit_length() - 1
        lo = Q - a
        hi = Q + a - (1 << k) + 1
        t = table[k]
        if lo == hi:
            np.subtract(t[lo:lo + n], sign * h, out=tmp)
        else:
            op(t[lo:lo + n], t[hi:hi + n], out=tmp)
            np.subtract(tmp, sign * h, out=tmp)
        if first:
            out[...] = tmp
            first = False
        else:
            op(out, tmp, out=out)
    return out


def _fill_fast(fast: np.ndarray, px: np.ndarray, py: np.ndarray, starts: np.ndarray,
               size: tuple[int, int], width: int, left: np.ndarray, right: np.ndarray) -> None:
    """Disk part of the ``fast`` lanes: per-row min-plus convolution of the points' x extremes.

    Args:
        fast: (K,) lanes to fill (y-monotone chains); px, py: their points (all K lanes, concatenated);
        starts: (K + 1,) first point of each lane; left, right: (K, H) run ends, rows of ``fast`` set
            (other rows of those lanes must hold the empty values ``+-_B32`` already).
    """
    H, W = size
    Q = cap_radius(width)
    fl = np.flatnonzero(fast)
    counts = np.diff(starts)
    if len(fl) == len(counts):
        qx, qy = px, py
    else:
        pm = np.repeat(fast, counts)
        qx, qy = px[pm], py[pm]
    nq = len(qy)
    cf = counts[fl]
    qstart = np.cumsum(cf) - cf
    # a monotone chain visits each row in one contiguous group of points
    newg = np.empty(nq, bool)
    newg[0] = True
    np.not_equal(qy[1:], qy[:-1], out=newg[1:])
    newg[qstart] = True
    g = np.flatnonzero(newg)
    ge = np.empty_like(g)
    ge[:-1] = g[1:] - 1
    ge[-1] = nq - 1
    # within a row a chain of distinct points moves in x one way, so the group's extremes are its end
    # points; groups where the chain turns back inside a row (rare) take the full reduction
    lo = np.clip(qx, -_XPAD, W - 1 + _XPAD)
    a, b = lo[g], lo[ge]
    gmin, gmax = np.minimum(a, b), np.maximum(a, b)
    d = np.diff(qx)
    inner = ~newg[1:]  # step j stays in its row
    turn = inner[1:] & inner[:-1] & ((d[1:] ^ d[:-1]) < 0)
    if turn.any():
        tg = np.unique(np.searchsorted(g, np.flatnonzero(turn) + 1, side="right") - 1)
        own, within = _ragged_arange(ge[tg] - g[tg] + 1)
        pts = lo[g[tg][own] + within]
        np.minimum.at(gmin, tg[own], pts)
        np.maximum.at(gmax, tg[own], pts)
    gfirst = np.searchsorted(g, qstart)  # first group of each fast lane
    glast = np.r_[gfirst[1:], len(g)] - 1
    gy = qy[g]
    # rows of the batch: each chain is monotone, so its first and last groups are its extreme rows;
    # points further than Q rows outside the image reach no image row
    ya, yb = gy[gfirst], gy[glast]
    ylo = max(int(np.minimum(ya, yb).min()), -Q)
    yhi = min(int(np.maximum(ya, yb).max()), H + Q - 1)
    olo, ohi = max(ylo - Q, 0), min(yhi + Q, H - 1)  # output rows
    if olo > ohi:
        return
    # dense blocks: lane j's input rows olo - Q .. ohi + Q at j * Hp (one window for the whole batch)
    Hp = ohi - olo + 1 + 2 * Q
    cell = np.repeat(np.arange(len(fl), dtype=np.int64) * Hp - (olo - Q), glast - gfirst + 1) + gy
    if ylo > int(gy.min()) or yhi < int(gy.max()):
        ok = (gy >= -Q) & (gy < H + Q)
        cell, gmin, gmax = cell[ok], gmin[ok], gmax[ok]
    # x is clamped near the image, so int16 holds it for any realistic width (half the memory traffic);
    # "no point" is a value far right (left end) or far left (right end): such rows come out empty
    dt, none = (np.int16, 1 << 14) if W + 2 * _XPAD + Q < 1 << 14 else (np.int32, _B32)
    total = len(fl) * Hp
    xmin = np.full(total, none, dt)
    xmax = np.full(total, -none, dt)
    xmin[cell] = gmin
    xmax[cell] = gmax
    n = total - 2 * Q
    w = disk_halfwidths(Q).astype(dt)
    levels = _disk_levels(Q)
    cl = np.empty(total, dt)
    cr = np.empty(total, dt)
    cl[:n] = _disk_conv(xmin, Q, w, levels, 1, n)
    cr[:n] = _disk_conv(xmax, Q, w, levels, -1, n)
    lim = W + _XPAD + Q  # beyond: no point within the disk's reach
    span = ohi - olo + 1
    cl2 = cl.reshape(len(fl), Hp)[:, :span]
    cr2 = cr.reshape(len(fl), Hp)[:, :span]
    lv = np.where(cl2 > lim, np.int32(_B32), cl2.astype(np.int32))
    rv = np.where(cr2 < -lim, np.int32(-_B32), cr2.astype(np.int32))
    if len(fl) == len(counts):
        left[:, olo:ohi + 1] = lv
        right[:, olo:ohi + 1] = rv
    else:
        left[fl, olo:ohi + 1] = lv
        right[fl, olo:ohi + 1] = rv


def lane_shape(px: np.ndarray, py: np.ndarray, size: tuple[int, int], width: int) -> LaneShape:
    """Rasterise one lane (consecutive thick segments through integer pixel points).

    Args:
        px, py: (N,) int64 pixel coordinates from :func:`cv_round`, N >= 1.
        size: canvas (H, W).
        width: thickness (>= 2).

    Returns:
        The lane's :class:`LaneShape`, pixel-identical to :func:`draw_lane_reference`.
    """
    return rasterize_batch(px, py, np.array([len(px)]), size, width).shape(0)
