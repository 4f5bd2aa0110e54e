"""Domain randomisation of synthetic frames (lanekd.data.synthetic_domain)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lanekd.data.synthetic import render_scene, write_culane_layout
from lanekd.data.synthetic_domain import MOUNT_HEIGHT, DomainRandomization, _sample_warp, randomize_frame
from lanekd.errors import ConfigError

SIZE = (148, 410)


def test_parse_and_spec_round_trip() -> None:
    assert not DomainRandomization.parse(None)
    assert not DomainRandomization.parse("")
    assert not DomainRandomization.parse("none")
    both = DomainRandomization.parse("hood, lens")
    assert both.hood and both.lens and not both.photo
    assert DomainRandomization.parse(both.spec()) == both
    every = DomainRandomization.parse("all")
    assert all(getattr(every, n) for n in DomainRandomization.names())
    assert every.spec() == "all"
    with pytest.raises(ConfigError, match="unknown randomisation 'fisheye'"):
        DomainRandomization.parse("hood,fisheye")


def test_off_is_bit_identical_to_no_randomisation() -> None:
    a = render_scene(3, 7, "train", SIZE)
    b = render_scene(3, 7, "train", SIZE, randomize=DomainRandomization())
    assert np.array_equal(a.image, b.image)
    assert all(np.array_equal(x, y) for x, y in zip(a.lanes, b.lanes, strict=True))


@pytest.mark.parametrize("name", DomainRandomization.names())
def test_each_option_changes_the_frame_and_only_geometry_moves_lanes(name: str) -> None:
    # scene (3, 28) has an annotated double line; on (5, 10) `centre` paints the ego-left line
    seed, index = {"inner": (3, 28), "centre": (5, 10)}.get(name, (5, 2))
    plain = render_scene(seed, index, "train", SIZE)
    opts = DomainRandomization.parse(name)
    out = render_scene(seed, index, "train", SIZE, randomize=opts)
    assert out.image.shape == plain.image.shape and out.image.dtype == np.uint8
    # `paint`, `inner` and `centre` change only the yellow and double lines, a small part of the frame
    small = name in ("paint", "inner", "centre")
    assert np.abs(out.image.astype(int) - plain.image.astype(int)).mean() > (0.01 if small else 0.5)
    same = len(out.lanes) == len(plain.lanes) and all(
        np.array_equal(x, y) for x, y in zip(out.lanes, plain.lanes, strict=True))
    assert same == (name not in ("lens", "camera", "mount"))
    assert out.exist.sum() == len(out.slots)


def test_mount_lowers_the_camera_and_widens_the_lanes_fan() -> None:
    """A lower camera puts the ego lane's boundaries further apart at the bottom row, and the
    annotations stay on the painted markings (they come from the same camera)."""
    widths = {False: [], True: []}
    for index in range(12):
        for mount in (False, True):
            s = render_scene(9, index, "train", (590, 1640), randomize=DomainRandomization(mount=mount))
            by_slot = dict(zip(s.slots, s.lanes, strict=True))
            if 1 in by_slot and 2 in by_slot and by_slot[1][0, 1] == by_slot[2][0, 1] == 589:
                widths[mount].append(float(by_slot[2][0, 0] - by_slot[1][0, 0]))
    assert len(widths[True]) >= 6
    assert np.median(widths[True]) > 1.1 * np.median(widths[False])
    heights = [_camera_height(i) for i in range(40)]
    assert MOUNT_HEIGHT[0] <= min(heights) and max(heights) <= MOUNT_HEIGHT[1]


def test_paint_pales_yellow_lines_and_spreads_double_lines() -> None:
    """`paint` repaints yellow lines and widens double lines, leaves white ones and the
    annotations alone, and does not change `mount`'s camera."""
    from lanekd.data.synthetic import sample_scene
    from lanekd.data.synthetic_domain import DOUBLE_SPACING, randomize_scene

    pale = doubles = 0
    for index in range(60):
        plain = sample_scene(np.random.default_rng(index), "normal")
        for opts in (DomainRandomization(mount=True), DomainRandomization(mount=True, paint=True)):
            sc = sample_scene(np.random.default_rng(index), "normal")
            randomize_scene(sc, opts, np.random.default_rng(1000 + index))
            assert sc.cam.h == _camera_height(index)
        for before, after in zip(plain.markings, sc.markings, strict=True):
            assert (after.X, after.slot, after.style, after.alpha) == (before.X, before.slot, before.style,
                                                                        before.alpha)
            if before.color[0] - before.color[2] < 20:  # white: untouched
                assert after.color == before.color
            elif after.color != before.color:
                pale += 1
                assert 100 <= after.color[2] <= 155 and after.color[1] < after.color[0]
            if before.style == "double":
                doubles += 1
                assert DOUBLE_SPACING[0] <= 2 * after.double_offset <= DOUBLE_SPACING[1]
            else:
                assert after.double_offset is None
    assert pale >= 5 and doubles >= 3
    a = render_scene(4, 11, "train", SIZE, randomize=DomainRandomization(paint=True))
    b = render_scene(4, 11, "train", SIZE)
    assert all(np.array_equal(x, y) for x, y in zip(a.lanes, b.lanes, strict=True))


