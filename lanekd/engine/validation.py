"""Validation with the shared decoder and the benchmark's own scoring, so the logged number is
the benchmark's number.

Every prepared split is scored with the CULane metric (``lanekd.evaluate.culane.score_image``:
30-px lanes, IoU > 0.5, maximum-weight matching) on the source frame size of the data, pooled
over images, and per category. TuSimple-style data is also scored with the CULane F1 (on its
own frame size): the TuSimple accuracy needs the official JSON files and row sampling, which the
in-memory validation does not reproduce; use ``lanekd evaluate --benchmark tusimple`` for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from lanekd.engine.losses import onehot_label
from lanekd.inference.lanes import infer_lanes


def f1_counts(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    """Precision, recall and F1 from counts (0 when undefined, as the CULane tool prints)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": p, "recall": r, "f1": f1}


def evaluate_model(
    model: nn.Module,
    h5_path: str | Path,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    amp: str | None = None,
    label_input_classes: int = 0,
    max_images: int | None = None,
    channels_last: bool = False,
    profile: Any = None,
    per_category: bool = True,
) -> dict[str, Any]:
    """Score ``model`` on a prepared HDF5 split with the CULane metric.

    Also reports lane-pixel ``pixel_accuracy`` and ``pixel_iou`` (lane vs background at network
    resolution, ignore pixels excluded; the SAD paper's BDD100K protocol, per image then averaged):
    they move long before a student separates the lane slots that the F1 needs.

    Lanes are decoded by :func:`lanekd.inference.infer_lanes`, exactly as ``predict`` decodes
    them, with the file's decoder profile (the ``decode_profile`` attribute) unless ``profile``
    is given.

    Returns:
        ``{"metric": "culane_f1", "value": f1, "tp", "fp", "fn", "precision", "recall", "f1",
        "pixel_accuracy", "pixel_iou", "images", "categories": {name: {...}}}``.
    """
    from lanekd.data import LaneDataset, LaneH5
    from lanekd.data.h5 import data_attrs_from_h5
    from lanekd.decode import get_profile
    from lanekd.evaluate.bdd100k import score_masks
    from lanekd.evaluate.culane import score_image

    attrs = data_attrs_from_h5(h5_path)
    prof = get_profile(profile if profile is not None else attrs["profile"])  # once, not per batch
    source_size = tuple(int(v) for v in attrs.get("source_size", (590, 1640)))
    h5 = LaneH5(h5_path)
    ds = LaneDataset(h5_path, train=False)
    n = len(ds) if max_images is None else min(len(ds), max_images)
    loader = DataLoader(
        torch.utils.data.Subset(ds, range(n)), batch_size=batch_size, shuffle=False, num_workers=0
    )
    was_training = model.training
    model.eval()
    totals = np.zeros(3, dtype=np.int64)
    pixel: list[tuple[float, float]] = []
    cats: dict[str, np.ndarray] = {}
    try:
        for batch in loader:
            images = batch["image"].to(device)
            label = batch["label"].to(device)
            x = onehot_label(label, label_input_classes) if label_input_classes else images
            lanes, prob, _ = infer_lanes(model, x, prof, amp=amp, channels_last=channels_last)
            lane_px = (prob.argmax(dim=1) > 0).cpu().numpy()
            for gt_map, pred_map in zip(label.cpu().numpy(), lane_px, strict=True):
                valid = gt_map != 255
                pixel.append(score_masks((gt_map > 0) & valid, pred_map & valid))
            for idx, pred in zip(batch["index"].tolist(), lanes, strict=True):
                gt_lanes, _ = h5.lanes(idx)  # polylines only: no second image decode per sample
                gt = [np.asarray(g, dtype=np.float64) for g in gt_lanes if len(g) >= 2]
                pr = [np.asarray(p, dtype=np.float64) for p in pred if len(p) >= 2]
                counts = np.asarray(score_image(gt, pr, size=source_size), dtype=np.int64)
                totals += counts
                if per_category:
                    cat = str(h5.categories[idx] or "all")
                    cats.setdefault(cat, np.zeros(3, dtype=np.int64))
                    cats[cat] += counts
    finally:
        model.train(was_training)
        close = getattr(h5, "close", None)
        if callable(close):
            close()
    res = f1_counts(*totals.tolist())
    return {
        "metric": "culane_f1",
        "value": res["f1"],
        **res,
        "pixel_accuracy": float(np.mean([a for a, _ in pixel])) if pixel else 0.0,
        "pixel_iou": float(np.mean([i for _, i in pixel])) if pixel else 0.0,
        "images": n,
        "categories": {k: f1_counts(*v.tolist()) for k, v in sorted(cats.items())},
    }
