"""``lanekd demo``: the end-to-end main job on the built-in synthetic data.

Stages (each resumable: a finished stage is skipped, an interrupted training resumes from its
``last.pt``):

1. prepare synthetic train/val/test splits (``lanekd.data.ensure_synthetic``);
2. train an RGB teacher (ResNet-18) and LGAD's label-input teacher (ENet-SAD fed the one-hot
   label map, METHODS §5.3);
3. train the ENet-SAD student on the same budget (iterations, batch, seed) without
   distillation and with SAD, IntRA-KD and LGAD;
4. evaluate every model on the held-out test split with the CULane metric, per category;
5. write ``report.md`` with PNG figures drawn with OpenCV: the F1 table, training curves and the
   student's attention maps with and without SAD.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from lanekd.engine.config import TrainConfig
from lanekd.utils.io import atomic_path, write_json_atomic, write_text_atomic

STUDENT_RUNS = ("none", "sad", "intra-kd", "lgad")


@dataclass
class DemoConfig:
    """Demo options; ``quick`` selects the small budget."""

    out: str = "runs/demo"
    quick: bool = False
    device: str = "cpu"
    workers: int = 2
    seed: int = 0
    quiet: bool = False

    def budget(self) -> dict[str, Any]:
        """Sizes and iterations. Quick: 96x256 input, 100 steps of batch 4 per student, about 6 minutes
        on 2 CPU cores (a smoke test of every stage); full: 144x400, 6000 steps per student, for a GPU."""
        if self.quick:
            # 96x256 is the smallest size at which a perfect segmentation decodes to F1 ~1 (0.99
            # measured; 64x160 caps at 0.52: 2-px lanes fall under the 9x9 filter's 0.3 threshold).
            return {
                "size": (96, 256),
                "n_train": 160,
                "n_val": 24,
                "n_test": 54,
                "teacher_iters": 120,
                "student_iters": 100,
                "batch": 4,
                "val_every": 50,
                "quick": True,
            }
        # ENet-SAD from scratch needs thousands of iterations before it separates lane slots
        # (measured: none at 1200 iterations of 64x160); a GPU runs this in minutes, a CPU in hours.
        return {
            "size": (144, 400),
            "n_train": 2000,
            "n_val": 100,
            "n_test": 450,
            "teacher_iters": 3000,
            "student_iters": 6000,
            "batch": 8,
            "val_every": 500,
            "quick": False,
        }


def _log(cfg: DemoConfig, msg: str) -> None:
    if not cfg.quiet:
        print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _train_stage(cfg: DemoConfig, name: str, tcfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume, or skip when finished) one run."""
    from lanekd.engine.trainer import train

    out = Path(tcfg.out)
    done = out / "done.json"
    if done.is_file():
        _log(cfg, f"{name}: already trained ({out})")
        return json.loads(done.read_text())
    tcfg.resume = (out / "last.pt").is_file()
    _log(cfg, f"{name}: training {tcfg.iters} iterations -> {out}" + (" (resuming)" if tcfg.resume else ""))
    res = train(tcfg).to_dict()
    write_json_atomic(done, res)
    return res


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run every stage and return the results (also written to ``OUT/results.json``)."""
    from lanekd.data import ensure_synthetic

    t0 = time.perf_counter()
    b = cfg.budget()
    out = Path(cfg.out)
    runs = out / "runs"
    out.mkdir(parents=True, exist_ok=True)
    size = tuple(b["size"])
    _log(cfg, f"preparing synthetic data at {size[0]}x{size[1]}")
    data = {
        split: str(ensure_synthetic(split, b[f"n_{split}"], size=size, seed=cfg.seed))
        for split in ("train", "val", "test")
    }

    def tc(**kw: Any) -> TrainConfig:
        base = dict(
            data=data["train"],
            val=data["val"],
            batch_size=b["batch"],
            device=cfg.device,
            workers=cfg.workers,
            seed=cfg.seed,
            quiet=cfg.quiet,
            val_every=b["val_every"],
            ckpt_every=b["val_every"],
            log_every=10,
        )
        base.update(kw)
        return TrainConfig(**base)

    results: dict[str, Any] = {
        "budget": {k: list(v) if isinstance(v, tuple) else v for k, v in b.items()},
        "data": data,
        "runs": {},
    }
    results["runs"]["teacher"] = _train_stage(
        cfg, "teacher resnet18", tc(model="resnet18", iters=b["teacher_iters"], out=str(runs / "teacher"))
    )
    results["runs"]["label-teacher"] = _train_stage(
        cfg,
        "label-input teacher",
        tc(
            model="enet-sad", label_input=True, iters=b["teacher_iters"] // 2, out=str(runs / "label-teacher")
        ),
    )
    for m in STUDENT_RUNS:
        teacher = {"intra-kd": runs / "teacher" / "last.pt", "lgad": runs / "label-teacher" / "last.pt"}.get(
            m
        )
        results["runs"][m] = _train_stage(
            cfg,
            f"student {m}",
            tc(
                model="enet-sad",
                methods=[] if m == "none" else [m],
                teacher=str(teacher) if teacher else None,
                iters=b["student_iters"],
                out=str(runs / m),
            ),
        )

    _log(cfg, "evaluating on the held-out test split")
    scores = _evaluate_all(cfg, runs, data["test"])
    results["test"] = scores
    fig = out / "figures"
    fig.mkdir(exist_ok=True)
    _draw_f1_table(scores, fig / "f1_table.png")
    _draw_curves(runs, fig / "training_curves.png")
    _draw_attention(runs, data["test"], fig / "attention.png", cfg.device)
    results["elapsed_s"] = time.perf_counter() - t0
    report = out / "report.md"
    write_text_atomic(report, _report_md(results, b))
    results["report"] = str(report)
    write_json_atomic(out / "results.json", results)
    return results


def _evaluate_all(cfg: DemoConfig, runs: Path, test: str) -> dict[str, Any]:
    from lanekd.engine.checkpoint import load_checkpoint_model
    from lanekd.engine.validation import evaluate_model

    cache = runs.parent / "test_scores.json"
    scores: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {}
    for name in ("teacher", *STUDENT_RUNS):
        if name in scores:
            continue
        ckpt = runs / name / ("best.pt" if (runs / name / "best.pt").is_file() else "last.pt")
        model, meta = load_checkpoint_model(ckpt, device=cfg.device)
        scores[name] = {"checkpoint": str(ckpt), **evaluate_model(model, test, device=cfg.device)}
        write_json_atomic(cache, scores)
    return scores


# ------------------------------------------------------------------------------------------------
# figures (OpenCV only; matplotlib is not a dependency)

_COLORS = [(200, 90, 40), (40, 140, 230), (60, 170, 60), (40, 40, 210), (150, 60, 160), (30, 30, 30)]


def _write_png(path: Path, img: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise RuntimeError(f"cannot encode {path}")
        tmp.write_bytes(buf.tobytes())


def _text(img: np.ndarray, s: str, xy: tuple[int, int], scale: float = 0.45, color=(20, 20, 20)) -> None:
    cv2.putText(img, s, xy, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _draw_f1_table(scores: dict[str, Any], path: Path) -> None:
    """Bar chart of overall test F1 per model, value printed on each bar."""
    names = list(scores)
    w, h, left, bottom = 120 * len(names) + 80, 320, 50, 40
    img = np.full((h, w, 3), 255, np.uint8)
    _text(img, "CULane F1 on the synthetic test split", (left, 20), 0.55)
    top = 40
    for i, n in enumerate(names):
        f1 = float(scores[n]["f1"])
        x0 = left + 20 + i * 120
        y0 = int(h - bottom - f1 * (h - bottom - top))
        cv2.rectangle(img, (x0, y0), (x0 + 80, h - bottom), _COLORS[i % len(_COLORS)], -1)
        _text(img, f"{100 * f1:.1f}", (x0 + 18, y0 - 6))
        _text(img, n, (x0, h - bottom + 18))
    cv2.line(img, (left, h - bottom), (w - 10, h - bottom), (0, 0, 0), 1)
    _write_png(path, img)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def _plot(
    img: np.ndarray, box: tuple[int, int, int, int], series: dict[str, list[tuple[float, float]]], title: str
) -> None:
    x0, y0, x1, y1 = box
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
    _text(img, title, (x0, y0 - 8), 0.5)
    pts = [p for s in series.values() for p in s]
    if not pts:
        return
    xmax = max(p[0] for p in pts) or 1.0
    ymin, ymax = min(p[1] for p in pts), max(p[1] for p in pts)
    if ymax - ymin < 1e-9:
        ymax = ymin + 1.0
    _text(img, f"{ymax:.3g}", (x0 - 45, y0 + 10), 0.38)
    _text(img, f"{ymin:.3g}", (x0 - 45, y1), 0.38)
    _text(img, f"{xmax:.0f} it", (x1 - 40, y1 + 15), 0.38)
    for i, (name, s) in enumerate(series.items()):
        c = _COLORS[i % len(_COLORS)]
        poly = np.array(
            [[x0 + (x1 - x0) * px / xmax, y1 - (y1 - y0) * (py - ymin) / (ymax - ymin)] for px, py in s],
            np.int32,
        )
        if len(poly) > 1:
            cv2.polylines(img, [poly], False, c, 2, cv2.LINE_AA)
        for p in poly:
            cv2.circle(img, tuple(int(v) for v in p), 2, c, -1)
        _text(img, name, (x1 + 10, y0 + 15 + 18 * i), 0.45, c)


def _draw_curves(runs: Path, path: Path) -> None:
    """Training loss (total) and validation F1 of every student run."""
    img = np.full((330, 1000, 3), 255, np.uint8)
    loss: dict[str, list[tuple[float, float]]] = {}
    f1: dict[str, list[tuple[float, float]]] = {}
    for m in STUDENT_RUNS:
        recs = _read_metrics(runs / m / "metrics.jsonl")
        loss[m] = [(r["iter"], r["loss_total"]) for r in recs if r.get("type") == "train"]
        f1[m] = [(r["iter"], r["f1"]) for r in recs if r.get("type") == "val"]
    _plot(img, (60, 40, 400, 290), loss, "training loss (total)")
    _plot(img, (560, 40, 900, 290), f1, "validation F1")
    _write_png(path, img)


def _draw_attention(runs: Path, test: str, path: Path, device: str) -> None:
    """The student's block attention maps (Ψ of block2..block4) without and with SAD on one test image."""
    from lanekd.data import LaneDataset, LaneH5
    from lanekd.distill import DistillConfig, attention_map
    from lanekd.engine.checkpoint import load_checkpoint_model

    ds = LaneDataset(test, train=False)
    sample = ds[0]
    raw = LaneH5(test).image(0)  # (H, W, 3) RGB uint8
    h, w = raw.shape[:2]
    rows = []
    for m in ("none", "sad"):
        model, _ = load_checkpoint_model(runs / m / "last.pt", device=device)
        with torch.no_grad():
            out = model(sample["image"].unsqueeze(0).to(device), return_features=True)
        tiles = [cv2.cvtColor(raw, cv2.COLOR_RGB2BGR)]
        for blk in getattr(model, "sad_blocks", ("block2", "block3", "block4")):
            # the SAD loss's own aggregation (the paper's plain sum is a one-hot map on these nets)
            a = attention_map(out.features[blk].float(), size=(h, w),
                              aggregation=DistillConfig().sad_aggregation)[0].cpu().numpy()
            a = (255 * (a - a.min()) / max(float(a.max() - a.min()), 1e-12)).astype(np.uint8)
            tile = cv2.applyColorMap(a, cv2.COLORMAP_JET)
            _text(tile, blk, (4, 14), 0.45, (255, 255, 255))
            tiles.append(tile)
        row = np.concatenate(tiles, axis=1)
        label = np.full((22, row.shape[1], 3), 255, np.uint8)
        _text(label, "without SAD" if m == "none" else "with SAD", (4, 16), 0.5)
        rows += [label, row]
    _write_png(path, np.concatenate(rows, axis=0))


