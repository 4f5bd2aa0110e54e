"""Checkpoints: atomic save, full resume state, and loading a model from a checkpoint alone.

A lanekd checkpoint is a dict saved with ``torch.save``::

    lanekd_checkpoint  format version (int)
    model              state dict of the bare model (no DDP/compile prefixes)
    model_args         model.build_args, so build_model(**model_args) rebuilds it
    data_attrs         size, crop_top, mean, std, num_slots, num_classes, dataset, source_size,
                       profile (what export/predict need to preprocess and decode)
    config             the resolved TrainConfig as a dict
    iteration          completed iterations
    optimizer, scheduler, scaler, hooks   resume state
    rng                torch / cuda / numpy / python generator states and the DataLoader
                       generator state (the batch order itself is a function of the iteration)

Everything in it is a tensor or a plain Python value, so it loads with ``weights_only=True``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lanekd.errors import LaneKDError
from lanekd.utils.io import atomic_path

CHECKPOINT_VERSION = 1


def rng_state(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random generator's state as plain values and tensors."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    random.setstate(_python_state_from_plain(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])


def _python_state_to_plain(st: tuple) -> list:
    version, internal, gauss = st
    return [version, list(internal), gauss]


def _python_state_from_plain(st: list) -> tuple:
    version, internal, gauss = st
    return (version, tuple(internal), gauss)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temporary file + rename): a crash never leaves a torn file."""
    state = {"lanekd_checkpoint": CHECKPOINT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; a missing file or anything that is not a lanekd checkpoint gives
    a one-line :class:`LaneKDError` naming the file."""
    p = Path(path)
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
