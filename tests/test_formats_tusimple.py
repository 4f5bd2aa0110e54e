"""TuSimple reader: real label files in ../shared/realdata and bad-input cases on tmp files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lanekd.data.formats import DATASETS, ErrorPolicy, read_dataset
from lanekd.data.formats.common import image_size
from lanekd.errors import DataError, LaneKDError


def test_real_frames_with_png_bytes(realdata: Path) -> None:
    root = realdata / "tusimple"
    samples = list(read_dataset("tusimple", root, "train"))  # only the filtered 0601 file is present
    assert len(samples) == 6
    first = samples[0]
    assert first.name == "clips/0601/1494453497604532231/20.jpg"
    assert first.image_path == root / first.name and first.size == (720, 1280)
    assert first.num_slots == 6 and first.slots == [1, 2, 3, 4]
    assert first.exist.tolist() == [0, 1, 1, 1, 1, 0]
    # Hand-picked from the JSON: lane 2 ends "..., 100, 87]" at h 700, 710; lane 3 "..., 1178, -2]".
    np.testing.assert_array_equal(first.lanes[1][:2], [[87, 710], [100, 700]])
    np.testing.assert_array_equal(first.lanes[2][0], [1178, 700])
    assert all(np.all(np.diff(lane[:, 1]) < 0) for lane in first.lanes)  # bottom to top
    # The .jpg files hold PNG bytes: the header reader detects the format from the content.
    assert all(image_size(s.image_path) == (720, 1280) for s in samples)
    five = samples[3]
    assert five.slots == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "split, lines, lanes",
    [
        ("label_data_0313.json", 2858, 4 * 2858 - 537),  # 537 all -2 placeholder lanes dropped
        ("val", 358, None),
        ("label_data_0601.json", 410, None),
        ("test", 2782, None),
        ("train", 2858 + 410, None),
    ],
)
def test_real_full_annotations(realdata: Path, split: str, lines: int, lanes: int | None) -> None:
    root = realdata / "tusimple" / "_full_annotations"
    samples = list(read_dataset("tusimple", root, split, check_images=False))
    assert len(samples) == lines
    if lanes is not None:
        assert sum(len(s.lanes) for s in samples) == lanes
    for s in samples:
        assert len(s.lanes) <= 5 and len(set(s.slots)) == len(s.slots)
        assert s.exist.sum() == len(s.lanes)


def test_real_test_label_details(realdata: Path) -> None:
    root = realdata / "tusimple" / "_full_annotations"
    samples = list(read_dataset("tusimple", root, "test", check_images=False))
    assert Counter(len(s.lanes) for s in samples)[5] == 569
    assert sum(1 for s in samples for lane in s.lanes if len(lane) == 1) == 3  # single-point lanes kept
    with open(root / "test_label.json") as fh:
        entry = json.loads(fh.readline())
    first = samples[0]
    assert first.name == entry["raw_file"] and first.source == (str(root / "test_label.json"), 1)
    ys = entry["h_samples"]
    expected = sorted(
        ([(x, y) for x, y in zip(lane, ys) if x >= 0][::-1] for lane in entry["lanes"] if max(lane) >= 0),
        key=lambda pts: pts[0][0],
    )
    got = sorted((lane.tolist() for lane in first.lanes), key=lambda pts: pts[0][0])
    assert got == [[list(map(float, p)) for p in pts] for pts in expected]


def test_info() -> None:
    info = DATASETS["tusimple"]
    assert (info.num_slots, info.num_classes, info.source_size, info.default_size) == (
        6,
        7,
        (720, 1280),
        (368, 640),
    )


# ---------------------------------------------------------------- tmp files

YS = [600, 650, 700]


def write(
    root: Path, lines: list[str], name: str = "label_data_0531.json", image: str = "clips/a/20.jpg"
) -> Path:
    (root / Path(image).parent).mkdir(parents=True, exist_ok=True)
    (root / image).write_bytes(b"")
    (root / name).write_text("".join(line + "\n" for line in lines))
    return root


def entry(lanes: list[list[int]], raw_file: str = "clips/a/20.jpg", ys: list[int] = YS) -> str:
    return json.dumps({"raw_file": raw_file, "lanes": lanes, "h_samples": ys})


def test_tmp_slot_rule(tmp_path: Path) -> None:
    # x at the bottom row (719): lane A 300 -> left, lane B 900 -> right, lane C extends to 60 -> left.
    lanes = [[900, 900, 900], [-2, -2, -2], [300, 300, 300], [160, 110, 60]]
    write(tmp_path, [entry(lanes)])
    (sample,) = read_dataset("tusimple", tmp_path, "val")
    assert sample.slots == [1, 2, 3]  # two left lanes: 2 (nearest the centre) and 1; right lane: 3
    assert [lane[0, 0] for lane in sample.lanes] == [60, 300, 900]
    assert sample.lanes[0].tolist() == [[60, 700], [110, 650], [160, 600]]
    assert sample.exist.tolist() == [0, 1, 1, 1, 0, 0]


def test_tmp_overfull_side_shifts(tmp_path: Path) -> None:
    lanes = [[100, 100, 100], [200, 200, 200], [300, 300, 300], [400, 400, 400], [1000, 1000, 1000]]
    write(tmp_path, [entry(lanes)])
    (sample,) = read_dataset("tusimple", tmp_path, "val")
    assert sample.slots == [0, 1, 2, 3, 4]  # 4 left lanes do not fit in slots 0-2: the run shifts


BAD = [
    ("not json", "{raw_file: x", "label_data_0531.json:2: not valid JSON"),
    ("length mismatch", entry([[1, 2]]), "label_data_0531.json:2: lane 0 has 2 x values but h_samples has 3"),
    ("missing key", json.dumps({"raw_file": "clips/a/20.jpg", "lanes": []}), ":2: missing key(s) h_samples"),
    ("not an object", "[1, 2]", ":2: expected a JSON object"),
    ("missing image", entry([], raw_file="clips/b/20.jpg"), ":2: image "),
    ("too many lanes", entry([[i * 100] * 3 for i in range(1, 8)]), ":2: 7 lanes but only 6 slots"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_tmp_bad_lines(tmp_path: Path, case) -> None:
    _, bad, expected = case
    write(tmp_path, [entry([[1, 2, 3]]), bad, entry([[4, 5, 6]])])
    with pytest.raises(DataError) as info:
        list(read_dataset("tusimple", tmp_path, "val"))
    assert expected in str(info.value)
    policy = ErrorPolicy("skip")
    samples = list(read_dataset("tusimple", tmp_path, "val", policy))
    assert [s.source[1] for s in samples] == [1, 3]
    assert len(policy.skipped) == 1 and policy.skipped[0].line == 2


def test_split_files(tmp_path: Path) -> None:
    with pytest.raises(LaneKDError, match="none of label_data_0313.json, label_data_0601.json found"):
        read_dataset("tusimple", tmp_path, "train")
    with pytest.raises(LaneKDError, match="unknown TuSimple split"):
        read_dataset("tusimple", tmp_path, "nope")
    write(tmp_path, [entry([[1, 2, 3]])], name="mine.json")
    assert len(list(read_dataset("tusimple", tmp_path, str(tmp_path / "mine.json")))) == 1
