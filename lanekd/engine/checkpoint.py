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

# reading a checkpoint is the inference layer's (export and predict need it without the engine)
from lanekd.inference.checkpoint import (  # noqa: F401  (re-exported by lanekd.engine)
    CHECKPOINT_VERSION,
    load_checkpoint_model,
    read_checkpoint,
)
from lanekd.utils.io import atomic_path


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


#: What a model-only checkpoint keeps (a finished demo run, a zoo entry): enough to rebuild,
#: decode, score and distil from the model, without the resume state.
MODEL_ONLY_KEYS = ("model", "model_args", "data_attrs", "config", "iteration", "metrics")


def model_only(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The :data:`MODEL_ONLY_KEYS` entries of a checkpoint dict (for :func:`save_checkpoint`)."""
    return {k: ckpt[k] for k in MODEL_ONLY_KEYS if k in ckpt}


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temporary file + rename): a crash never leaves a torn file."""
    state = {"lanekd_checkpoint": CHECKPOINT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_init_weights(model: torch.nn.Module, source: str | Path) -> dict[str, list[str]]:
    """Initialise ``model`` from the weights of checkpoint (or zoo entry) ``source`` before training.

    Every tensor whose name and shape match is copied; the others keep their fresh initialisation,
    e.g. the existence head's fully connected layer of a model built for another input size, or
    the first convolution of a label-input teacher. At least one tensor must match.

    Returns:
        ``{"loaded": [...], "skipped": [...]}``: the parameter and buffer names of each kind.

    Raises:
        LaneKDError: ``source`` is not a lanekd checkpoint, holds another architecture, or none of
            its tensors fit ``model``.
    """
    from lanekd.errors import LaneKDError

    ckpt = read_checkpoint(source)
    theirs = ckpt["model_args"].get("name")
    ours = getattr(model, "build_args", {}).get("name", theirs)
    if theirs != ours:  # same-named heads of another architecture would load silently
        raise LaneKDError(f"{source}: holds a {theirs} network, this run trains a {ours} (--init)")
    state, own = ckpt["model"], model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not fit:
        raise LaneKDError(f"{source}: no weight of the checkpoint fits this model (--init)")
    model.load_state_dict(fit, strict=False)
    return {"loaded": sorted(fit), "skipped": sorted(k for k in own if k not in fit)}
