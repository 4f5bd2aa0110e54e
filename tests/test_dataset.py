"""LaneDataset and the SCNN training augmentation: shapes, normalisation, geometry goldens,
determinism from torch seeds, DataLoader workers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lanekd.data import LaneDataset, LaneH5, prepare_dataset
from lanekd.data.augment import AffineDraw, AugmentConfig, affine_matrix, augment_pair, draw_affine, normalize
from lanekd.data.h5 import DEFAULT_MEAN, DEFAULT_STD


@pytest.fixture(scope="module")
def h5file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "synth.h5"
    prepare_dataset("synthetic", path, split="train", size=(48, 128), n=6, seed=0)
    return path


def test_items_shapes_dtypes(h5file):
    ds = LaneDataset(h5file, train=True)
    assert len(ds) == 6 and ds.size == (48, 128) and ds.num_slots == 4
    x = ds[2]
    assert x["image"].shape == (3, 48, 128) and x["image"].dtype == torch.float32
    assert x["label"].shape == (48, 128) and x["label"].dtype == torch.int64
    assert x["exist"].shape == (4,) and x["exist"].dtype == torch.float32
    assert x["index"].dtype == torch.int64 and int(x["index"]) == 2
    assert set(torch.unique(x["label"]).tolist()) <= {0, 1, 2, 3, 4, 255}


def test_eval_mode_is_exact_normalisation(h5file):
    ds = LaneDataset(h5file, train=False)
    raw = LaneH5(h5file)
    for i in (0, 5):
        x = ds[i]
        img = raw.image(i).astype(np.float64) / 255.0
        want = (img - np.array(DEFAULT_MEAN)) / np.array(DEFAULT_STD)
        np.testing.assert_allclose(x["image"].numpy(), want.transpose(2, 0, 1), atol=1e-5)
        np.testing.assert_array_equal(x["label"].numpy(), raw.label(i))
        np.testing.assert_array_equal(x["exist"].numpy(), raw.exist[i])
    # deterministic without any seeding
    assert torch.equal(ds[3]["image"], ds[3]["image"])


def test_normalize_golden():
    img = np.zeros((1, 2, 3), np.uint8)
    img[0, 1] = (255, 0, 51)
    out = normalize(img, (0.5, 0.0, 0.2), (0.5, 1.0, 0.1))
    assert out.shape == (3, 1, 2)
    np.testing.assert_allclose(out[:, 0, 0].numpy(), [-1.0, 0.0, -2.0], atol=1e-6)
    np.testing.assert_allclose(out[:, 0, 1].numpy(), [1.0, 0.0, 0.0], atol=1e-6)


def test_affine_matrix_goldens():
    # pure resize 2x: pixel centre x -> (x + 0.5) * 2 - 0.5
    m = affine_matrix((10, 20), AffineDraw(40, 20, 0.0, 0, 0))
    np.testing.assert_allclose(m, [[2, 0, 0.5], [0, 2, 0.5]])
    # pure rotation keeps the centre fixed and turns (positive = counter-clockwise, y down)
    m = affine_matrix((11, 21), AffineDraw(21, 11, 90.0, 0, 0))
    centre = np.array([10.0, 5.0, 1.0])
    np.testing.assert_allclose(m @ centre, [10, 5], atol=1e-9)
    right = np.array([12.0, 5.0, 1.0])  # 2 px right of centre -> 2 px up
    np.testing.assert_allclose(m @ right, [10, 3], atol=1e-9)
    # shift = crop offset
    m = affine_matrix((10, 20), AffineDraw(20, 10, 0.0, -3, 2))
    np.testing.assert_allclose(m, [[1, 0, -3], [0, 1, 2]])


def test_draw_ranges_follow_scnn_recipe():
    cfg = AugmentConfig()
    torch.manual_seed(0)
    draws = [draw_affine((288, 800), cfg) for _ in range(400)]
    ws = [d.scaled_w for d in draws]
    hs = [d.scaled_h for d in draws]
    angles = [d.angle_deg for d in draws]
    assert 760 <= min(ws) and max(ws) <= 842 and max(ws) - min(ws) > 70
    assert 274 <= min(hs) and max(hs) <= 304 and max(hs) - min(hs) > 25
    assert -1 <= min(angles) < -0.9 and 0.9 < max(angles) <= 1
    for d in draws:  # crop stays inside a larger image, pads a smaller one
        assert min(0, 800 - d.scaled_w) <= d.shift_x <= max(0, 800 - d.scaled_w)
        assert min(0, 288 - d.scaled_h) <= d.shift_y <= max(0, 288 - d.scaled_h)


def test_identity_augment_is_exact():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    lab = rng.integers(0, 5, (20, 30), dtype=np.uint8)
    cfg = AugmentConfig(scale_w=(1, 1), scale_h=(1, 1), rotate_deg=0)
    a, b = augment_pair(img, lab, cfg)
    np.testing.assert_array_equal(a, img)
    np.testing.assert_array_equal(b, lab)


def test_padding_values_and_nearest_labels():
    img = np.full((20, 40, 3), 200, np.uint8)
    lab = np.zeros((20, 40), np.uint8)
    lab[:, ::2] = 3  # stripes: any interpolation but nearest would create other values
    cfg = AugmentConfig(scale_w=(0.5, 0.5), scale_h=(1, 1), rotate_deg=1.0, pad_label=255)
    torch.manual_seed(1)
    a, b = augment_pair(img, lab, cfg, mean=DEFAULT_MEAN)
    assert set(np.unique(b)) <= {0, 3, 255}
    assert (b == 255).sum() >= 19 * 20  # half the width is padding
    pad_cols = np.flatnonzero((b == 255).all(axis=0))
    assert len(pad_cols) > 0
    want = [round(m * 255) for m in DEFAULT_MEAN]
    np.testing.assert_array_equal(a[10, pad_cols[0]], want)  # mean colour = 0 after normalising
    z = normalize(a, DEFAULT_MEAN, DEFAULT_STD)[:, 10, pad_cols[0]]
    assert z.abs().max() < 1 / 255 / min(DEFAULT_STD)
    # official default: padded label pixels are background
    torch.manual_seed(1)
    _, b0 = augment_pair(img, lab, AugmentConfig(scale_w=(0.5, 0.5), scale_h=(1, 1)))
    assert 255 not in b0


def test_lane_geometry_survives_augment():
    # a vertical lane at x = 40 of an 80-wide frame stays near the centre after +-5% scale, 1 degree
    lab = np.zeros((40, 80), np.uint8)
    lab[:, 38:43] = 1
    torch.manual_seed(0)
    for _ in range(10):
        _, b = augment_pair(np.zeros((40, 80, 3), np.uint8), lab, AugmentConfig())
        cols = np.flatnonzero((b == 1).any(axis=0))
        assert cols.size and 32 <= cols.min() and cols.max() <= 48
        assert math.isclose((b == 1).sum(), 5 * 40, rel_tol=0.25)


def test_augmentation_deterministic_from_torch_seed(h5file):
    ds = LaneDataset(h5file, train=True)
    torch.manual_seed(0)
    np.random.seed(1)
    a = ds[1]
    torch.manual_seed(0)
    np.random.seed(2)  # numpy's global state must not matter
    b = ds[1]
    torch.manual_seed(5)
    c = ds[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])
    # train mode differs from eval mode
    assert not torch.equal(a["image"], LaneDataset(h5file, train=False)[1]["image"])


def _batches(ds, workers: int, seed: int, shuffle: bool = True) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator()
    g.manual_seed(seed)
    loader = DataLoader(ds, batch_size=2, shuffle=shuffle, num_workers=workers, generator=g)
    return list(loader)


def test_dataloader_two_workers(h5file):
    ev = LaneDataset(h5file, train=False)
    b0 = _batches(ev, 0, seed=0, shuffle=False)
    b2 = _batches(ev, 2, seed=0, shuffle=False)
    assert len(b2) == 3
    for x, y in zip(b0, b2, strict=True):
        for k in ("image", "label", "exist", "index"):
            assert torch.equal(x[k], y[k]), k
    tr = LaneDataset(h5file, train=True)
    r1 = _batches(tr, 2, seed=7)
    r2 = _batches(tr, 2, seed=7)
    assert [b["index"].tolist() for b in r1] == [b["index"].tolist() for b in r2]
    for x, y in zip(r1, r2, strict=True):  # same generator seed -> same augmented stream
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])
    r3 = _batches(tr, 2, seed=8)
    assert any(not torch.equal(x["image"], y["image"]) for x, y in zip(r1, r3, strict=True))


def test_config_validation(h5file):
    with pytest.raises(ValueError):
        AugmentConfig(scale_w=(1.1, 1.0))
    with pytest.raises(ValueError):
        AugmentConfig(rotate_deg=-1)
    with pytest.raises(ValueError):
        AugmentConfig(pad_image="blue")
    ds = LaneDataset(h5file, train=False, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    x = ds[0]["image"]
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
