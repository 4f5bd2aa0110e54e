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

* :func:`draw_lane_reference` - literal, scalar, slow; the definition used by the tests;
* :func:`lane_shape` - fast path for the common case (a dense, y-monotone chain of pixels away from the
  image border): each row of the lane is one run ``[left, right]`` obtained from precomputed stamps
  (disk and per-direction quadrilaterals) with vectorised min/max; anything else falls back to the
  scalar painter on a bounding-box bitmap.

A lane is returned as a :class:`LaneShape`: either one run per row (``rows``) or a bitmap (``mask``).
"""

from __future__ import annotations

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
    v = np.asarray(values, dtype=np.float32)
    r = np.rint(v).astype(np.float64)
    bad = ~np.isfinite(r) | (r >= 2.0**31) | (r < -(2.0**31))
    out = np.where(bad, 0.0, r).astype(np.int64)
    out[bad] = INT_MIN
    return out


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


def _fill_convex_poly(cv: _Canvas, v: list[tuple[int, int]]) -> None:
    """Convex polygon scan conversion, vertices in 16.16 fixed point (shift 16, 8-connected)."""
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
        _line2(cv, p0[0], p0[1], p[0], p[1])
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


def _thick_segment(cv: _Canvas, x0: int, y0: int, x1: int, y1: int, width: int, caps: int = 3) -> None:
    q = _quad(x0, y0, x1, y1, width)
    if q is not None:
        _fill_convex_poly(cv, q)
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

    Exactly one of two forms: ``rows`` - ``(y0, left, right)`` with ``left[i]..right[i]`` the single run
    of row ``y0 + i`` (``left > right`` for an empty row); or ``mask`` - ``(y0, x0, bitmap)``.
    ``area`` is the pixel count; ``box`` = (ymin, xmin, ymax, xmax) inclusive, or None when empty.
    """

    area: int
    box: tuple[int, int, int, int] | None
    rows: tuple[int, np.ndarray, np.ndarray] | None = None
    mask: tuple[int, int, np.ndarray] | None = None

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
        return out


EMPTY = LaneShape(0, None)

# unit steps between 8-neighbours, indexed by (dx + 1) * 3 + (dy + 1)
_DIRS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
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


@lru_cache(maxsize=8)
def _stamps(width: int) -> _StampTable:
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
    else:  # INT_MIN points draw lines that may cross the whole image
        cv = _Canvas(size)
        y0 = x0 = 0
    if len(px) == 1:
        _circle(cv, int(px[0]), int(py[0]), radius)
    for i in range(len(px) - 1):
        _thick_segment(cv, int(px[i]), int(py[i]), int(px[i + 1]), int(py[i + 1]), width,
                       caps=3 if i == 0 else 2)
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


_SEG_CACHE: dict[tuple[int, int, int], tuple[int, np.ndarray, np.ndarray] | None] = {}


def _segment_runs(x0: int, y0: int, dx: int, dy: int, size: tuple[int, int], width: int,
                  R: int) -> tuple[int, np.ndarray, np.ndarray] | None:
    """Exact row runs of one thick segment (caps included) as (first row, left, right) in absolute
    coordinates, or None if some row has a hole. Segments clear of the border are cached by shape."""
    H, W = size
    clear = (min(x0, x0 + dx) > R + 2 and max(x0, x0 + dx) < W - R - 3
             and min(y0, y0 + dy) > R + 2 and max(y0, y0 + dy) < H - R - 3)
    if clear:
        key = (dx, dy, width)
        if key not in _SEG_CACHE:
            cx, cy = R + 4 - min(dx, 0), R + 4 - min(dy, 0)
            csize = (cy + max(dy, 0) + R + 5, cx + max(dx, 0) + R + 5)
            runs = _segment_runs_on(cx, cy, dx, dy, csize, width, (0, 0, csize[0], csize[1]))
            _SEG_CACHE[key] = None if runs is None else (runs[0] - cy, runs[1] - cx, runs[2] - cx)
        rel = _SEG_CACHE[key]
        if rel is None:
            return None
        return rel[0] + y0, rel[1] + x0, rel[2] + x0
    ylo = max(min(y0, y0 + dy) - R, 0)
    yhi = min(max(y0, y0 + dy) + R, H - 1)
    xlo = max(min(x0, x0 + dx) - R, 0)
    xhi = min(max(x0, x0 + dx) + R, W - 1)
    if ylo > yhi or xlo > xhi:
        return ylo, np.zeros(0, np.int64), np.zeros(0, np.int64)
    return _segment_runs_on(x0, y0, dx, dy, size, width, (ylo, xlo, yhi - ylo + 1, xhi - xlo + 1))


