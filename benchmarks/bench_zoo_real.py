"""Benchmark: how the zoo's synthetic-trained weights transfer to genuine dashcam frames.

Scores every installed zoo entry (or ``--checkpoint`` files) on the genuine frames of the
developers' ``../shared/realdata`` (never trained on, never copied into the repository):

* CULane: the 15 frames of ``culane/list/train_gt.txt`` with their official ``.lines.txt``, read
  through ``lanekd prepare culane`` and scored with the official CULane metric (IoU 0.5, 30 px);
* TuSimple: the 6 frames of ``tusimple/label_data_0601.json``, predicted with ``lanekd predict
  --format tusimple`` and scored with the official TuSimple accuracy / FP / FN.

As a baseline from the same run, each entry is also scored on held-out synthetic scenes of its own
geometry (prepared in a temporary folder; TuSimple-geometry entries also with TuSimple accuracy,
and not on the CULane frames, whose four slots they lack). Skips (exit 0 with a message) without
``../shared``.

    python benchmarks/bench_zoo_real.py [--shared ../shared] [--checkpoint FILE ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _model(checkpoint: str | Path) -> tuple[Any, tuple[int, int], str]:
    """The checkpoint's model, its ``(H, W)`` input size and the dataset geometry it was trained on."""
    from lanekd.inference.checkpoint import load_checkpoint_model

    model, meta = load_checkpoint_model(checkpoint)
    size = tuple(meta["model_args"].get("input_size") or meta["data_attrs"]["size"])
    geometry = "tusimple" if meta["data_attrs"].get("dataset") == "tusimple" else "culane"
    return model, (int(size[0]), int(size[1])), geometry


def score_culane(model: Any, size: tuple[int, int], root: Path, work: Path) -> dict[str, Any]:
    """CULane F1 of ``model`` on the frames of ``root/list/train_gt.txt``."""
    from lanekd.data.prepare import prepare_dataset
    from lanekd.engine.validation import evaluate_model

    h5 = work / f"real-culane-{size[0]}x{size[1]}.h5"
    if not h5.is_file():
        prepare_dataset("culane", h5, root=root, split="train", size=size, quiet=True)
    res = evaluate_model(model, h5)
    return {k: res[k] for k in ("images", "tp", "fp", "fn", "precision", "recall", "f1")}


def score_tusimple(checkpoint: str | Path, root: Path, work: Path) -> dict[str, Any]:
    """TuSimple accuracy, FP and FN of ``checkpoint`` on the frames of ``label_data_0601.json``."""
    from lanekd.zoo.train import score_tusimple_frames

    out = work / f"tusimple-{Path(str(checkpoint)).stem}"
    return score_tusimple_frames(checkpoint, root / "label_data_0601.json", root, out)


def score_synthetic(checkpoint: str | Path, model: Any, size: tuple[int, int], geometry: str, work: Path,
                    n: int = 60) -> dict[str, Any]:
    """Baseline: CULane F1 on ``n`` held-out synthetic scenes of the model's geometry at its input
    size (TuSimple geometry: written in the TuSimple layout, also scored with TuSimple accuracy)."""
    from lanekd.data.prepare import prepare_dataset
    from lanekd.engine.validation import evaluate_model

    h5 = work / f"synthetic-{geometry}-test-{size[0]}x{size[1]}.h5"
    if geometry == "culane":
        if not h5.is_file():
            prepare_dataset("synthetic", h5, split="test", size=size, n=n, seed=999, quiet=True)
        res = evaluate_model(model, h5, per_category=False)
        return {k: res[k] for k in ("images", "precision", "recall", "f1")}
    from lanekd.data.synthetic import TUSIMPLE_LABEL_FILES, write_tusimple_layout
    from lanekd.zoo.train import score_tusimple_frames

    root = work / "synthetic-tusimple-test"
    if not (root / TUSIMPLE_LABEL_FILES["test"]).is_file():
        write_tusimple_layout(root, n, seed=999, split="test")
    if not h5.is_file():
        prepare_dataset("tusimple", h5, root=root, split="test", size=size, quiet=True)
    res = evaluate_model(model, h5, per_category=False)
    acc = score_tusimple_frames(checkpoint, root / TUSIMPLE_LABEL_FILES["test"], root,
                                work / f"synthetic-pred-{Path(str(checkpoint)).stem}")
    return {**{k: res[k] for k in ("images", "precision", "recall", "f1")},
            "tusimple_accuracy": acc["accuracy"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--checkpoint", action="append", default=None,
                    help="checkpoint files or zoo names (default: every installed zoo entry)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    real = args.shared / "realdata"
    if not (real / "culane").is_dir():
        print(f"skipped: {real} is absent (the genuine frames are only in the developers' checkout)")
        return 0
    import torch

    from lanekd.zoo import list_entries

    torch.set_num_threads(min(2, torch.get_num_threads()))
    names = args.checkpoint or [e["name"] for e in list_entries() if e["installed"]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in names:
            model, size, geometry = _model(name)
            # a six-slot TuSimple model has no CULane slots to score
            culane = score_culane(model, size, real / "culane", work) if geometry == "culane" else None
            rows.append({
                "checkpoint": name,
                "geometry": geometry,
                "synthetic": score_synthetic(name, model, size, geometry, work),
                "culane_real": culane,
                "tusimple_real": score_tusimple(name, real / "tusimple", work),
            })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        s, c, t = r["synthetic"], r["culane_real"], r["tusimple_real"]
        culane = (f"real CULane F1 {c['f1']:.3f} (P {c['precision']:.3f} R {c['recall']:.3f}, {c['images']} "
                  f"frames), ratio to synthetic {c['f1'] / s['f1'] if s['f1'] else float('nan'):.2f}; "
                  if c else "")
        print(f"{r['checkpoint']}: held-out synthetic ({r['geometry']}) F1 {s['f1']:.3f} "
              f"({s['images']} scenes); "
              f"{culane}real TuSimple accuracy {t.get('accuracy', float('nan')):.3f} "
              f"FP {t.get('fp', float('nan')):.3f} FN {t.get('fn', float('nan')):.3f} ({t['images']} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
