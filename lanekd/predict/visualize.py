"""Figures: SAD attention maps of a model on an image, and a prepared HDF5 sample."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lanekd.errors import LaneKDError
from lanekd.predict.draw import colorize_label, draw_lanes, heatmap, label_caption


def _blend(image: np.ndarray, overlay: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    return cv2.addWeighted(overlay, alpha, image, 1 - alpha, 0)


def attention_figure(checkpoint: str | Path, image: np.ndarray, device: str = "cpu",
                     blocks: tuple[str, ...] | None = None, aggregation: str | None = None) -> np.ndarray:
    """The SAD attention map of each block side by side, as in the SAD paper's figure.

    Args:
        checkpoint: a lanekd training checkpoint.
        image: ``(H, W, 3)`` uint8 RGB frame.
        blocks: feature names to show (default: the model's ``sad_blocks``, plus ``block1``).
        aggregation: channel aggregation of the attention map (default: the SAD loss's,
            ``DistillConfig().sad_aggregation``).

    Returns:
        ``(H', W', 3)`` uint8 RGB figure: the input, then one heat map per block.
    """
    import torch

    from lanekd.distill import DistillConfig, attention_map
    from lanekd.inference import crop_rows, load_checkpoint_model, meta_from_checkpoint, preprocess_batch

    model, ckpt_meta = load_checkpoint_model(checkpoint, device=device)
    meta = meta_from_checkpoint(ckpt_meta, checkpoint)
    names = blocks or tuple(dict.fromkeys(("block1", *model.sad_blocks)))
    x = torch.from_numpy(preprocess_batch([image], meta)).to(device)
    with torch.inference_mode():
        out = model.eval()(x, return_features=True)
    missing = [n for n in names if n not in out.features]
    if missing:
        raise LaneKDError(f"{checkpoint}: model has no feature(s) {', '.join(missing)}; "
                          f"available: {', '.join(sorted(out.features))}")
    h, w = meta.input_size
    # show panels at half the network size so four fit on a screen
    ph, pw = max(h // 2, 1), max(w // 2, 1)
    base = cv2.resize(image[crop_rows(image.shape[0], meta):], (pw, ph), interpolation=cv2.INTER_AREA)
    panels = [label_caption(base, "input")]
    for name in names:
        att = attention_map(out.features[name].float(),
                            aggregation=aggregation or DistillConfig().sad_aggregation)[0].cpu().numpy()
        panels.append(label_caption(_blend(base, heatmap(att, (ph, pw))), f"{name} attention"))
    return np.concatenate(panels, axis=1)


def data_figure(h5_path: str | Path, index: int) -> np.ndarray:
    """A prepared sample: the image, its label map, and its source polylines drawn at training size."""
    from lanekd.data import LaneH5

    data = LaneH5(h5_path)
    if not 0 <= index < len(data):
        raise LaneKDError(f"{h5_path}: index {index} out of range (file has {len(data)} samples)")
    item = data[index]
    attrs = data.attrs
    h, w = item["image"].shape[:2]
    src_h, src_w = attrs["source_size"]
    crop = int(attrs.get("crop_top", 0))
    sx, sy = w / src_w, h / (src_h - crop)
    slots = [np.zeros((0, 2))] * int(attrs["num_slots"])
    for k, lane in enumerate(item["lanes"]):
        slot = int(item["slots"][k]) if "slots" in item else k
        pts = np.asarray(lane, np.float64).reshape(-1, 2)
        slots[slot] = np.stack([pts[:, 0] * sx, (pts[:, 1] - crop) * sy], axis=1)
    exist = "".join(str(int(v)) for v in item["exist"])
    panels = [label_caption(item["image"], f"{item['name']} [{item.get('category') or '-'}]"),
              label_caption(_blend(item["image"], colorize_label(item["label"]), 0.7), "label map"),
              label_caption(draw_lanes(item["image"], slots, thickness=2), f"lanes, exist {exist}")]
    return np.concatenate(panels, axis=0)


def save_rgb(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB array as an image file (format from the extension), atomically."""
    from lanekd.utils.io import atomic_path

    path = Path(path)
    ext = path.suffix.lower() or ".png"
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise LaneKDError(f"{path}: cannot encode an image with extension {ext!r}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path
