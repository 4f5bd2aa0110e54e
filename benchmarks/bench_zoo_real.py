"""Benchmark: how the zoo's synthetic-trained weights transfer to genuine dashcam frames.

Scores every installed zoo entry (or ``--checkpoint`` files) on the genuine frames of the
developers' ``../shared/realdata`` (never trained on, never copied into the repository):

* CULane: the 15 frames of ``culane/list/train_gt.txt`` with their official ``.lines.txt``, read
  through ``lanekd prepare culane`` and scored with the official CULane metric (IoU 0.5, 30 px);
* TuSimple: the 6 frames of ``tusimple/label_data_0601.json``, predicted with ``lanekd predict
  --format tusimple`` and scored with the official TuSimple accuracy / FP / FN.

As a baseline from the same run, each entry is also scored on held-out synthetic scenes of its own
geometry (prepared in a temporary folder). Skips (exit 0 with a message) without ``../shared``.

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


def _model(checkpoint: str | Path) -> tuple[Any, tuple[int, int]]:
    """The checkpoint's model and its ``(H, W)`` input size."""
    from lanekd.inference.checkpoint import load_checkpoint_model

    model, meta = load_checkpoint_model(checkpoint)
    size = tuple(meta["model_args"].get("input_size") or meta["data_attrs"]["size"])
    return model, (int(size[0]), int(size[1]))


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
    from lanekd.evaluate.tusimple import evaluate_tusimple
    from lanekd.inference.backends import load_backend
    from lanekd.predict.run import predict

    gt = root / "label_data_0601.json"
    lines = [line for line in gt.read_text().splitlines() if line.strip()]
    frames = [str(root / json.loads(line)["raw_file"]) for line in lines]
    out = work / f"tusimple-{Path(str(checkpoint)).stem}"
    predict(load_backend(checkpoint), frames, str(out), fmt="tusimple", quiet=True, root=root)
    res = evaluate_tusimple(gt, out / "predictions.json")
    return {"images": len(frames), **{k: res[k] for k in ("accuracy", "fp", "fn") if k in res}}


def score_synthetic(model: Any, size: tuple[int, int], work: Path, n: int = 60) -> dict[str, Any]:
    """Baseline: CULane F1 on ``n`` held-out synthetic scenes at the model's input size."""
    from lanekd.data.prepare import prepare_dataset
    from lanekd.engine.validation import evaluate_model

    h5 = work / f"synthetic-test-{size[0]}x{size[1]}.h5"
    if not h5.is_file():
        prepare_dataset("synthetic", h5, split="test", size=size, n=n, seed=999, quiet=True)
    res = evaluate_model(model, h5, per_category=False)
    return {k: res[k] for k in ("images", "precision", "recall", "f1")}


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
            model, size = _model(name)
            rows.append({
                "checkpoint": name,
                "synthetic": score_synthetic(model, size, work),
                "culane_real": score_culane(model, size, real / "culane", work),
                "tusimple_real": score_tusimple(name, real / "tusimple", work),
            })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        s, c, t = r["synthetic"], r["culane_real"], r["tusimple_real"]
        print(f"{r['checkpoint']}: held-out synthetic F1 {s['f1']:.3f} ({s['images']} scenes); "
              f"real CULane F1 {c['f1']:.3f} (P {c['precision']:.3f} R {c['recall']:.3f}, {c['images']} "
              f"frames), ratio to synthetic {c['f1'] / s['f1'] if s['f1'] else float('nan'):.2f}; "
              f"real TuSimple accuracy {t.get('accuracy', float('nan')):.3f} "
              f"FP {t.get('fp', float('nan')):.3f} FN {t.get('fn', float('nan')):.3f} ({t['images']} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
