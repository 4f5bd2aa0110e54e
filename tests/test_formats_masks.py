"""Mask datasets: BDD100K (SAD lists and official lane-mark masks) and ApolloScape label ids."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanekd.data.formats import (
    APOLLO_ID_TO_TRAIN_ID,
    APOLLO_TRAIN_ID_TO_ID,
    DATASETS,
    ErrorPolicy,
    read_apollo_label_ids,
    read_dataset,
    read_label_map,
)
from lanekd.data.formats.apolloscape import APOLLO_CLASSES, APOLLO_IGNORE_IN_EVAL
from lanekd.errors import ConfigError, DataError, LaneKDError

# ---------------------------------------------------------------- BDD100K


def test_real_lanemark_masks(realdata: Path) -> None:
    root = realdata / "bdd100k" / "lane_eval_testcase"
    samples = list(read_dataset("bdd100k", root, "gts", source="lanemark", check_images=False))
    assert [s.label_path.name for s in samples] == [
        "fe189115-9981a740.png",
        "fe189115-9cc4a501.png",
        "fe189115-adbd209a.png",
        "fe189115-c31cac5a.png",
    ]
    assert all(s.label_format == "bdd_lanemark" and s.num_slots == 1 and s.lanes == [] for s in samples)
    # Pixel counts of the masks (values 0 crosswalk, 3 double yellow, 4 curb, 6/7 single white/yellow,
    # 255 background): lane = every foreground value except crosswalk.
    expected = [3007 + 2444 + 2660, 2865 + 887, 2482, 1582 + 3236 + 2908]
    for sample, count in zip(samples, expected, strict=True):
        lanes = read_label_map(sample.label_path, sample.label_format)
        assert lanes.shape == (720, 1280) and set(np.unique(lanes)) <= {0, 1}
        assert int(lanes.sum()) == count


def make_bdd(root: Path, lines: list[str]) -> Path:
    (root / "list").mkdir(parents=True)
    (root / "list" / "test_gt_bdd.txt").write_text("".join(line + "\n" for line in lines))
    for sub in ("val_img/val", "val_label/final_val"):
        (root / sub).mkdir(parents=True)
    for key in ("a", "b"):
        (root / "val_img/val" / f"{key}.jpg").write_bytes(b"")
        mask = np.zeros((720, 1280), np.uint8)
        mask[700:702, 100:300] = 255
        cv2.imwrite(str(root / "val_label/final_val" / f"{key}.png"), mask)
    return root


def test_sad_list(tmp_path: Path) -> None:
    make_bdd(tmp_path, ["/val_img/val/a.jpg /val_label/final_val/a.png 1 1 1 1"])
    (sample,) = read_dataset("bdd100k", tmp_path, "test")
    assert sample.name == "/val_img/val/a.jpg" and sample.image_path == tmp_path / "val_img/val/a.jpg"
    assert sample.label_path == tmp_path / "val_label/final_val/a.png" and sample.label_format == "binary255"
    assert sample.exist.tolist() == [1] and sample.size == (720, 1280)
    lanes = read_label_map(sample.label_path, sample.label_format)
    assert lanes.dtype == np.uint8 and int(lanes.sum()) == 400 and lanes[700, 100] == 1


@pytest.mark.parametrize(
    "bad, expected",
    [
        ("/val_img/val/a.jpg /val_label/final_val/zz.png 1 1 1 1", "test_gt_bdd.txt:1: label "),
        ("/val_img/val/zz.jpg /val_label/final_val/a.png 1 1 1 1", "test_gt_bdd.txt:1: image "),
        ("/val_img/val/a.jpg /val_label/final_val/a.png 1 x 1 1", "test_gt_bdd.txt:1: existence flags"),
        ("/val_img/val/a.jpg", "test_gt_bdd.txt:1: expected"),
    ],
)
def test_sad_bad_lines(tmp_path: Path, bad: str, expected: str) -> None:
    make_bdd(tmp_path, [bad, "/val_img/val/b.jpg /val_label/final_val/b.png 1 1 1 1"])
    with pytest.raises(DataError) as info:
        list(read_dataset("bdd100k", tmp_path, "test"))
    assert expected in str(info.value)
    policy = ErrorPolicy("skip")
    assert [s.name for s in read_dataset("bdd100k", tmp_path, "test", policy)] == ["/val_img/val/b.jpg"]
    assert len(policy.skipped) == 1


def test_bdd_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown BDD100K source"):
        read_dataset("bdd100k", tmp_path, "test", source="poly")
    with pytest.raises(LaneKDError, match="no BDD100K list"):
        read_dataset("bdd100k", tmp_path, "test")
    masks = tmp_path / "labels/lane/masks/val"
    masks.mkdir(parents=True)
    cv2.imwrite(str(masks / "x.png"), np.full((4, 4), 255, np.uint8))
    policy = ErrorPolicy("skip")
    assert list(read_dataset("bdd100k", tmp_path, "val", policy, source="lanemark")) == []
    assert "images/100k/val/x.jpg not found" in str(policy.skipped[0]).replace("\\", "/")
    (tmp_path / "images/100k/val").mkdir(parents=True)
    (tmp_path / "images/100k/val/x.jpg").write_bytes(b"")
    (sample,) = read_dataset("bdd100k", tmp_path, "val", source="lanemark")
    assert sample.name == "images/100k/val/x.jpg"
    assert read_label_map(sample.label_path, sample.label_format).sum() == 0


# ---------------------------------------------------------------- ApolloScape


def test_lut_matches_table() -> None:
    assert len(APOLLO_CLASSES) == 38 and APOLLO_ID_TO_TRAIN_ID.shape == (256,)
    assert (
        APOLLO_ID_TO_TRAIN_ID[0] == 0 and APOLLO_ID_TO_TRAIN_ID[200] == 1 and APOLLO_ID_TO_TRAIN_ID[219] == 15
    )
    assert (
        APOLLO_ID_TO_TRAIN_ID[250] == 35
        and APOLLO_ID_TO_TRAIN_ID[249] == 36
        and APOLLO_ID_TO_TRAIN_ID[255] == 36
    )
    assert APOLLO_ID_TO_TRAIN_ID[100] == 255  # not an ApolloScape id
    assert sorted(set(APOLLO_ID_TO_TRAIN_ID.tolist()) - {255}) == list(range(37))
    assert APOLLO_TRAIN_ID_TO_ID.tolist()[:3] == [0, 200, 204] and APOLLO_TRAIN_ID_TO_ID[36] == 249
    assert (APOLLO_ID_TO_TRAIN_ID[APOLLO_TRAIN_ID_TO_ID] == np.arange(37)).all()  # round trip
    assert len(APOLLO_CLASSES) - len(APOLLO_IGNORE_IN_EVAL) == 18  # 18 ids not ignoreInEval
    assert DATASETS["apolloscape"].num_classes == 37 and DATASETS["apolloscape"].crop_top == 1700


def test_real_labels(realdata: Path) -> None:
    root = realdata / "apolloscape" / "test_eval_data"
    by_folder = list(read_dataset("apolloscape", root, "gt_dir", check_images=False))
    by_list = list(read_dataset("apolloscape", root, str(root / "gt_list.csv"), check_images=False))
    assert len(by_folder) == len(by_list) == 6
    assert [s.label_path for s in by_folder] == [s.label_path for s in by_list]
    first = by_folder[0]
    assert first.label_path.name == "171206_025742296_Camera_5_bin.png"
    assert "Camera 1" in str(first.label_path)  # folder names with spaces
    assert first.name == "gt_dir/labels/Record 01/Camera 1/171206_025742296_Camera_5.jpg"
    assert first.num_slots == 0 and first.exist.shape == (0,) and first.size == (2710, 3384)
    ids = read_apollo_label_ids(first.label_path)
    assert ids.shape == (2710, 3384)
    # Ids listed for these files in SOURCES.md; 219 shares black with 0 in the palette.
    assert set(np.unique(ids).tolist()) == {0, 200, 201, 204, 214, 217, 219, 222, 224, 250, 255}
    train = read_label_map(first.label_path, first.label_format)
    assert set(np.unique(train).tolist()) == {0, 1, 2, 7, 12, 15, 18, 22, 24, 35, 36}


def palette_png(path: Path, indices: np.ndarray, palette: list[tuple[int, int, int]]) -> None:
    """Write an 8-bit palette PNG (cv2 cannot) with the given indices and palette."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    h, w = indices.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in indices.astype(np.uint8))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
    data += chunk(b"PLTE", bytes(np.array(palette, np.uint8).ravel())) + chunk(b"IDAT", zlib.compress(raw))
    path.write_bytes(data + chunk(b"IEND", b""))


