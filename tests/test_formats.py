"""Registry, shared helpers (slot rule, image headers, label maps) and the custom JSON-lines format."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanekd.data.formats import (
    DATASETS,
    READERS,
    ErrorPolicy,
    assign_slots_by_position,
    read_dataset,
    read_label_map,
)
from lanekd.data.formats.common import DirIndex, image_size, x_at_bottom
from lanekd.errors import ConfigError, DataError, LaneKDError

# ---------------------------------------------------------------- registry


def test_registry() -> None:
    assert set(READERS) == {"culane", "tusimple", "llamas", "bdd100k", "apolloscape", "custom"}
    assert set(DATASETS) == set(READERS) | {"synthetic"}
    syn = DATASETS["synthetic"]
    assert (syn.num_slots, syn.num_classes, syn.source_size, syn.default_size) == (
        4,
        5,
        (590, 1640),
        (288, 800),
    )
    assert DATASETS["tusimple"].line_width_at_source == pytest.approx(16 * 1280 / 1640)
    assert DATASETS["bdd100k"].num_classes == 2
    for name, info in DATASETS.items():
        assert info.name == name


def test_read_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'kitti'"):
        read_dataset("kitti", tmp_path, "train")
    with pytest.raises(ConfigError, match="generated, not read"):
        read_dataset("synthetic", tmp_path, "train")
    with pytest.raises(ConfigError, match="unexpected keyword"):
        read_dataset("tusimple", tmp_path, "train", colour=True)


# ---------------------------------------------------------------- helpers


def lane(*pts: tuple[float, float]) -> np.ndarray:
    return np.array(pts, np.float32)


def test_x_at_bottom() -> None:
    assert x_at_bottom(lane((100, 500), (200, 400)), 600) == pytest.approx(1)  # extended 99 rows
    assert x_at_bottom(lane((300, 200)), 600) == 300  # one point
    assert x_at_bottom(lane((300, 200), (400, 200)), 600) == 300  # horizontal: lowest point


def test_slot_rule() -> None:
    size = (600, 1000)
    left, mid_left, right = (
        lane((100, 599), (150, 500)),
        lane((400, 599), (450, 500)),
        lane((700, 599), (650, 500)),
    )
    assert assign_slots_by_position([right, left, mid_left], size, 4) == [2, 0, 1]
    assert assign_slots_by_position([right], size, 4) == [2]
    assert assign_slots_by_position([mid_left], size, 6) == [2]
    far_right = lane((950, 599), (900, 500))
    assert assign_slots_by_position([right, far_right, lane((990, 599), (980, 500))], size, 4) == [1, 2, 3]
    assert assign_slots_by_position([], size, 4) == []
    with pytest.raises(ValueError, match="5 lanes but only 4 slots"):
        assign_slots_by_position([left] * 5, size, 4)


def test_image_size_headers(tmp_path: Path) -> None:
    img = np.zeros((37, 53, 3), np.uint8)
    for ext in ("png", "jpg", "bmp"):
        cv2.imwrite(str(tmp_path / f"a.{ext}"), img)
        assert image_size(tmp_path / f"a.{ext}") == (37, 53), ext
    (tmp_path / "png_in.jpg").write_bytes((tmp_path / "a.png").read_bytes())
    assert image_size(tmp_path / "png_in.jpg") == (37, 53)
    (tmp_path / "x.txt").write_text("hello")
    assert image_size(tmp_path / "x.txt") is None and image_size(tmp_path / "missing.png") is None


def test_dir_index(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.jpg").write_bytes(b"")
    index = DirIndex()
    assert index.exists(tmp_path / "a" / "f.jpg") and not index.exists(tmp_path / "a" / "g.jpg")
    assert not index.exists(tmp_path / "nope" / "f.jpg")


def test_label_map_culane(tmp_path: Path) -> None:
    mask = np.zeros((5, 6), np.uint8)
    mask[1, :] = 3
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    np.testing.assert_array_equal(read_label_map(tmp_path / "m.png", "culane"), mask)
    mask[2, 2] = 15  # the x5 encoding of some unofficial masks is refused, not silently mis-read
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    with pytest.raises(DataError, match="m.png: label values must be 0..4"):
        read_label_map(tmp_path / "m.png", "culane")
    with pytest.raises(DataError, match="cannot read label image"):
        read_label_map(tmp_path / "none.png", "culane")
    with pytest.raises(ValueError, match="unknown label format"):
        read_label_map(tmp_path / "m.png", "rgb")


# ---------------------------------------------------------------- custom


@pytest.fixture
def custom_dir(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.zeros((100, 200, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "img" / "b.jpg"), np.zeros((50, 80, 3), np.uint8))
    return tmp_path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_custom_position_slots(custom_dir: Path) -> None:
    path = write_jsonl(
        custom_dir / "train.jsonl",
        [
            {
                "image": "img/a.png",
                "lanes": [[[150, 60], [160, 99]], [[20, 99], [40, 60]]],
                "category": "night",
            },
            {"image": "img/b.jpg", "lanes": [[[10, 49], [20, 30]]], "slots": [3]},
            {"image": str(custom_dir / "img" / "a.png"), "lanes": []},
        ],
    )
    a, b, c = read_dataset("custom", custom_dir, "train")  # folder + split -> train.jsonl
    assert a.name == "img/a.png" and a.image_path == custom_dir / "img" / "a.png"
    assert a.size == (100, 200) and a.category == "night" and a.num_slots == 4
    assert a.slots == [1, 2] and a.exist.tolist() == [0, 1, 1, 0]
    assert a.lanes[0].tolist() == [[20, 99], [40, 60]]
    assert a.lanes[1].tolist() == [[160, 99], [150, 60]]  # reordered bottom first
    assert b.slots == [3] and b.size == (50, 80)
    assert c.lanes == [] and c.exist.sum() == 0
    assert [s.name for s in read_dataset("custom", path, "ignored")] == [a.name, b.name, c.name]
    (six,) = read_dataset(
        "custom", write_jsonl(custom_dir / "x.jsonl", [{"image": "img/a.png", "lanes": []}]), "", num_slots=6
    )
    assert six.num_slots == 6 and six.exist.shape == (6,)


BAD_CUSTOM = [
    ("not json", "{'image': 1}", "not valid JSON"),
    ("no image", {"lanes": []}, "missing key 'image'"),
    ("empty image", {"image": "", "lanes": []}, "'image' must be a non-empty string"),
    ("missing image", {"image": "img/zz.png", "lanes": []}, "image "),
    ("misspelt key", {"image": "img/a.png", "Lanes": [[[1, 2]]]}, "unknown key 'Lanes'"),
    ("no lanes key", {"image": "img/a.png"}, "missing key 'lanes' (write \"lanes\": []"),
    ("lanes not list", {"image": "img/a.png", "lanes": 3}, "'lanes' must be a list"),
    ("bad point", {"image": "img/a.png", "lanes": [[[1, 2, 3]]]}, "lane 0: point [1, 2, 3] is not [x, y]"),
    ("empty lane", {"image": "img/a.png", "lanes": [[]]}, "lane 0 must be a non-empty list"),
    ("slot count", {"image": "img/a.png", "lanes": [[[1, 2]]], "slots": [0, 1]}, "2 slots for 1 lanes"),
    (
        "slot range",
        {"image": "img/a.png", "lanes": [[[1, 2]]], "slots": [4]},
        "slots must be integers in [0, 3]",
    ),
    (
        "slot dup",
        {"image": "img/a.png", "lanes": [[[1, 2]], [[3, 4]]], "slots": [1, 1]},
        "slots must be distinct",
    ),
    ("too many", {"image": "img/a.png", "lanes": [[[i, 2]] for i in range(5)]}, "5 lanes but only 4 slots"),
    ("not an image", {"image": "notes.txt", "lanes": []}, "cannot read the size"),
    ("category", {"image": "img/a.png", "lanes": [], "category": 3}, "'category' must be a string"),
]


@pytest.mark.parametrize("case", BAD_CUSTOM, ids=[c[0] for c in BAD_CUSTOM])
def test_custom_bad_lines(custom_dir: Path, case) -> None:
    _, bad, expected = case
    (custom_dir / "notes.txt").write_text("x")
    path = write_jsonl(custom_dir / "d.jsonl", [bad, {"image": "img/a.png", "lanes": []}])
    with pytest.raises(DataError) as info:
        list(read_dataset("custom", path, "train"))
    assert str(info.value).startswith(f"{path}:1: ") and expected in str(info.value)
    policy = ErrorPolicy("skip")
    assert len(list(read_dataset("custom", path, "train", policy))) == 1
    assert len(policy.skipped) == 1 and policy.skipped[0].line == 1


def test_custom_missing_file_and_no_image_check(custom_dir: Path) -> None:
    with pytest.raises(LaneKDError, match="val.jsonl: custom dataset file not found"):
        read_dataset("custom", custom_dir, "val")
    path = write_jsonl(custom_dir / "d.jsonl", [{"image": "gone.png", "lanes": [[[1, 2]]], "slots": [0]}])
    (sample,) = read_dataset("custom", path, "", check_images=False)
    assert sample.size == (0, 0) and sample.slots == [0]
    write_jsonl(path, [{"image": "gone.png", "lanes": [[[1, 2]]]}])
    with pytest.raises(DataError, match="slots by position need the image width"):
        list(read_dataset("custom", path, "", check_images=False))
