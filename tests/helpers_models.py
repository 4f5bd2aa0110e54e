"""Test helpers: tiny checkpoints of real lanekd models (no training needed)."""

from __future__ import annotations

from pathlib import Path

import torch

SMALL = (64, 160)  # divisible by 16 so every existence branch is well defined


def make_checkpoint(path: Path, name: str = "enet-sad", size: tuple[int, int] = SMALL, seed: int = 0) -> Path:
    """Save a lanekd checkpoint of a randomly initialised model whose lanes all "exist".

    Random weights give near-uniform class probabilities (~0.2), under the decoder's 0.3 point
    threshold: tests that need lanes decode with ``threshold=0.1`` (``--threshold 0.1``).
    """
    from lanekd.engine.checkpoint import save_checkpoint
    from lanekd.models import build_model

    torch.manual_seed(seed)
    model = build_model(name, input_size=size)
    with torch.no_grad():
        model.exist.fc2.bias += 5.0  # existence logits >> 0: every slot is decoded
    data_attrs = {"size": list(size), "source_size": [590, 1640], "crop_top": 0, "num_slots": 4,
                  "num_classes": 5, "dataset": "synthetic", "profile": "culane",
                  "mean": [0.3598, 0.3653, 0.3662], "std": [0.2573, 0.2663, 0.2756]}
    save_checkpoint(path, {"model": model.state_dict(), "model_args": model.build_args,
                           "data_attrs": data_attrs, "iteration": 0})
    return path