def _ego_left_yellowness(seed: int, index: int, spec: str, size: tuple[int, int] = (295, 820)) -> float:
    """Median red minus blue of the rendered pixels under the ego-left annotation near the car."""
    s = render_scene(seed, index, "train", size, randomize=DomainRandomization.parse(spec))
    lane = s.lanes[s.slots.index(1)]
    near = lane[(lane[:, 1] > 0.6 * size[0]) & (lane[:, 1] < size[0] - 2)]
    px = s.image[np.round(near[:, 1]).astype(int), np.round(near[:, 0]).astype(int)].astype(int)
    return float(np.median(px[:, 0] - px[:, 2]))


@pytest.mark.parametrize("index", [28, 40, 64, 78])
def test_inner_puts_a_double_lines_annotation_on_its_inner_line(index: int) -> None:
    """With `inner` the annotated ego-left boundary (a double yellow line in these scenes) lies on
    yellow paint; without it, between the two lines (on asphalt, with `paint`'s wide spacing)."""
    assert _ego_left_yellowness(3, index, "paint,inner") > 50 and _ego_left_yellowness(3, index, "paint") < 20


def test_inner_moves_the_pair_away_from_the_camera() -> None:
    from lanekd.data.synthetic import sample_scene
    from lanekd.data.synthetic_domain import randomize_scene

    doubles = 0
    for index in range(40):
        sc = sample_scene(np.random.default_rng(index), "normal")
        randomize_scene(sc, DomainRandomization(inner=True), np.random.default_rng(index))
        for mk in sc.markings:
            if mk.style != "double":
                assert mk.double_shift == 0.0
                continue
            doubles += 1
            lines = (mk.X + mk.double_shift - mk.half_spacing, mk.X + mk.double_shift + mk.half_spacing)
            inner = min(lines, key=lambda x: abs(x - sc.cam.off))
            assert inner == pytest.approx(mk.X) and abs(mk.double_shift) > 0
    assert doubles >= 3


