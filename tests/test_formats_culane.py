"""CULane reader: the real samples in ../shared/realdata and every bad-input case on tmp layouts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lanekd.data.formats import DATASETS, ErrorPolicy, read_dataset
from lanekd.data.formats.common import parse_lines_file
from lanekd.errors import DataError, LaneKDError

VIDEO = "driver_23_30frame/05151649_0422.MP4"


@pytest.fixture(scope="module")
def culane(realdata: Path) -> Path:
    return realdata / "culane"


def test_real_train_gt_flags_and_coordinates(culane: Path) -> None:
    samples = list(read_dataset("culane", culane, "train"))
    assert len(samples) == 15
    patterns = Counter(tuple(s.exist.tolist()) for s in samples)
    assert patterns == {(1, 1, 1, 1): 6, (0, 1, 1, 1): 5, (0, 0, 1, 0): 2, (0, 0, 0, 0): 2}
    first = samples[0]
    assert first.name == f"/{VIDEO}/00000.jpg"  # verbatim, leading '/' kept
    assert first.image_path == culane / VIDEO / "00000.jpg"
    assert first.size == (590, 1640) and first.num_slots == 4
    assert first.slots == [0, 1, 2, 3]
    # Hand-picked from 00000.lines.txt: first point of each lane, bottom first as in the file.
    np.testing.assert_allclose(first.lanes[0][0], [-14.0619, 510], rtol=1e-6)
    np.testing.assert_allclose(first.lanes[2][0], [1409.63, 590], rtol=1e-6)
    np.testing.assert_allclose(first.lanes[3][-1], [862.567, 290], rtol=1e-6)
    assert [len(lane) for lane in first.lanes] == [23, 31, 31, 16]
    # The official masks are not shipped here, so no label_path.
    assert first.label_path is None and first.label_format is None
    assert first.source == (str(culane / "list" / "train_gt.txt"), 1)

    by_stem = {Path(s.name).stem: s for s in samples}
    single = by_stem["01260"]
    assert single.slots == [2] and single.exist.tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(single.lanes[0][0], [843.908, 320], rtol=1e-6)
    three = by_stem["01170"]
    assert three.slots == [1, 2, 3]
    assert [len(lane) for lane in three.lanes] == [20, 25, 13]
    np.testing.assert_allclose(three.lanes[0][0], [449.539, 590], rtol=1e-6)
    assert by_stem["01200"].lanes == [] and by_stem["01200"].exist.sum() == 0


def test_real_position_rule_agrees_with_flags(culane: Path) -> None:
    """train.txt has no flags: the position rule must reproduce the official slots of train_gt.txt."""
    with_flags = list(read_dataset("culane", culane, "train"))
    by_position = list(read_dataset("culane", culane, str(culane / "list" / "train.txt")))
    assert [s.name for s in by_position] == [s.name for s in with_flags]
    for a, b in zip(with_flags, by_position, strict=True):
        assert a.slots == b.slots, a.name
        for la, lb in zip(a.lanes, b.lanes, strict=True):
            np.testing.assert_array_equal(la, lb)


def test_real_val_and_test_lists_parse(culane: Path) -> None:
    """val_gt.txt (9675) and test.txt (34680) reference absent frames: every line is well formed and
    is reported as a missing image, naming the list file and line."""
    policy = ErrorPolicy("skip")
    assert list(read_dataset("culane", culane, "val", policy)) == []
    assert len(policy.skipped) == 9675
    assert all(e.message.startswith("image ") and e.message.endswith(" not found") for e in policy.skipped)
    assert policy.skipped[0].path.endswith("val_gt.txt") and policy.skipped[0].line == 1
    assert policy.skipped[-1].line == 9675

    samples = list(read_dataset("culane", culane, "test", check_images=False, labels=False))
    assert len(samples) == 34680
    assert samples[0].name == "/driver_100_30frame/05251517_0433.MP4/00000.jpg"
    counts = Counter(s.category for s in samples)
    assert counts == {
        "normal": 9621, "crowd": 8113, "hlight": 486, "shadow": 930, "noline": 4067,
        "arrow": 890, "curve": 422, "cross": 3122, "night": 7029,
    }  # fmt: skip
    night = list(read_dataset("culane", culane, "night", check_images=False, labels=False))
    assert len(night) == 7029 and {s.category for s in night} == {"night"}
    assert not night[0].name.startswith("/")  # test_split lists have no leading '/'


def test_info() -> None:
    info = DATASETS["culane"]
    assert (info.num_slots, info.num_classes, info.source_size, info.default_size) == (
        4,
        5,
        (590, 1640),
        (288, 800),
    )
    assert info.crop_top == 0 and info.line_width_at_source == 16


# ---------------------------------------------------------------- tmp layouts


def make_culane(
    root: Path, lines: dict[str, str], list_lines: list[str], list_name: str = "train_gt.txt"
) -> Path:
    """A CULane tree: ``lines`` maps frame stem -> .lines.txt content (frames get a dummy jpg)."""
    frames = root / "d" / "v.MP4"
    frames.mkdir(parents=True, exist_ok=True)
    for stem, text in lines.items():
        (frames / f"{stem}.jpg").write_bytes(b"\xff\xd8")
        (frames / f"{stem}.lines.txt").write_text(text)
    (root / "list").mkdir(exist_ok=True)
    (root / "list" / list_name).write_text("".join(line + "\n" for line in list_lines))
    return root


LANE_L = "100 589 150 500 200 400 \n"
LANE_R = "1500 589 1450 500 1400 400 \n"


def test_tmp_flags_and_mask(tmp_path: Path) -> None:
    root = make_culane(
        tmp_path, {"1": LANE_L + LANE_R}, ["d/v.MP4/1.jpg /laneseg_label_w16/d/v.MP4/1.png 0 1 1 0"]
    )
    mask = root / "laneseg_label_w16" / "d" / "v.MP4"
    mask.mkdir(parents=True)
    (mask / "1.png").write_bytes(b"")
    (sample,) = read_dataset("culane", root, "train")
    assert sample.name == "d/v.MP4/1.jpg"  # no leading '/' here: kept verbatim too
    assert sample.slots == [1, 2] and sample.exist.tolist() == [0, 1, 1, 0]
    assert sample.label_path == mask / "1.png" and sample.label_format == "culane"
    np.testing.assert_array_equal(sample.lanes[1], [[1500, 589], [1450, 500], [1400, 400]])


def test_tmp_position_rule_orders_lanes(tmp_path: Path) -> None:
    # File order right-to-left, top-to-bottom: the reader sorts lanes by slot and points bottom first.
    text = "1400 400 1450 500 1500 589 \n" + LANE_L + "700 300 600 400 \n"
    root = make_culane(tmp_path, {"1": text}, ["/d/v.MP4/1.jpg"], "test.txt")
    (sample,) = read_dataset("culane", root, "test")
    # x at the bottom row: 100-ish (left), 600 + (600-700)/(400-300)*(589-400) = 411 (left), 1500 (right)
    assert sample.slots == [0, 1, 2]
    assert sample.lanes[0][0].tolist() == [100, 589]
    assert sample.lanes[1][0].tolist() == [600, 400]
    assert sample.lanes[2][0].tolist() == [1500, 589]


BAD_CASES = [
    ("flag not 0/1", {"1": LANE_L}, ["d/v.MP4/1.jpg m.png 0 1 2 0"], "list/train_gt.txt:1: existence flags"),
    ("wrong field count", {"1": LANE_L}, ["d/v.MP4/1.jpg m.png 0 1 0"], "list/train_gt.txt:1: expected"),
    (
        "flags vs lanes",
        {"1": LANE_L},
        ["d/v.MP4/1.jpg m.png 0 1 1 0"],
        "2 existence flags set but 1.lines.txt has 1",
    ),
    ("missing image", {}, ["d/v.MP4/9.jpg m.png 0 0 0 0"], "list/train_gt.txt:1: image"),
    (
        "non-numeric",
        {"1": "100 589 abc 500\n"},
        ["d/v.MP4/1.jpg m.png 0 1 0 0"],
        "1.lines.txt:1: non-numeric value 'abc'",
    ),
    (
        "odd count",
        {"1": LANE_L + "1 2 3\n"},
        ["d/v.MP4/1.jpg m.png 1 1 0 0"],
        "1.lines.txt:2: odd number of values",
    ),
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_tmp_bad_input_fail_and_skip(tmp_path: Path, case) -> None:
    _, lines, list_lines, expected = case
    good = {"ok": LANE_L}
    root = make_culane(tmp_path, {**lines, **good}, [*list_lines, "d/v.MP4/ok.jpg m.png 0 1 0 0"])
    with pytest.raises(DataError) as info:
        list(read_dataset("culane", root, "train"))
    assert expected in str(info.value).replace("\\", "/")
    policy = ErrorPolicy("skip")
    samples = list(read_dataset("culane", root, "train", policy))
    assert [s.name for s in samples] == ["d/v.MP4/ok.jpg"]  # the reader went on with the next line
    assert len(policy.skipped) == 1 and expected in str(policy.skipped[0]).replace("\\", "/")


def test_tmp_missing_annotation_and_unlabelled(tmp_path: Path) -> None:
    root = make_culane(tmp_path, {}, ["/d/v.MP4/2.jpg"], "test.txt")
    (root / "d" / "v.MP4" / "2.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"test.txt:1: annotation .*2.lines.txt not found"):
        list(read_dataset("culane", root, "test"))
    (sample,) = read_dataset("culane", root, "test", labels=False)
    assert sample.lanes == [] and sample.exist.tolist() == [0, 0, 0, 0]


def test_unknown_split_fails_eagerly(tmp_path: Path) -> None:
    make_culane(tmp_path, {}, [])
    with pytest.raises(LaneKDError, match="no CULane list for split 'nope'"):
        read_dataset("culane", tmp_path, "nope")


def test_parse_lines_file_blank_lines_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "a.lines.txt"
    path.write_text("\n1 2 3 4 \n\n")
    lanes = parse_lines_file(path)
    assert len(lanes) == 1 and lanes[0].dtype == np.float32 and lanes[0].tolist() == [[1, 2], [3, 4]]
    path.write_text("")
    assert parse_lines_file(path) == []
    path.write_text("1 nan 3 4\n")
    with pytest.raises(DataError, match="a.lines.txt:1: non-finite"):
        parse_lines_file(path)