def _segment_runs_on(x0: int, y0: int, dx: int, dy: int, size: tuple[int, int], width: int,
                     box: tuple[int, int, int, int]) -> tuple[int, np.ndarray, np.ndarray] | None:
    cv = _Canvas(size, box)
    _thick_segment(cv, x0, y0, x0 + dx, y0 + dy, width)
    m = cv.mask
    cnt = m.sum(axis=1, dtype=np.int64)
    first = np.argmax(m, axis=1).astype(np.int64)
    last = m.shape[1] - 1 - np.argmax(m[:, ::-1], axis=1).astype(np.int64)
    filled = cnt > 0
    if np.any(filled & (last - first + 1 != cnt)):
        return None
    nz = np.flatnonzero(filled)
    if len(nz) == 0:
        return cv.y0, np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = int(nz[0]), int(nz[-1]) + 1
    left = np.where(filled, first + cv.x0, _BIG)[a:b]
    right = np.where(filled, last + cv.x0, -_BIG)[a:b]
    return cv.y0 + a, left, right


def lane_shape(px: np.ndarray, py: np.ndarray, size: tuple[int, int], width: int) -> LaneShape:
    """Rasterise one lane (consecutive thick segments through integer pixel points).

    Args:
        px, py: (N,) int64 pixel coordinates from :func:`cv_round`, N >= 1.
        size: canvas (H, W).
        width: thickness (>= 2).

    Returns:
        The lane's :class:`LaneShape`, pixel-identical to :func:`draw_lane_reference`.
    """
    H, W = size
    px, py = dedupe(np.asarray(px, np.int64), np.asarray(py, np.int64))
    n = len(px)
    if n < 2 or px.min() == INT_MIN or py.min() == INT_MIN:
        return _bitmap_shape(px, py, size, width)
    st = _stamps(width)
    R = st.R
    sx, sy = np.diff(px), np.diff(py)
    mono = sy.min() >= 0 or sy.max() <= 0
    if not (mono and st.ok):
        return _bitmap_shape(px, py, size, width)
    x0, y0 = px[:-1], py[:-1]
    unit = (np.abs(sx) <= 1) & (np.abs(sy) <= 1)
    var = (np.clip(sx, -1, 1) + 1) * 3 + (np.clip(sy, -1, 1) + 1)
    # unit segments whose stamp may reach a border use the exhaustively rendered border variants; other
    # segments (long ones, or unit ones near an image corner) are rendered exactly one by one
    near = st.near
    dist = np.stack([x0, W - 1 - x0, y0, H - 1 - y0])  # (4, n-1)
    close = np.abs(dist) <= near
    extra = ~unit
    if close.any():
        cnt = close.sum(axis=0)
        extra |= cnt > 1
        for b in range(4):
            sel = close[b] & ~extra
            if sel.any():
                var[sel] = st.variant(b, dist[b, sel], var[sel])
    extras = []
    for i in np.flatnonzero(extra):
        runs = _segment_runs(int(x0[i]), int(y0[i]), int(sx[i]), int(sy[i]), size, width, R)
        if runs is None:
            return _bitmap_shape(px, py, size, width)
        extras.append(runs)
    keep_seg = ~extra
    x0, y0, var = x0[keep_seg], y0[keep_seg], var[keep_seg]
    # every row of a y-monotone chain is one run (each stamp is one run per row and consecutive
    # stamps overlap on every row both touch), so a row's run is [min of starts, max of ends]
    ylo = int(py.min()) - R
    nrows = int(py.max()) - int(py.min()) + 2 * R + 1
    left = np.full(nrows, _BIG, dtype=np.int64)
    right = np.full(nrows, -_BIG, dtype=np.int64)
    if len(x0):
        rows = (y0 - ylo - R)[:, None] + np.arange(2 * R + 1)[None, :]
        np.minimum.at(left, rows.ravel(), (x0[:, None] + st.left[var]).ravel())
        np.maximum.at(right, rows.ravel(), (x0[:, None] + st.right[var]).ravel())
    for r0, lv, rv in extras:
        if len(lv):
            sl = slice(r0 - ylo, r0 - ylo + len(lv))
            left[sl] = np.minimum(left[sl], lv)
            right[sl] = np.maximum(right[sl], rv)
    # clip to the image (border variants already dropped what the clipper drops)
    lo_row, hi_row = max(0, -ylo), min(nrows, H - ylo)
    if lo_row >= hi_row:
        return EMPTY
    left = np.maximum(left[lo_row:hi_row], 0)
    right = np.minimum(right[lo_row:hi_row], W - 1)
    keep = np.flatnonzero(left <= right)
    if len(keep) == 0:
        return EMPTY
    a, b = int(keep[0]), int(keep[-1])
    left, right = left[a:b + 1], right[a:b + 1]
    top = ylo + lo_row + a
    area = int(np.maximum(right - left + 1, 0).sum())
    box = (top, int(left[left <= right].min()), top + b - a, int(right.max()))
    return LaneShape(area, box, rows=(top, left, right))
