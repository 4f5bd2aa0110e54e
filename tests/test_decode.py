"""Lane decoder: golden points, border modes, thresholds, spline, numpy == torch, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lanekd.decode import DecodeProfile, decode, get_profile, list_profiles
from lanekd.errors import ConfigError


def _matlab_round(v: float) -> int:
    return int(math.floor(v + 0.5))


def reference_decode(prob: np.ndarray, exist: np.ndarray, prof: DecodeProfile) -> list[list[np.ndarray]]:
    """Independent, loop-based model of prob2lines/getLane (1-based MATLAB indexing, full-map smoothing)."""
    from scipy.ndimage import uniform_filter

    mode = {"zero": "constant", "reflect101": "mirror", "replicate": "nearest"}[prof.border]
    B, C, h, w = prob.shape
    H_src, W_src = prof.source_size
    out = []
    for b in range(B):
        lanes = []
        for k in range(C - 1):
            smooth = uniform_filter(prob[b, k + 1].astype(np.float64), size=prof.kernel, mode=mode, cval=0.0)
            pts = []
            for i in range(1, prof.num_rows + 1):
                y = prof.y_start - (i - 1) * prof.y_step
                r = _matlab_round(h - (H_src - 1 - y) * h / prof.roi_height)  # 1-based row
                row = smooth[r - 1]
                c = int(np.argmax(row)) + 1  # 1-based column
                if row[c - 1] > prof.threshold:
                    pts.append((_matlab_round(c * W_src / w) - 1, y))
            ok = exist[b, k] > prof.exist_threshold and len(pts) >= prof.min_points
            lanes.append(np.array(pts, dtype=np.float64).reshape(-1, 2) if ok else np.zeros((0, 2)))
        out.append(lanes)
    return out


def lane_map(h: int, w: int, cols: np.ndarray, value: float = 0.9, half: int = 5, lanes: int = 4,
             slot: int = 1) -> np.ndarray:
    """(1, lanes+1, h, w) probabilities with a band of ``value`` around ``cols[r]`` in channel ``slot+1``."""
    p = np.zeros((1, lanes + 1, h, w), dtype=np.float32)
    p[0, 0] = 1.0
    for r in range(h):
        c = int(cols[r])
        if c < 0:
            continue
        lo, hi = max(c - half, 0), min(c + half + 1, w)
        p[0, slot + 1, r, lo:hi] = value
        p[0, 0, r, lo:hi] = 1.0 - value
    return p


def assert_same_lanes(a: list[list[np.ndarray]], b: list[list[np.ndarray]], atol: float = 0.0) -> None:
    assert len(a) == len(b)
    for la, lb in zip(a, b, strict=True):
        assert len(la) == len(lb)
        for x, y in zip(la, lb, strict=True):
            assert x.shape == y.shape
            np.testing.assert_allclose(x, y, atol=atol, rtol=0)


# ------------------------------------------------------------------------------------ profiles / rows
def test_culane_rows_and_columns_match_getlane() -> None:
    prof = get_profile("culane")
    np.testing.assert_array_equal(prof.sample_ys(), 589 - 20 * np.arange(18))
    rows = prof.net_rows(288)
    # r_i = round(288 - (i-1)*20*288/590), 1-based: 288, 278, 268, 259, ...; 0-based = r - 1.
    expected = [_matlab_round(288 - (i - 1) * 20 * 288 / 590) - 1 for i in range(1, 19)]
    np.testing.assert_array_equal(rows, expected)
    assert rows[0] == 287 and rows[1] == 277 and rows[3] == 258
    # x = round(c*1640/800) - 1 with c 1-based; c = 10 -> 20.5 rounds half away from zero -> 21 -> 20.
    np.testing.assert_array_equal(prof.columns_to_x(np.array([0, 9, 799]), 800), [1, 20, 1639])


def test_crop_profile_rows_cover_the_roi() -> None:
    prof = get_profile("culane-crop")
    assert prof.roi_height == 350 and prof.crop_top == 240
    rows = prof.net_rows(208)
    assert rows[0] == 207
    # y = 249 is 340 px above the bottom: round(208 - 340*208/350) = round(5.94) = 6 -> 0-based 5.
    assert rows[-1] == 5


def test_profiles_listed_and_validated() -> None:
    assert set(list_profiles()) >= {"culane", "culane-crop", "tusimple", "llamas", "synthetic"}
    assert get_profile("synthetic").source_size == (590, 1640)
    assert get_profile("LLAMAS").crop_top == 333
    with pytest.raises(ConfigError, match="unknown decoder profile"):
        get_profile("kitti")
    with pytest.raises(ConfigError, match="unknown decoder option"):
        get_profile("culane", treshold=0.2)
    with pytest.raises(ConfigError, match="odd"):
        get_profile("culane", kernel=4)
    with pytest.raises(ConfigError, match="border"):
        get_profile("culane", border="wrap")
    with pytest.raises(ConfigError, match="visible region"):
        get_profile("culane-crop", num_rows=30)


# ------------------------------------------------------------------------------------ golden decoding
def test_vertical_lane_golden_points() -> None:
    # A vertical band 11 px wide centred on column 400 (0-based) in slot 1, value 0.9.
    p = lane_map(288, 800, np.full(288, 400))
    e = np.array([[0.1, 0.9, 0.1, 0.1]])
    lanes = decode(p, e, spline=False)[0]
    assert [len(lane) for lane in lanes] == [0, 18, 0, 0]
    # The band covers columns 395..405; a 9-wide window centred on j covers j-4..j+4, so j = 399, 400, 401
    # tie at 9*9*0.9 and the first maximum wins: c = 400 (1-based), x = round(400*1640/800) - 1 = 819.
    np.testing.assert_array_equal(lanes[1][:, 0], np.full(18, 819.0))
    np.testing.assert_array_equal(lanes[1][:, 1], 589 - 20 * np.arange(18))


def test_slanted_lane_matches_reference_model() -> None:
    cols = 600 - np.arange(288)
    p = lane_map(288, 800, cols)
    e = np.array([[0.1, 0.9, 0.1, 0.1]])
    prof = get_profile("culane")
    got = decode(p, e, spline=False)
    assert_same_lanes(got, reference_decode(p, e, prof))
    # The bottom sample (row 287): rows 283..287 are in the image, 288..291 are zero padding; the band
    # centres 317..313 make column 315 (0-based) the first maximum -> x = round(316*2.05) - 1 = 647.
    assert got[0][1][0].tolist() == [647.0, 589.0]


@pytest.mark.parametrize("border", ["zero", "reflect101", "replicate"])
@pytest.mark.parametrize("profile", ["culane", "culane-crop", "tusimple", "llamas"])
def test_random_maps_match_reference_model(border: str, profile: str) -> None:
    rng = np.random.default_rng(7)
    prof = get_profile(profile, border=border)
    h, w = prof.net_size
    p = rng.random((2, 5, h, w)).astype(np.float32) ** 3  # skewed: some values above 0.3 after smoothing
    p[:, 2] += lane_map(h, w, np.linspace(w * 0.7, w * 0.3, h).astype(int))[0, 2]
    e = rng.random((2, 4))
    e[:, 1] = 0.9
    got = decode(p, e, profile=prof, spline=False)
    assert_same_lanes(got, reference_decode(p, e, prof))
    assert any(len(lane) for img in got for lane in img)


def test_border_modes_differ_only_at_the_border() -> None:
    from lanekd.decode.decoder import _box_sums_numpy, _tables

    rng = np.random.default_rng(3)
    p = rng.random((1, 5, 288, 800)).astype(np.float32)
    sums = {}
    for m in ("zero", "reflect101", "replicate"):
        prof = get_profile("culane", border=m)
        sums[m] = _box_sums_numpy(p, np.zeros(4, np.int64), np.arange(1, 5), _tables(prof, 288, 800), 9)[None]
    # Sample row 0 is network row 287: its window crosses the bottom edge. Columns 0..3 and 796..799
    # cross the sides. Everything else must be bit-identical across modes.
    inner = (slice(None), slice(None), slice(1, None), slice(4, 796))
    np.testing.assert_array_equal(sums["zero"][inner], sums["reflect101"][inner])
    np.testing.assert_array_equal(sums["zero"][inner], sums["replicate"][inner])
    for a, b in (("zero", "reflect101"), ("zero", "replicate"), ("reflect101", "replicate")):
        assert (sums[a][..., 0, :] != sums[b][..., 0, :]).all()  # bottom row: every column differs
        assert (sums[a][..., 1:, :4] != sums[b][..., 1:, :4]).any()
        assert (sums[a][..., 1:, 796:] != sums[b][..., 1:, 796:]).any()
    assert (sums["zero"][..., 0, :] < sums["reflect101"][..., 0, :]).all()  # padding adds zeros
    # Hand check of one border value: zero padding at the bottom-left corner sums rows 283..287, cols 0..4.
    np.testing.assert_allclose(sums["zero"][0, 0, 0, 0], p[0, 1, 283:, :5].sum(), rtol=1e-5)


def test_existence_threshold() -> None:
    p = lane_map(288, 800, np.full(288, 400))
    assert len(decode(p, np.array([[0, 0.5, 0, 0]]), spline=False)[0][1]) == 0  # > 0.5 strictly
    assert len(decode(p, np.array([[0, 0.51, 0, 0]]), spline=False)[0][1]) == 18
    assert len(decode(p, np.array([[0, 0.3, 0, 0]]), spline=False, exist_threshold=0.2)[0][1]) == 18
    assert len(decode(p, None, spline=False)[0][1]) == 18  # no existence branch: decode every slot


def test_value_threshold_and_min_points() -> None:
    # A lane visible only on the 2 bottom sample rows (network rows >= 275), value 0.5.
    cols = np.where(np.arange(288) >= 275, 400, -1)
    p = lane_map(288, 800, cols, value=0.5)
    e = np.array([[0, 0.9, 0, 0]])
    pts = decode(p, e, spline=False)[0][1]
    # Row 277 has all 9 window rows inside the band: 0.5 > 0.3 kept. Row 287 has 5 of 9 rows (zero
    # padding below): 0.5*5/9 = 0.278 < 0.3 dropped -> 1 point -> lane dropped.
    assert len(pts) == 0
    assert len(decode(p, e, spline=False, min_points=1)[0][1]) == 1
    assert len(decode(p, e, spline=False, border="replicate")[0][1]) == 2
    assert len(decode(p, e, spline=False, threshold=0.25)[0][1]) == 2
    assert len(decode(p, e, spline=False, threshold=0.5)[0][1]) == 0  # strictly greater


# ------------------------------------------------------------------------------------ spline
def test_spline_passes_through_points_every_10px() -> None:
    cols = (400 + 120 * np.sin(np.arange(288) / 60)).astype(int)
    p = lane_map(288, 800, cols)
    e = np.array([[0, 0.9, 0, 0]])
    raw = decode(p, e, spline=False)[0][1]
    fine = decode(p, e)[0][1]
    assert len(fine) == 2 * len(raw) - 1
    np.testing.assert_array_equal(fine[:, 1], 589 - 10 * np.arange(len(fine)))
    np.testing.assert_allclose(fine[::2], raw, atol=1e-9)
    # Natural cubic spline: matches scipy's natural CubicSpline through the raw points.
    from scipy.interpolate import CubicSpline

    cs = CubicSpline(raw[::-1, 1], raw[::-1, 0], bc_type="natural")
    np.testing.assert_allclose(fine[:, 0], cs(fine[:, 1]), atol=1e-9)


def test_spline_with_gaps_and_two_points() -> None:
    cols = np.where((np.arange(288) > 200) & ((np.arange(288) < 240) | (np.arange(288) > 265)), 300, -1)
    p = lane_map(288, 800, cols)
    e = np.array([[0, 0.9, 0, 0]])
    raw = decode(p, e, spline=False)[0][1]
    fine = decode(p, e)[0][1]
    assert fine[0, 1] == raw[0, 1] and fine[-1, 1] == raw[-1, 1]
    assert np.isin(raw[:, 1], fine[:, 1]).all()
    # two points -> straight line
    two = np.array([[[100.0, 589.0], [140.0, 569.0]]])
    from lanekd.decode.decoder import _spline_matrix

    grid, mat = _spline_matrix((589.0, 569.0), 10.0, None)
    np.testing.assert_allclose(mat @ two[0, :, 0], [100, 120, 140])
    np.testing.assert_array_equal(grid, [589, 579, 569])


def test_tusimple_profile_resamples_at_h_samples() -> None:
    prof = get_profile("tusimple")
    h, w = prof.net_size
    cols = np.where(np.arange(h) > 150, (np.arange(h) * 1.2).astype(int) % w, -1)
    p = lane_map(h, w, cols, lanes=6)
    e = np.array([[0, 0.9, 0, 0, 0, 0]])
    raw = decode(p, e, profile="tusimple", spline=False)[0][1]
    fine = decode(p, e, profile="tusimple")[0][1]
    assert set(raw[:, 1]) <= set(range(170, 711, 20))
    assert set(fine[:, 1]) <= set(range(160, 720, 10))
    assert fine[0, 1] == raw[0, 1] == 710 and fine[-1, 1] == raw[-1, 1]
    np.testing.assert_allclose(fine[::2], raw, atol=1e-9)


# ------------------------------------------------------------------------------------ numpy == torch
def test_numpy_and_torch_give_identical_lanes() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    logits = rng.normal(size=(3, 5, 288, 800)).astype(np.float32) * 2
    logits[:, 2] += lane_map(288, 800, 600 - np.arange(288))[0, 2] * 6
    logits[:, 4] += lane_map(288, 800, 100 + np.arange(288) * 2)[0, 2] * 6
    prob = torch.softmax(torch.from_numpy(logits), dim=1)
    exist = torch.tensor([[0.2, 0.9, 0.6, 0.95], [0.9, 0.9, 0.9, 0.9], [0.1, 0.1, 0.1, 0.1]])
    for border in ("zero", "reflect101", "replicate"):
        for spline in (False, True):
            a = decode(prob.numpy(), exist.numpy(), border=border, spline=spline)
            b = decode(prob, exist, border=border, spline=spline, backend="torch")  # the device kernel
            assert_same_lanes(a, b)
            assert_same_lanes(a, decode(prob, exist, border=border, spline=spline))  # auto: numpy view
    assert sum(len(lane) > 0 for lane in decode(prob, exist)[0]) >= 2
    prob64 = prob.double()
    assert_same_lanes(decode(prob64, exist, backend="torch"), decode(prob64.numpy(), exist.numpy()))
    assert_same_lanes(decode(prob.bfloat16(), exist), decode(prob.bfloat16(), exist, backend="torch"))
    half = prob.half()
    assert_same_lanes(decode(half.numpy(), exist.numpy()), decode(half, exist, backend="torch"))
    none = decode(prob, torch.zeros(3, 4), backend="torch")
    assert all(lane.shape == (0, 2) for img in none for lane in img)
    with pytest.raises(ValueError, match="backend"):
        decode(prob.numpy(), exist.numpy(), backend="torch")
    with pytest.raises(ValueError, match="backend"):
        decode(prob, exist, backend="jax")


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(5)
    prob = torch.softmax(torch.from_numpy(rng.normal(size=(4, 5, 288, 800)).astype(np.float32) * 3), dim=1)
    exist = torch.full((4, 4), 0.9)
    assert_same_lanes(decode(prob.cuda(), exist.cuda()), decode(prob.numpy(), exist.numpy()))
    assert_same_lanes(decode(prob.cuda(), exist.cuda(), spline=False), decode(prob, exist, spline=False))
    assert_same_lanes(decode(prob.cuda().half(), exist), decode(prob.half().float().numpy(), exist.numpy()))


# ------------------------------------------------------------------------------------ shapes / errors
def test_output_structure_and_errors() -> None:
    p = np.zeros((2, 5, 36, 100), dtype=np.float32)
    out = decode(p, np.zeros((2, 4)))
    assert len(out) == 2 and all(len(img) == 4 for img in out)
    assert all(lane.shape == (0, 2) and lane.dtype == np.float64 for img in out for lane in img)
    assert decode(np.zeros((0, 5, 36, 100), np.float32), np.zeros((0, 4))) == []
    with pytest.raises(ValueError, match=r"prob must be \(B, L\+1, h, w\)"):
        decode(np.zeros((5, 36, 100), np.float32), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"exist must have shape \(B, L\) = \(2, 4\)"):
        decode(p, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="floating point"):
        decode(p.astype(np.uint8), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="background channel"):
        decode(p[:, :1], np.zeros((2, 0)))
    with pytest.raises(ConfigError):
        decode(p, np.zeros((2, 4)), profile="nope")


def test_small_maps_and_other_slot_counts() -> None:
    # A tiny 36x100 map (the synthetic test size) and 6 slots (TuSimple): no index errors, sane output.
    rng = np.random.default_rng(0)
    p = rng.random((1, 7, 46, 80)).astype(np.float32)
    out = decode(p, np.ones((1, 6)), profile="tusimple", threshold=0.0)
    assert len(out[0]) == 6 and all(len(lane) > 0 for lane in out[0])
    for lane in out[0]:
        assert (lane[:, 1] >= 160).all() and (lane[:, 1] <= 710).all()
