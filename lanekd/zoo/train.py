"""``lanekd zoo train NAME``: train a zoo entry from its recipe and write its weights and card.

The data takes the path a user's own data takes: the synthetic generator writes the scenes in the
recipe's on-disk layout (JPEG frames, ``.lines.txt``, label PNGs, lists), ``prepare`` reads them
back into HDF5 (training labels drawn ``line_width`` px wide, validation at the official width),
and the fast recipe trains on them. Validation on the held-out scenes picks the checkpoint.

Every step is resumable: the work folder keeps the written scenes, the prepared files and the
run's ``last.pt``; running the command again continues where it stopped.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lanekd.utils.io import atomic_path, write_json_atomic
from lanekd.zoo import RECIPES, ZooRecipe, card_path, sha256, weights_path


def _dr_tag(recipe: ZooRecipe) -> str:
    from lanekd.data.synthetic_domain import DomainRandomization

    randomize = DomainRandomization.parse(recipe.randomize)
    return f"-dr-{randomize.spec().replace(',', '+')}" if randomize else ""


def scenes_root(recipe: ZooRecipe, work: Path, split: str, n: int, seed: int) -> Path:
    """The folder the scenes of ``split`` are written to, in the recipe's layout."""
    return work / f"{recipe.layout}-{split}-n{n}-seed{seed}{_dr_tag(recipe)}"


def prepared_split(recipe: ZooRecipe, work: Path, split: str, n: int, seed: int, line_width: int | None,
                   workers: int, timings: dict[str, float] | None = None) -> Path:
    """Scenes of ``split`` written in the recipe's layout, then prepared (both steps skipped when
    already complete); ``timings`` gets the seconds of each step that ran (``"<split> scenes"``,
    ``"<split> prepare"``)."""
    from lanekd.data.h5 import read_attrs
    from lanekd.data.prepare import prepare_dataset
    from lanekd.data.synthetic import SYNTHETIC_LAYOUT_WRITERS, written_scenes
    from lanekd.data.synthetic_domain import DomainRandomization

    randomize = DomainRandomization.parse(recipe.randomize)
    dr = _dr_tag(recipe)  # the same tag names the scenes' folder and the prepared file
    root = scenes_root(recipe, work, split, n, seed)
    h, w = recipe.size
    lw = f"-lw{line_width}" if line_width else ""
    out = work / f"{split}-{h}x{w}{lw}-n{n}-seed{seed}{dr}.h5"  # n: a work folder may hold several sizes
    try:
        if bool(read_attrs(out).get("complete")):
            return out
    except OSError:
        pass
    timings = {} if timings is None else timings
    if written_scenes(recipe.layout, root, split) != n:
        t = time.perf_counter()
        SYNTHETIC_LAYOUT_WRITERS[recipe.layout](root, n, seed=seed, split=split, randomize=randomize)
        timings[f"{split} scenes"] = time.perf_counter() - t
    t = time.perf_counter()
    prepare_dataset(recipe.layout, out, root=root, split=split, size=recipe.size, workers=workers,
                    quiet=True, line_width=line_width)
    timings[f"{split} prepare"] = time.perf_counter() - t
    return out


#: Training options that a recipe may leave to the machine or the recipe's defaults; the card
#: records the values each stage actually ran with.
RESOLVED_OPTIONS = ("recipe", "optimizer", "lr", "warmup_iters", "schedule", "progressive_width",
                    "progressive_fraction", "exist_lr_scale", "amp", "channels_last", "device")


def resolved_options(run: Path) -> dict[str, Any]:
    """The :data:`RESOLVED_OPTIONS` of a finished stage, from the configuration it wrote."""
    from lanekd.engine.config import read_run_config

    cfg = read_run_config(run)
    return {k: cfg[k] for k in RESOLVED_OPTIONS if k in cfg}


def score_tusimple_frames(checkpoint: str | Path, label_file: Path, root: Path, out: Path) -> dict[str, Any]:
    """Official TuSimple accuracy, FP and FN of ``checkpoint`` on the frames of ``label_file``
    (``raw_file`` paths under ``root``), predicted with ``lanekd predict --format tusimple`` into
    ``out``."""
    from lanekd.data.formats.tusimple import read_tusimple
    from lanekd.evaluate.tusimple import evaluate_tusimple
    from lanekd.inference.backends import load_backend
    from lanekd.predict.run import predict

    frames = [str(s.image_path) for s in read_tusimple(root, str(label_file), check_images=False)]
    predict(load_backend(checkpoint), frames, str(out), fmt="tusimple", quiet=True, root=root)
    res = evaluate_tusimple(label_file, out / "predictions.json")
    return {"images": len(frames), **{k: res[k] for k in ("accuracy", "fp", "fn") if k in res}}