def test_palette_indices_not_colours(tmp_path: Path) -> None:
    palette = [(0, 0, 0)] * 256
    palette[200] = (70, 130, 180)
    ids = np.array([[0, 219, 200], [255, 249, 0]], np.uint8)
    palette_png(tmp_path / "x_bin.png", ids, palette)
    np.testing.assert_array_equal(read_apollo_label_ids(tmp_path / "x_bin.png"), ids)
    np.testing.assert_array_equal(
        read_label_map(tmp_path / "x_bin.png", "apollo_ids"), [[0, 15, 1], [36, 36, 0]]
    )
    (tmp_path / "bad_bin.png").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match="bad_bin.png: label is not a PNG"):
        read_apollo_label_ids(tmp_path / "bad_bin.png")


def test_list_with_spaces(tmp_path: Path) -> None:
    image = "ColorImage_road02/ColorImage/Record001/Camera 5/170927_1_Camera_5.jpg"
    label = "Labels_road02/Label/Record001/Camera 5/170927_1_Camera_5_bin.png"
    for rel in (image, label):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "val.txt").write_text(f"/{image} /{label} 1 1 1 1\n{image} nothing here\n")
    with pytest.raises(DataError, match=r"val.txt:2: expected 'image label"):
        list(read_dataset("apolloscape", tmp_path, "val"))
    policy = ErrorPolicy("skip")
    (sample,) = read_dataset("apolloscape", tmp_path, "val", policy)
    assert sample.image_path == tmp_path / image and sample.label_path == tmp_path / label
    assert sample.name == f"/{image}" and len(policy.skipped) == 1
    # A folder split derives the image path from the label path.
    (folder_sample,) = read_dataset("apolloscape", tmp_path, "Labels_road02")
    assert folder_sample.image_path == tmp_path / image and folder_sample.name == image
    (tmp_path / image).unlink()
    with pytest.raises(DataError, match="170927_1_Camera_5.jpg not found"):
        list(read_dataset("apolloscape", tmp_path, "Labels_road02"))