def _report_md(results: dict[str, Any], b: dict[str, Any]) -> str:
    test = results["test"]
    cats = sorted({c for s in test.values() for c in s.get("categories", {})})
    base = test["none"]["f1"]
    lines = [
        "# lanekd demo report",
        "",
        f"Synthetic CULane-like scenes at {b['size'][0]}x{b['size'][1]}: {b['n_train']} train, "
        f"{b['n_val']} val, "
        f"{b['n_test']} test images. Every student is ENet-SAD trained for {b['student_iters']} iterations "
        f"(batch {b['batch']}, SGD lr 0.01 poly 0.9, same seed); the teacher is ResNet-18 "
        f"({b['teacher_iters']} iterations) and LGAD's teacher an ENet-SAD fed the one-hot label map. "
        "Scores are the CULane metric (30-px lanes, IoU > 0.5) on the held-out test split, from each run's "
        "best validation checkpoint, plus lane-pixel accuracy and IoU (lane vs background, the SAD paper's "
        "BDD100K protocol), which move long before a student separates the lane slots that F1 needs.",
        "",
        "## Test scores (%)",
        "",
        "| model | F1 | precision | recall | F1 vs. no distillation | lane px acc | lane px IoU | "
        + " | ".join(cats) + " |",
        "|---|---|---|---|---|---|---|" + "---|" * len(cats),
    ]
    for name, s in test.items():
        delta = "" if name in ("none", "teacher") else f"{100 * (s['f1'] - base):+.1f}"
        per = " | ".join(
            f"{100 * s['categories'][c]['f1']:.1f}" if c in s.get("categories", {}) else "-" for c in cats
        )
        label = "ResNet-18 teacher" if name == "teacher" else f"ENet-SAD + {name}"
        lines.append(
            f"| {label} | {100 * s['f1']:.1f} | {100 * s['precision']:.1f} | {100 * s['recall']:.1f} | "
            f"{delta} | {100 * s.get('pixel_accuracy', 0.0):.1f} | {100 * s.get('pixel_iou', 0.0):.1f} | "
            f"{per} |"
        )
    gains = {m: test[m]["f1"] - base for m in ("sad", "intra-kd", "lgad")}
    best = max(gains, key=lambda k: gains[k])
    px_base = test["none"].get("pixel_iou", 0.0)
    px = ", ".join(f"{m} {100 * (test[m].get('pixel_iou', 0.0) - px_base):+.1f}" for m in gains)
    verdict = (
        f"The largest F1 change over the undistilled student is {best} ({100 * gains[best]:+.1f} points)."
        if gains[best] > 0
        else "No distillation method beat the undistilled student's F1 on this budget."
    ) + f" Lane-pixel IoU change over the undistilled student: {px}."
    lines += [
        "",
        verdict + " With test sets of this size a difference of a few points is within run-to-run noise. "
        + ("The quick budget is a smoke test of the pipeline, not a benchmark: ENet-SAD trained from scratch "
           "needs thousands of iterations before it assigns lanes to slots (the papers train 60K)."
           if b.get("quick") else ""),
        "",
        "![F1](figures/f1_table.png)",
        "",
        "## Training curves",
        "",
        "![curves](figures/training_curves.png)",
        "",
        "## Attention maps of the student (block2..block4), without and with SAD",
        "",
        "![attention](figures/attention.png)",
        "",
        f"Time of this invocation (finished stages are reused): {results.get('elapsed_s', 0):.0f} s. "
        "Raw numbers: `results.json`; every run's "
        "`metrics.jsonl`, `config.json` and checkpoints are under `runs/`.",
        "",
    ]
    return "\n".join(lines)
