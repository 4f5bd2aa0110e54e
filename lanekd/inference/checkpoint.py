"""Reading a lanekd training checkpoint and rebuilding its model (the format is described and
written by :mod:`lanekd.engine.checkpoint`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lanekd.errors import LaneKDError

#: Format version written into every checkpoint (``lanekd_checkpoint``); newer files are refused.
CHECKPOINT_VERSION = 1


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; a missing file or anything that is not a lanekd checkpoint gives
    a one-line :class:`LaneKDError` naming the file. A zoo entry's name (``lanekd zoo list``)
    stands for its verified weights."""
    from lanekd.zoo import resolve

    p = resolve(path)
    if not p.is_file():
        raise LaneKDError(f"{p}: checkpoint not found")
    import zipfile

    if not zipfile.is_zipfile(p):  # torch.save writes a zip archive; anything else is not ours
        raise LaneKDError(f"{p}: not a lanekd checkpoint (not a PyTorch checkpoint file)")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, zip errors, truncated files: all mean "not a checkpoint"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LaneKDError(f"{p}: not a lanekd checkpoint ({first[:120]})") from None
    if not isinstance(ckpt, dict) or "lanekd_checkpoint" not in ckpt or "model_args" not in ckpt:
        raise LaneKDError(f"{p}: not a lanekd checkpoint (no lanekd metadata)")
    if ckpt["lanekd_checkpoint"] > CHECKPOINT_VERSION:
        raise LaneKDError(f"{p}: checkpoint format {ckpt['lanekd_checkpoint']} is newer than this lanekd")
    return ckpt


def load_checkpoint_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model stored in a checkpoint and load its weights.

    Returns:
        ``(model, meta)``: the model in eval mode on ``device``; ``meta`` holds ``model_args``,
        ``data_attrs``, ``config``, ``iteration`` and ``metrics`` (the validation record the
        checkpoint was saved with, if any).

    Raises:
        LaneKDError: the file is missing, is not a lanekd checkpoint, or its weights do not fit.
    """
    from lanekd.models import build_model

    ckpt = read_checkpoint(path)
    args = dict(ckpt["model_args"])
    name = args.pop("name")
    try:
        model = build_model(name, **args)
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise LaneKDError(
            f"{path}: cannot rebuild model {name!r} from the checkpoint ({str(e).splitlines()[0]})"
        ) from None
    model.to(device).eval()
    meta = {k: ckpt.get(k) for k in ("model_args", "data_attrs", "config", "iteration", "metrics")}
    return model, meta
