"""LLAMAS reader. No real LLAMAS label exists in ../shared, so a generator writes label JSONs in the
documented format (unsupervised_llamas label JSON) with hand-computed ground-truth curves
(docs/datasets.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lanekd.data.formats import DATASETS, ErrorPolicy, read_dataset
from lanekd.data.formats.llamas import clean_llamas_lanes, llamas_lanes
from lanekd.errors import DataError, LaneKDError


def marker(sx: int, sy: int, ex: int, ey: int, z0: float, z1: float) -> dict:
    """A marker as LLAMAS writes it (numbers as strings are allowed: the reader casts)."""
    return {
        "lane_marker_id": f"m{sx}_{sy}",
        "pixel_start": {"x": str(sx), "y": sy},
        "pixel_end": {"x": ex, "y": ey},
        "world_start": {"x": 0.0, "y": 1.5, "z": z0},
        "world_end": {"x": 0.0, "y": 1.5, "z": z1},
    }


def label() -> dict:
    """Lanes built so that each curve is a straight line with a closed form x(y).

    l0: two markers on x = 1100 - y; the nearest one is extended to the bottom row 716.
    l1: spans only 10 rows of pixel_start.y -> dropped by the cleaning (< 20 px).
    l2: x = 800 - y; renumbered to l1 once the short l1 is gone.
    r0: x = y + 200.
    r3: x = y + 620 near the right border: the extension hits the image side x = 1276 at row 656;
        renumbered to r1.
    r5: a single marker -> dropped (< 2 markers).
    """
    return {
        "image_name": "rec/1419283521_0744236000",
        "projection_matrix": [[1000.0, 0, 638.0], [0, 1000.0, 360.0], [0, 0, 1]],
        "lanes": [
            {
                "lane_id": "l0",
                "markers": [marker(400, 700, 450, 650, 5, 10), marker(500, 600, 550, 550, 15, 20)],
            },
            {"lane_id": "l1", "markers": [marker(10, 700, 20, 695, 5, 6), marker(30, 690, 40, 685, 7, 8)]},
            {
                "lane_id": "l2",
                "markers": [marker(100, 700, 150, 650, 5, 10), marker(200, 600, 250, 550, 15, 20)],
            },
            {
                "lane_id": "r0",
                "markers": [marker(900, 700, 850, 650, 5, 10), marker(800, 600, 750, 550, 15, 20)],
            },
            {
                "lane_id": "r3",
                "markers": [marker(1270, 650, 1220, 600, 5, 10), marker(1170, 550, 1120, 500, 15, 20)],
            },
            {"lane_id": "r5", "markers": [marker(700, 500, 690, 450, 30, 40)]},
        ],
    }


def make_llamas(root: Path, labels: dict[str, str], split: str = "valid", images: bool = True) -> Path:
    """``labels``: ``<recording>/<stem>`` -> JSON text; writes labels and (dummy) colour images."""
    for key, text in labels.items():
        path = root / "labels" / split / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if images:
            img = root / "color_images" / split / f"{key}_color_rect.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            img.write_bytes(b"")
    return root


def test_curves_hand_computed() -> None:
    lanes = llamas_lanes(label())
    assert set(lanes) == {"l1", "l0", "r0", "r1"}
    rows = np.arange(716, 549, -1)
    np.testing.assert_allclose(lanes["l0"], np.stack([1100 - rows, rows], 1))
    np.testing.assert_allclose(lanes["l1"], np.stack([800 - rows, rows], 1))
    np.testing.assert_allclose(lanes["r0"], np.stack([rows + 200, rows], 1))
    side = np.arange(656, 499, -1)
    np.testing.assert_allclose(lanes["r1"], np.stack([side + 620, side], 1))


def test_cleaning_renumbers() -> None:
    ids = [lane["lane_id"] for lane in clean_llamas_lanes(label())]
    assert ids == ["l0", "l1", "r0", "r1"]  # l1 and r5 dropped; l2 -> l1, r3 -> r1


def test_reader(tmp_path: Path) -> None:
    make_llamas(tmp_path, {"rec/1419283521_0744236000": json.dumps(label())})
    (sample,) = read_dataset("llamas", tmp_path, "val")
    assert sample.name == "rec/1419283521_0744236000.json"  # the benchmark's evaluation key
    assert sample.image_path == tmp_path / "color_images/valid/rec/1419283521_0744236000_color_rect.png"
    assert sample.size == (717, 1276) and sample.slots == [0, 1, 2, 3]
    assert sample.exist.tolist() == [1, 1, 1, 1]
    assert sample.lanes[1][0].tolist() == [384, 716]  # l0 extended to the bottom row
    assert DATASETS["llamas"].crop_top == 333


def test_missing_lane_and_grey_images(tmp_path: Path) -> None:
    doc = label()
    doc["lanes"] = [lane for lane in doc["lanes"] if lane["lane_id"] != "r0"]
    make_llamas(tmp_path, {"rec/a": json.dumps(doc)}, images=False)
    grey = tmp_path / "grayscale_images/valid/rec/a_gray_rect.png"
    grey.parent.mkdir(parents=True)
    grey.write_bytes(b"")
    (sample,) = read_dataset("llamas", tmp_path, "valid", color=False)
    # r3 becomes r0 once r0 is gone; r1 absent.
    assert sample.slots == [0, 1, 2] and sample.exist.tolist() == [1, 1, 1, 0]
    assert sample.image_path == grey


def test_bad_labels_fail_and_skip(tmp_path: Path) -> None:
    good = json.dumps(label())
    make_llamas(tmp_path, {"rec/a": good, "rec/b": '{"lanes": [\n', "rec/c": '{"projection_matrix": []}'})
    make_llamas(tmp_path, {"rec/d": good}, images=False)
    with pytest.raises(DataError, match=r"b\.json:2: not valid JSON"):
        list(read_dataset("llamas", tmp_path, "valid"))
    policy = ErrorPolicy("skip")
    samples = list(read_dataset("llamas", tmp_path, "valid", policy))
    assert [s.name for s in samples] == ["rec/a.json"]
    messages = [str(e) for e in policy.skipped]
    assert len(messages) == 3
    assert "malformed LLAMAS label" in messages[1] and "c.json" in messages[1]
    assert "d_color_rect.png not found" in messages[2]


def test_splits(tmp_path: Path) -> None:
    with pytest.raises(LaneKDError, match="test labels are not public"):
        read_dataset("llamas", tmp_path, "test")
    with pytest.raises(LaneKDError, match="label folder not found"):
        read_dataset("llamas", tmp_path, "train")
