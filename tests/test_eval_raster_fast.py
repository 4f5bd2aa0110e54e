"""Property tests of the batched rasteriser's disk pass (nested-window min-plus convolution, batch row
window) against brute force and the reference painter."""

from __future__ import annotations

import numpy as np
import pytest

from lanekd.evaluate import _raster


def _assert_batch_matches_reference(
    lanes: list[tuple[np.ndarray, np.ndarray]], size: tuple[int, int], seed: int
) -> None:
    px = np.concatenate([p for p, _ in lanes])
    py = np.concatenate([q for _, q in lanes])
    runs = _raster.rasterize_batch(px, py, np.array([len(p) for p, _ in lanes]), size, 30)
    for k, (x, y) in enumerate(lanes):
        ref = _raster.draw_lane_reference(x, y, size, 30)
        assert np.array_equal(runs.shape(k).to_mask(size), ref), (seed, k)
        assert int(runs.area[k]) == int(ref.sum())


@pytest.mark.parametrize("width", [2, 3, 7, 16, 30, 31, 45])
def test_disk_conv_equals_brute_force(width: int) -> None:
    rng = np.random.default_rng(width)
    Q = _raster.cap_radius(width)
    w = _raster.disk_halfwidths(Q).astype(np.int16)
    f = rng.integers(-200, 2000, 3000).astype(np.int16)
    f[rng.random(3000) < 0.4] = 1 << 14  # "no point" rows
    n = len(f) - 2 * Q
    for sign in (1, -1):
        g = f if sign > 0 else -f
        want = np.full(n, sign * (1 << 14), np.int64)
        for e in range(2 * Q + 1):
            want = (np.minimum if sign > 0 else np.maximum)(want, g[e : e + n].astype(np.int64) - sign * w[e])
        for levels in (_raster._disk_levels(Q), None):
            got = _raster._disk_conv(g, Q, w, levels, sign, n)
            assert np.array_equal(got, want), (width, sign, levels is None)


@pytest.mark.parametrize("seed", range(6))
def test_batch_row_window_matches_reference(seed: int) -> None:
    """Batches whose lanes all lie in a narrow band of rows, or far above/below the image."""
    rng = np.random.default_rng(500 + seed)
    size = [(590, 1640), (97, 211)][seed % 2]
    H, W = size
    lanes = []
    y0 = int(rng.integers(-40, H + 40))
    for _ in range(10):
        n = int(rng.integers(2, 60))
        x = int(rng.integers(-50, W + 50)) + np.cumsum(rng.integers(-1, 2, n))
        y = y0 + np.cumsum(rng.integers(0, 2, n)) * (1 if seed % 3 else -1)
        if rng.random() < 0.3:
            y = y + int(rng.choice([-1, 1])) * (H + int(rng.integers(0, 40)))  # outside the image rows
        lanes.append((x.astype(np.int64), y.astype(np.int64)))
    _assert_batch_matches_reference(lanes, size, seed)


@pytest.mark.parametrize("width", [2, 5, 30, 31])
def test_batched_stamp_table_equals_painted(width: int) -> None:
    fast, ref = _raster._stamps(width), _raster._stamps_painted(width)
    assert (fast.R, fast.ok, fast.near) == (ref.R, ref.ok, ref.near)
    assert np.array_equal(fast.left, ref.left)
    assert np.array_equal(fast.right, ref.right)


@pytest.mark.parametrize("seed", range(8))
def test_short_steps_near_one_border_match_reference(seed: int) -> None:
    """Steps up to the shape table's length starting at every distance from each single border (the
    cached border shapes), y-monotone so that the lanes take the fast path."""
    rng = np.random.default_rng(900 + seed)
    size = [(590, 1640), (160, 300)][seed % 2]
    H, W = size
    lanes = []
    for k in range(24):
        border = k % 4
        n = int(rng.integers(2, 12))
        along = np.cumsum(rng.integers(-16, 17, n))
        across = int(rng.integers(-40, 40)) + np.cumsum(rng.integers(-3, 4, n))
        steps = np.sort(np.cumsum(rng.integers(0, 17, n)))  # monotone coordinate
        if border < 2:
            x = across if border == 0 else W - 1 - across
            y = H // 2 - 40 + steps
        else:
            y = across if border == 2 else H - 1 - across
            x = W // 2 + along
        lanes.append((np.asarray(x, np.int64), np.asarray(y, np.int64)))
    _assert_batch_matches_reference(lanes, size, seed)