def test_centre_paints_the_ego_left_line_yellow_where_a_lane_lies_beyond_it() -> None:
    """`centre` turns the ego lane's left line into a double or solid yellow line on about 60 % of
    the roads with a lane beyond it and no yellow line yet; nothing else in the scene changes,
    and `paint` draws the same with and without it."""
    from lanekd.data.synthetic import sample_scene
    from lanekd.data.synthetic_domain import CENTRE_SHARE, randomize_scene

    def ego_left(sc):  # the line half a lane left of the ego lane's centre
        return next(i for i, mk in enumerate(sc.markings) if mk.X == pytest.approx(-sc.lane_width / 2))

    applicable = changed = doubles = 0
    for index in range(200):
        plain = sample_scene(np.random.default_rng(index), "normal")
        sc = sample_scene(np.random.default_rng(index), "normal")
        randomize_scene(sc, DomainRandomization(centre=True), np.random.default_rng(index))
        ego = ego_left(plain)
        beyond = any(mk.X == pytest.approx(-1.5 * plain.lane_width) for mk in plain.markings)
        yellow_before = any(mk.color[0] - mk.color[2] > 60 for mk in plain.markings if mk.X < 0)
        applicable += beyond and not yellow_before
        for i, (before, after) in enumerate(zip(plain.markings, sc.markings, strict=True)):
            if i != ego or after.color == before.color:
                key = ("style", "color", "X", "slot")
                assert [getattr(after, k) for k in key] == [getattr(before, k) for k in key]
                continue
            changed += 1
            doubles += after.style == "double"
            assert beyond and not yellow_before
            assert after.style in ("double", "solid") and after.color[0] - after.color[2] > 100
            assert (after.X, after.slot, after.alpha) == (before.X, before.slot, before.alpha)
        assert sc.vehicles == plain.vehicles and sc.cam.h == plain.cam.h
    assert applicable >= 60
    assert abs(changed / applicable - CENTRE_SHARE) < 0.15 and 0.5 < doubles / changed < 0.9
    # `paint`'s stream is its own: the other lines are repainted the same with `centre` on
    a = sample_scene(np.random.default_rng(8), "normal")
    b = sample_scene(np.random.default_rng(8), "normal")
    randomize_scene(a, DomainRandomization(paint=True), np.random.default_rng(1))
    randomize_scene(b, DomainRandomization(paint=True, centre=True), np.random.default_rng(1))
    skip = ego_left(a)
    assert [mk.color for i, mk in enumerate(a.markings) if i != skip] == [
        mk.color for i, mk in enumerate(b.markings) if i != skip]


def test_centre_with_inner_annotates_the_new_centre_line_on_yellow_paint() -> None:
    """Rendered: scene (3, 2)'s ego-left line (white) becomes a double yellow line with `centre`;
    its annotation lies between the two lines without `inner` and on the inner one with it."""
    assert _ego_left_yellowness(3, 2, "centre,inner") > 50
    assert _ego_left_yellowness(3, 2, "centre") < 15 and _ego_left_yellowness(3, 2, "inner") < 15


def _camera_height(index: int) -> float:
    from lanekd.data.synthetic import sample_scene
    from lanekd.data.synthetic_domain import randomize_scene

    sc = sample_scene(np.random.default_rng(index), "normal")
    randomize_scene(sc, DomainRandomization(mount=True), np.random.default_rng(1000 + index))
    return sc.cam.h


def test_options_draw_from_separate_streams() -> None:
    lens = render_scene(5, 4, "train", SIZE, randomize=DomainRandomization.parse("lens"))
    lens_noise = render_scene(5, 4, "train", SIZE, randomize=DomainRandomization.parse("lens,noise"))
    assert all(np.array_equal(x, y) for x, y in zip(lens.lanes, lens_noise.lanes, strict=True))
    again = render_scene(5, 4, "train", SIZE, randomize=DomainRandomization.parse("lens,noise"))
    assert np.array_equal(again.image, lens_noise.image)


def test_warp_point_transform_inverts_the_image_map() -> None:
    H, W = 590, 1640
    for seed in range(20):
        rng = np.random.default_rng(seed)
        warp = _sample_warp(rng, rng, DomainRandomization.parse("lens,camera"), H, W)
        assert warp is not None
        out = np.stack([rng.uniform(0, W - 1, 200), rng.uniform(0, H - 1, 200)], 1)
        sx, sy = warp.out_to_src(out[:, 0], out[:, 1])
        back = warp.src_to_out(np.stack([sx, sy], 1))
        np.testing.assert_allclose(back, out, atol=1e-3)


