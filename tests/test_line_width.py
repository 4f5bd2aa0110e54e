"""``prepare --line-width``: wider training labels, recorded in the attributes; scoring unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lanekd.data import LaneH5, prepare_dataset
from lanekd.data.cache import ensure_synthetic, synthetic_cache_path, wide_line_width
from lanekd.errors import ConfigError
from tests.engine_data import tiny_samples


def _prep(path: Path, line_width: int | None) -> Path:
    prepare_dataset("culane", path, size=(96, 256), samples=tiny_samples(3, 0), quiet=True,
                    line_width=line_width)
    return path


def test_line_width_widens_labels_and_is_recorded(tmp_path: Path) -> None:
    thin = LaneH5(_prep(tmp_path / "thin.h5", None))
    wide = LaneH5(_prep(tmp_path / "wide.h5", 6))
    assert thin.attrs["line_width"] == 3  # 16 px at 1640x590 scaled to 256x96
    assert wide.attrs["line_width"] == 6
    for i in range(3):
        t, w = thin[i], wide[i]
        lt, lw = np.asarray(t["label"]), np.asarray(w["label"])
        assert ((lt > 0) & (lt < 255)).sum() * 1.3 < ((lw > 0) & (lw < 255)).sum()
        np.testing.assert_array_equal(np.asarray(t["image"]), np.asarray(w["image"]))
        # ground-truth polylines (what evaluation scores) do not depend on the training width
        for a, b in zip(t["lanes"], w["lanes"], strict=True):
            np.testing.assert_array_equal(a, b)


def test_line_width_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line width"):
        _prep(tmp_path / "x.h5", 0)
    assert not (tmp_path / "x.h5").exists()


def test_wide_line_width_and_cache_key(tmp_path: Path) -> None:
    assert [wide_line_width(s) for s in ((96, 256), (144, 400), (288, 800))] == [6, 10, 20]
    a = synthetic_cache_path("val", 3, (36, 100), 0, tmp_path)
    b = synthetic_cache_path("val", 3, (36, 100), 0, tmp_path, line_width=5)
    assert a != b
    p = ensure_synthetic("val", 3, size=(36, 100), cache_dir=tmp_path, workers=1, line_width=5)
    assert p == b and LaneH5(p).attrs["line_width"] == 5