def train_entry(name: str, out_dir: str | Path | None = None, work_dir: str | Path | None = None,
                workers: int = 1, quiet: bool = False) -> dict[str, Any]:
    """Train zoo entry ``name`` and write ``NAME.pt`` and ``NAME.json`` into ``out_dir``
    (default: the package's weights folder).

    Returns:
        The card: recipe, command, seed, data, scores on the held-out scenes, SHA-256, software.
    """
    import torch

    from lanekd.engine import TrainConfig, train
    from lanekd.engine.checkpoint import model_only, save_checkpoint
    from lanekd.engine.validation import evaluate_model
    from lanekd.errors import ConfigError
    from lanekd.inference.checkpoint import load_checkpoint_model, read_checkpoint

    if name not in RECIPES:
        raise ConfigError(f"unknown zoo entry {name!r}; choose from {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    out = Path(out_dir) if out_dir is not None else weights_path(name).parent
    work = Path(work_dir) if work_dir is not None else out / f".work-{name}"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    # the seconds of every step, kept in the work folder: a step reused from an earlier (or
    # interrupted) invocation still counts in the card's wall time
    ledger = work / "timings.json"
    timings: dict[str, float] = json.loads(ledger.read_text()) if ledger.is_file() else {}
    train_h5 = prepared_split(recipe, work, "train", recipe.n_train, recipe.train_seed, recipe.line_width,
                              workers, timings)
    write_json_atomic(ledger, timings)
    val_h5 = prepared_split(recipe, work, "val", recipe.n_val, recipe.val_seed, None, workers, timings)
    write_json_atomic(ledger, timings)
    init: Path | None = None
    first_init = recipe.init  # a zoo name or a file; TrainConfig.init resolves and verifies it
    stages: list[dict[str, Any]] = []
    for stage in range(recipe.restarts + 1):
        run = work / f"run{stage}"
        done = run / "done.json"
        if not done.is_file():
            warm = {} if init is None else {"warmup_iters": recipe.restart_warmup}
            start = str(init) if init else first_init
            cfg = TrainConfig(
                model=recipe.model, methods=list(recipe.methods), data=str(train_h5), val=str(val_h5),
                iters=recipe.iters, batch_size=recipe.batch_size, seed=recipe.seed, workers=workers,
                val_every=max(1, recipe.iters // 8), ckpt_every=max(1, recipe.iters // 8), out=str(run),
                resume=(run / "last.pt").is_file(), quiet=quiet, init=start,
                **{**recipe.train_options, **warm},
            )
            write_json_atomic(done, train(cfg).to_dict())
        res = json.loads(done.read_text())
        # train_seconds sums the run's resumes; runs finished before it was recorded have elapsed_s
        timings[f"{run.name} train"] = float(res.get("train_seconds") or res.get("elapsed_s") or 0.0)
        write_json_atomic(ledger, timings)
        stages.append({"run": run.name, "iterations": recipe.iters,
                       "selected_iteration": res.get("best_iter"), "val_f1": res.get("best_value"),
                       "init": init.parent.name if init else first_init,
                       "options": resolved_options(run)})
        init = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    best = init
    t_score = time.perf_counter()
    ckpt = read_checkpoint(best)
    target = weights_path(name, out)
    save_checkpoint(target, model_only(ckpt))
    model, _ = load_checkpoint_model(target)
    scores = evaluate_model(model, val_h5)
    held_out = {
        "scenes": scores["images"], "metric": "CULane F1 (IoU 0.5, official)", "randomize": recipe.randomize,
        "f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
    }
    if recipe.layout == "tusimple":  # the benchmark's own metric beside the F1 that selected the checkpoint
        from lanekd.data.synthetic import TUSIMPLE_LABEL_FILES

        val_root = scenes_root(recipe, work, "val", recipe.n_val, recipe.val_seed)
        held_out["tusimple"] = score_tusimple_frames(target, val_root / TUSIMPLE_LABEL_FILES["val"], val_root,
                                                     work / "val-predictions")
    card = {
        "name": name,
        "model": recipe.model,
        "command": recipe.command(),
        "recipe": asdict(recipe),
        "iteration": int(ckpt.get("iteration") or 0),
        "stages": stages,
        "scores": {"held_out_synthetic": held_out},
        "train_seconds": sum(timings[f"{s['run']} train"] for s in stages),
        # every step of the entry, over all invocations of `zoo train` (`timings`), plus this scoring
        "wall_seconds": sum(timings.values()) + time.perf_counter() - t_score,
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "sha256": sha256(target),
        "size_bytes": target.stat().st_size,
        "software": {"torch": torch.__version__, "python": platform.python_version(),
                     "threads": torch.get_num_threads()},
    }
    with atomic_path(card_path(name, out)) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=2) + "\n")
    return card