def test_lane_pixels_groups_of_very_different_lengths_equal_lane_by_lane() -> None:
    """Lanes of 3 to 300 points (splined in groups by point count) give what each gives alone."""
    from lanekd.evaluate import culane as C

    rng = np.random.default_rng(21)
    lanes = []
    for n in [3, 4, 5, 7, 9, 16, 17, 33, 64, 65, 130, 300, 3, 31, 31, 2]:
        y = np.sort(rng.uniform(0, 590, n))[::-1]
        x = np.cumsum(rng.normal(0, 8, n)) + rng.uniform(0, 1640)
        lanes.append(np.stack([x, y], axis=1).astype(np.float32))
    lens = np.array([len(v) for v in lanes])
    px, py, counts, order = C.lane_pixels(np.concatenate(lanes), lens)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for j, i in enumerate(order):
        ex, ey = _raster.dedupe(*C._pixel_points(lanes[i]))
        assert np.array_equal(px[offsets[j] : offsets[j + 1]], ex), i
        assert np.array_equal(py[offsets[j] : offsets[j + 1]], ey), i


@pytest.mark.parametrize("width", [2, 7, 16, 30, 31])
def test_interior_diagonal_steps_match_reference(width: int) -> None:
    """y-monotone chains of unit steps, mostly diagonal, far from every border (the corner pixels of
    interior diagonal steps, added without per-slot tests), against the reference painter."""
    rng = np.random.default_rng(1300 + width)
    size = (590, 1640)
    lanes = []
    for _ in range(12):
        n = int(rng.integers(2, 200))
        down = rng.random() < 0.5
        dy = rng.choice([0, 1], n - 1, p=[0.3, 0.7]) * (1 if down else -1)
        dx = rng.choice([-1, 0, 1], n - 1, p=[0.4, 0.2, 0.4])
        dx[(dx == 0) & (dy == 0)] = 1
        x = int(rng.integers(300, 1300)) + np.r_[0, np.cumsum(dx)]
        y = int(rng.integers(250, 340)) + np.r_[0, np.cumsum(dy)]
        lanes.append((x.astype(np.int64), y.astype(np.int64)))
    px = np.concatenate([p for p, _ in lanes])
    py = np.concatenate([q for _, q in lanes])
    runs = _raster.rasterize_batch(px, py, np.array([len(p) for p, _ in lanes]), size, width)
    for k, (x, y) in enumerate(lanes):
        ref = _raster.draw_lane_reference(x, y, size, width)
        assert np.array_equal(runs.shape(k).to_mask(size), ref), (width, k)


def test_lane_pixels_output_meets_rasterize_batch_deduped() -> None:
    """lane_pixels repeats no point within a lane (what ``deduped=True`` lets rasterize_batch assume), and
    both ways give the same runs, lanes with repeated points (NaN splines) and 2-point lanes included."""
    from lanekd.evaluate import culane as C

    rng = np.random.default_rng(33)
    lanes = []
    for i in range(40):
        n = int(rng.integers(2, 30))
        y = np.sort(rng.uniform(200, 600, n))[::-1]
        x = np.cumsum(rng.normal(0, 3 if i % 3 else 0.2, n)) + rng.uniform(-100, 1740)
        lane = np.stack([x, y], axis=1).astype(np.float32)
        if i % 5 == 0:
            lane = np.insert(lane, 1, lane[1], axis=0)  # a repeated point
        lanes.append(lane)
    px, py, counts, _ = C.lane_pixels(np.concatenate(lanes), np.array([len(v) for v in lanes]))
    same = np.ones(len(px) - 1, bool)
    same[np.cumsum(counts)[:-1] - 1] = False
    assert not ((px[1:] == px[:-1]) & (py[1:] == py[:-1]) & same).any()
    size = (590, 1640)
    a = _raster.rasterize_batch(px, py, counts, size, 30, deduped=True)
    b = _raster.rasterize_batch(px, py, counts, size, 30)
    assert np.array_equal(a.left, b.left) and np.array_equal(a.right, b.right)
    assert np.array_equal(a.area, b.area) and a.masks.keys() == b.masks.keys()