def test_annotations_follow_the_image() -> None:
    """A lane drawn into the frame is still under its moved annotation after the warp."""
    H, W = 590, 1640
    ys = np.arange(H - 1, 330, -10.0)
    lane = np.stack([820 + 0.9 * (ys - 330) * np.sin(0.6), ys], 1).astype(np.float32)
    for seed in range(8):
        img = np.zeros((H, W, 3), np.uint8)
        cv2.polylines(img, [np.round(lane).astype(np.int32).reshape(-1, 1, 2)], False, (255, 255, 255), 9)
        out, lanes, slots = randomize_frame(img, [lane], [1], DomainRandomization.parse("lens,camera"),
                                            np.random.default_rng(seed))
        assert slots == [1] and len(lanes[0]) >= 5
        moved = lanes[0]
        assert not np.allclose(moved, lane[: len(moved)])
        assert np.all(np.diff(moved[:, 1]) < 0)  # still bottom to top, one x per row
        xi = np.clip(np.round(moved[:, 0]).astype(int), 0, W - 1)
        yi = np.clip(np.round(moved[:, 1]).astype(int), 0, H - 1)
        assert (out[yi, xi, 0] > 128).mean() > 0.95


def test_randomize_frame_rejects_a_non_option_object() -> None:
    img = np.zeros((40, 60, 3), np.uint8)
    with pytest.raises(ConfigError, match="DomainRandomization"):
        randomize_frame(img, [], [], "all", np.random.default_rng(0))  # type: ignore[arg-type]


def test_randomised_culane_layout_reads_back_through_prepare(tmp_path) -> None:
    from lanekd.data.formats import read_dataset

    root = write_culane_layout(tmp_path / "cul", 6, seed=2, split="train",
                               randomize=DomainRandomization.parse("all"))
    samples = list(read_dataset("culane", root, split="train"))
    assert len(samples) == 6
    for s in samples:
        for lane in s.lanes:
            assert lane[:, 0].min() >= 0 and lane[:, 0].max() <= 1639
            assert lane[:, 1].min() >= 0 and lane[:, 1].max() <= 589


def test_prepare_synthetic_records_the_randomisation(tmp_path) -> None:
    from lanekd.data.h5 import read_attrs
    from lanekd.data.prepare import prepare_dataset

    plain, dr = tmp_path / "plain.h5", tmp_path / "dr.h5"
    prepare_dataset("synthetic", plain, split="train", size=(96, 256), n=3, seed=1)
    prepare_dataset("synthetic", dr, split="train", size=(96, 256), n=3, seed=1, randomize="photo,lens")
    assert read_attrs(plain)["randomize"] == ""
    assert read_attrs(dr)["randomize"] == "lens,photo"
    import h5py

    with h5py.File(plain) as a, h5py.File(dr) as b:
        assert a["image_bytes"][:].tobytes() != b["image_bytes"][:].tobytes()
    with pytest.raises(ConfigError, match="unknown randomisation"):
        prepare_dataset("synthetic", tmp_path / "x.h5", split="train", size=(96, 256), n=1, randomize="fog")
    with pytest.raises(ConfigError, match="synthetic dataset only"):
        prepare_dataset("culane", tmp_path / "y.h5", root=tmp_path, split="train", randomize="hood")


def test_cli_prepare_randomize(tmp_path) -> None:
    from typer.testing import CliRunner

    from lanekd.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["prepare", "synthetic", "--layout", "culane", "--n", "2", "--split", "train",
                              "--randomize", "hood,photo", "--out", str(tmp_path / "cul")])
    assert res.exit_code == 0, res.output
    plain = render_scene(0, 0, "train")
    written = cv2.imread(str(tmp_path / "cul" / "driver_synth" / "train" / "000000.jpg"))
    assert np.abs(written[..., ::-1].astype(int) - plain.image.astype(int)).mean() > 3
    bad = runner.invoke(app, ["prepare", "synthetic", "--n", "1", "--randomize", "fog",
                              "--out", str(tmp_path / "x.h5")])
    assert bad.exit_code == 2 and "fog" in bad.output and not (tmp_path / "x.h5").exists()
    other = runner.invoke(app, ["prepare", "culane", "--root", str(tmp_path), "--randomize", "hood",
                                "--out", str(tmp_path / "y.h5")])
    assert other.exit_code == 2 and "--randomize" in other.output
