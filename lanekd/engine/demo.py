"""``lanekd demo``: the end-to-end main job on the built-in synthetic data.

Stages (each resumable: a finished stage is skipped, an interrupted training resumes from its
``last.pt``):

1. prepare synthetic train/val/test splits (``lanekd.data.ensure_synthetic``);
2. train an RGB teacher (ResNet-18) and LGAD's label-input teacher (ENet-SAD fed the one-hot
   label map);
3. train the ENet-SAD student on the same budget (iterations, batch) without distillation and
   with SAD, IntRA-KD and LGAD, once per seed of the budget's ``seeds``;
4. evaluate every model on the held-out test split with the CULane metric, per category, from
   the checkpoint its validation selected (``best.pt``, see ``ValidationHook``);
5. write ``report.md`` with PNG figures drawn with OpenCV: test F1 bars, the learning curves of
   every student, predicted lanes beside the ground truth on test images, the attention maps with
   and without SAD, the wall time of each stage and a statement of what was learned.

A finished run keeps only its ``best.pt``, without the optimiser state (it is what the report
scores and what the students' teachers load); ``done.json`` marks it finished.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from lanekd.engine.config import TrainConfig, read_run_config
from lanekd.utils.io import atomic_path, write_json_atomic, write_text_atomic

STUDENT_RUNS = ("none", "sad", "intra-kd", "lgad")


@dataclass
class DemoConfig:
    """Demo options; ``quick`` selects the small budget, ``scratch`` the from-scratch (GPU) one,
    ``overrides`` replaces budget entries (tests and experiments; e.g. ``{"seeds": (0, 1)}``)."""

    out: str = "runs/demo"
    quick: bool = False
    scratch: bool = False
    device: str = "cpu"
    workers: int = 2
    seed: int = 0
    quiet: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def budget(self) -> dict[str, Any]:
        """Sizes, iterations and where the networks start.

        Quick (under 10 minutes on 2 CPU cores) and full (about an hour on one CPU core): every
        network starts from the zoo's ``enet-sad-synthetic`` weights (trained on other synthetic
        scenes only, shipped in the package) and is fine-tuned on the demo's own split; the RGB
        teacher is an ENet-SAD of the same start, fine-tuned longer. Quick: one seed, 60 student
        iterations. Full: 3 seeds, 200 student iterations, 800 training scenes, 300 test scenes.
        From scratch (``scratch``; for a GPU): a ResNet-18 teacher, 6000 iterations per student
        and 3 seeds, every network at full size: progressive resizing lets ENet-SAD without a
        teacher learn from scratch in minutes of CPU (F1 about 0.74 in 800 iterations at 144x400,
        docs/training.md), but the teacher methods cannot use it and do not learn in that budget.
        """
        fine_tune = {
            "size": (144, 400),
            "teacher_model": "enet-sad",
            "init": "enet-sad-synthetic",
            "lr": 0.05,  # fine-tuning: a tenth of the fast recipe's rate, no warm-up
            "warmup_iters": 0,
            "batch": 8,
        }
        if self.quick:
            return {
                **fine_tune,
                "n_train": 160,
                "n_val": 24,
                "n_test": 54,
                "teacher_iters": 100,
                "student_iters": 60,
                "val_every": 20,
                "seeds": (0,),  # student seeds (added to --seed)
                "quick": True,
            }
        if not self.scratch:
            return {
                **fine_tune,
                "n_train": 800,
                "n_val": 100,
                "n_test": 300,
                "teacher_iters": 300,
                "student_iters": 200,
                "val_every": 50,
                "seeds": (0, 1, 2),
                "quick": False,
            }
        # ENet-SAD from scratch needs thousands of iterations before it separates lane slots
        # (measured: none at 1200 iterations of 64x160); a GPU runs this in minutes, a CPU in hours.
        return {
            "size": (144, 400),
            "n_train": 2000,
            "n_val": 100,
            "n_test": 450,
            "teacher_model": "resnet18",
            "init": None,
            "lr": None,
            "warmup_iters": None,
            "teacher_iters": 3000,
            "student_iters": 6000,
            "batch": 8,
            "val_every": 500,
            "seeds": (0, 1, 2),
            "quick": False,
        }

    def resolved_budget(self) -> dict[str, Any]:
        """:meth:`budget` with ``overrides`` applied; ``seeds`` defaults to one seed."""
        b = {"seeds": (0,), **self.budget(), **self.overrides}
        b["seeds"] = tuple(int(s) for s in b["seeds"])
        return b


def _log(cfg: DemoConfig, msg: str) -> None:
    if not cfg.quiet:
        print(f"[demo] {msg}", file=sys.stderr, flush=True)


def student_run(method: str, seed: int) -> str:
    """Folder name (under ``OUT/runs``) of a student run; also its progress-line prefix."""
    return f"{method}-s{seed}"


def _slim_checkpoint(run: Path) -> None:
    """Keep one model-only checkpoint of a finished run: ``best.pt`` (``last.pt`` without
    validation), minus the resume state, which nothing needs once ``done.json`` exists."""
    best, last = run / "best.pt", run / "last.pt"
    keep = best if best.is_file() else last
    if not keep.is_file():
        return
    from lanekd.engine.checkpoint import model_only, read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(keep)
    save_checkpoint(best, model_only(ckpt))
    if last.is_file():
        last.unlink()


def _train_stage(cfg: DemoConfig, name: str, tcfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume, or skip when finished) one run; the result carries ``checkpoint`` (the
    slim ``best.pt``) and ``reused`` (finished by an earlier invocation)."""
    from lanekd.engine.build import train

    out = Path(tcfg.out)
    done = out / "done.json"
    if done.is_file():
        _log(cfg, f"{name}: already trained ({out})")
        return {**json.loads(done.read_text()), "reused": True}
    tcfg.resume = (out / "last.pt").is_file()
    _log(cfg, f"{name}: training {tcfg.iters} iterations -> {out}" + (" (resuming)" if tcfg.resume else ""))
    res = train(tcfg).to_dict()
    _slim_checkpoint(out)
    _log(cfg, f"{name}: done in {res['elapsed_s']:.0f} s; best.pt from iteration {res['best_iter']}")
    res["checkpoint"] = str(out / "best.pt")
    write_json_atomic(done, res)
    return {**res, "reused": False}


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run every stage and return the results (also written to ``OUT/results.json``)."""
    from lanekd.data import ensure_synthetic
    from lanekd.data.cache import wide_line_width

    t0 = time.perf_counter()
    b = cfg.resolved_budget()
    out = Path(cfg.out)
    runs = out / "runs"
    out.mkdir(parents=True, exist_ok=True)
    size = tuple(b["size"])
    stages: list[dict[str, Any]] = []
    _log(
        cfg,
        f"preparing synthetic data at {size[0]}x{size[1]} (cached under $LANEKD_CACHE or ~/.cache/lanekd)",
    )
    t = time.perf_counter()
    data = {
        split: str(ensure_synthetic(split, b[f"n_{split}"], size=size, seed=cfg.seed,
                                    line_width=wide_line_width(size)))
        for split in ("train", "val", "test")
    }
    stages.append({"stage": "synthetic data", "seconds": time.perf_counter() - t, "reused": False})
    _log(cfg, f"data ready in {stages[-1]['seconds']:.0f} s")

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
            init=b["init"],
            lr=b["lr"],
            warmup_iters=b["warmup_iters"],
            # every network at full size throughout: the teacher methods cannot train progressively,
            # and a comparison of methods needs one schedule
            progressive_width=0,
            # fine-tuning from the zoo weights: one rate for every layer, as the demo's figures were
            # measured (the recipe's slower existence branch is for training from scratch)
            exist_lr_scale=1.0 if b["init"] else None,
        )
        base.update(kw)
        return TrainConfig(**base)

    results: dict[str, Any] = {
        "budget": {k: list(v) if isinstance(v, tuple) else v for k, v in b.items()},
        "data": data,
        "runs": {},
    }

    def stage(key: str, label: str, tcfg: TrainConfig) -> None:
        res = _train_stage(cfg, label, tcfg)
        results["runs"][key] = res
        stages.append({"stage": f"train {label}", "seconds": res["elapsed_s"], "reused": res["reused"]})

    stage("teacher", "teacher",
          tc(model=b["teacher_model"], iters=b["teacher_iters"], out=str(runs / "teacher")))
    stage(
        "label-teacher",
        "label-teacher",
        tc(
            model="enet-sad", label_input=True, iters=b["teacher_iters"] // 2, out=str(runs / "label-teacher")
        ),
    )
    teachers = {"intra-kd": runs / "teacher" / "best.pt", "lgad": runs / "label-teacher" / "best.pt"}
    for m in STUDENT_RUNS:
        for s in b["seeds"]:
            name = student_run(m, cfg.seed + s)
            teacher = teachers.get(m)
            stage(
                name,
                name,
                tc(
                    model="enet-sad",
                    methods=[] if m == "none" else [m],
                    teacher=str(teacher) if teacher else None,
                    iters=b["student_iters"],
                    seed=cfg.seed + s,
                    out=str(runs / name),
                ),
            )

    _log(cfg, "evaluating on the held-out test split")
    models = ["teacher", *(student_run(m, cfg.seed + s) for m in STUDENT_RUNS for s in b["seeds"])]
    t = time.perf_counter()
    scores = _evaluate_all(cfg, runs, data["test"], models)
    stages.append(
        {"stage": f"test scores ({len(models)} models)", "seconds": time.perf_counter() - t, "reused": False}
    )
    results["test"] = scores
    results["summary"] = summarize(scores, b["seeds"], cfg.seed)
    t = time.perf_counter()
    fig = out / "figures"
    fig.mkdir(exist_ok=True)
    first = {m: runs / student_run(m, cfg.seed + b["seeds"][0]) for m in STUDENT_RUNS}
    draw_f1_bars(results["summary"], fig / "f1_bars.png")
    draw_curves(
        _curves(runs, b["seeds"], cfg.seed), fig / "training_curves.png", markers=_sad_start(first["sad"])
    )
    draw_overlays(
        {
            teacher_label(b): runs / "teacher" / "best.pt",
            **{m: first[m] / "best.pt" for m in STUDENT_RUNS},
        },
        data["test"],
        fig / "test_lanes.png",
        cfg.device,
    )
    _draw_attention(
        {m: first[m] / "best.pt" for m in ("none", "sad")}, data["test"], fig / "attention.png", cfg.device
    )
    stages.append({"stage": "figures", "seconds": time.perf_counter() - t, "reused": False})
    results["stages"] = stages
    results["recipe"] = _recipe(first["none"])
    results["elapsed_s"] = time.perf_counter() - t0
    results["footprint"] = {"out_mb": _size_mb(out), "data_mb": sum(_size_mb(Path(p)) for p in data.values())}
    report = out / "report.md"
    write_text_atomic(report, report_md(results, b))
    results["report"] = str(report)
    write_json_atomic(out / "results.json", results)
    return results


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def _recipe(run: Path) -> dict[str, Any]:
    """The schedule a student actually trained with (its ``config.json``)."""
    cfg = read_run_config(run)
    keys = (
        "recipe",
        "optimizer",
        "effective_lr",
        "momentum",
        "weight_decay",
        "schedule",
        "warmup_iters",
        "batch_size",
        "max_iter",
    )
    return {k: cfg.get(k) for k in keys}


def _sad_start(run: Path) -> dict[str, float]:
    """``{"SAD on": iteration}`` from the SAD run's config (its ``sad_start`` or 2/3 of training)."""
    from lanekd.distill.sad import resolve_start

    cfg = read_run_config(run)
    if not cfg:
        return {}
    start = (cfg.get("distill") or {}).get("sad_start")
    return {"SAD on": float(resolve_start(start, int(cfg.get("max_iter") or cfg.get("iters") or 0)))}


def _evaluate_all(cfg: DemoConfig, runs: Path, test: str, names: list[str]) -> dict[str, Any]:
    from lanekd.engine.checkpoint import load_checkpoint_model
    from lanekd.engine.validation import evaluate_model

    cache = runs.parent / "test_scores.json"
    scores: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {}
    for name in names:
        if name in scores:
            continue
        t = time.perf_counter()
        ckpt = runs / name / "best.pt"
        model, meta = load_checkpoint_model(ckpt, device=cfg.device)
        res = evaluate_model(model, test, device=cfg.device)
        scores[name] = {
            "checkpoint": str(ckpt),
            "iteration": meta["iteration"],
            "seconds": time.perf_counter() - t,
            **res,
        }
        write_json_atomic(cache, scores)
    return {n: scores[n] for n in names}


# ------------------------------------------------------------------------------------------------
# numbers: mean ± std over seeds and whether a difference exceeds the spread


def empty_category(c: dict[str, Any]) -> bool:
    """No ground-truth lane in the category (CULane's crossroad: only false positives count), so
    recall and F1 are undefined; the official tool prints -1 / -100 for it."""
    if "tp" in c and "fn" in c:
        return int(c["tp"]) + int(c["fn"]) == 0
    return float(c.get("f1", 0.0)) < 0


def _stats(values: list[float]) -> dict[str, Any]:
    a = np.asarray(values, np.float64)
    return {
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if len(a) > 1 else None,
        "n": len(a),
        "values": [float(v) for v in a],
    }


def summarize(scores: dict[str, Any], seeds: tuple[int, ...], base_seed: int = 0) -> dict[str, Any]:
    """Per model (the teacher and each student method): mean ± std over seeds of F1, precision,
    recall, lane-pixel IoU and per-category F1 (empty categories left out), the checkpoint
    iterations, and for each method its F1 difference to ``none`` with the verdict.

    The verdict: a difference *exceeds the spread* when ``|mean_m - mean_none|`` is larger than the
    larger of the two sample standard deviations over seeds; with one seed there is no spread and
    no verdict (``None``).
    """
    groups = {
        "teacher": ["teacher"],
        **{m: [student_run(m, base_seed + s) for s in seeds] for m in STUDENT_RUNS},
    }
    out: dict[str, Any] = {}
    for key, names in groups.items():
        rs = [scores[n] for n in names if n in scores]
        if not rs:
            continue
        cats: dict[str, list[float]] = {}
        fps: dict[str, list[int]] = {}
        for r in rs:
            for c, v in r.get("categories", {}).items():
                if empty_category(v):
                    fps.setdefault(c, []).append(int(v.get("fp", 0)))
                else:
                    cats.setdefault(c, []).append(float(v["f1"]))
        out[key] = {
            "runs": names,
            "iterations": [r.get("iteration") for r in rs],
            **{
                k: _stats([float(r.get(k, 0.0)) for r in rs])
                for k in ("f1", "precision", "recall", "pixel_iou")
            },
            "categories": {c: _stats(v) for c, v in sorted(cats.items())},
            "empty_categories": {c: v for c, v in sorted(fps.items()) if c not in cats},
        }
    if "none" in out:
        base = out["none"]["f1"]
        for m in STUDENT_RUNS[1:]:
            if m not in out:
                continue
            s = out[m]["f1"]
            delta = s["mean"] - base["mean"]
            stds = [v for v in (s["std"], base["std"]) if v is not None]
            spread = max(stds) if len(stds) == 2 else None
            out[m]["vs_none"] = {
                "delta": delta,
                "spread": spread,
                "exceeds": None if spread is None else bool(abs(delta) > spread),
            }
    return out


def _pm(s: dict[str, Any], scale: float = 100.0, digits: int = 1) -> str:
    if s["std"] is None:
        return f"{scale * s['mean']:.{digits}f}"
    return f"{scale * s['mean']:.{digits}f} ± {scale * s['std']:.{digits}f}"


def _verdict(v: dict[str, Any]) -> str:
    d = f"{100 * v['delta']:+.1f}"
    if v["spread"] is None:
        return f"{d} (1 seed: no spread)"
    return f"{d} ({'exceeds' if v['exceeds'] else 'inside'} spread {100 * v['spread']:.1f})"


_TEACHER_NAMES = {"resnet18": "ResNet-18", "enet-sad": "ENet-SAD"}


def teacher_label(b: dict[str, Any]) -> str:
    """How the report names the RGB teacher of budget ``b``."""
    name = str(b.get("teacher_model", "resnet18"))
    return f"{_TEACHER_NAMES.get(name, name)} teacher"


def _label(key: str, b: dict[str, Any]) -> str:
    if key == "teacher":
        return teacher_label(b)
    return "ENet-SAD, no distillation" if key == "none" else f"ENet-SAD + {key}"


def statement(summary: dict[str, Any], b: dict[str, Any] | None = None) -> list[str]:
    """Plain sentences on what was and was not learned, generated from the numbers."""
    if "none" not in summary:
        return []
    lines = []
    students = [m for m in STUDENT_RUNS if m in summary]
    f1 = {m: summary[m]["f1"]["mean"] for m in summary}
    learned = [m for m in students if f1[m] >= 0.5]
    if not learned:
        px = max(summary[m]["pixel_iou"]["mean"] for m in students)
        lines.append(
            "No student learned to detect lanes at this budget: test F1 at most "
            f"{max(f1[m] for m in students):.2f} "
            f"(lane-pixel IoU at most {px:.2f}, so the segmentation had only begun)."
        )
    else:
        parts = ", ".join(f"{m} {f1[m]:.2f}" for m in students)
        lines.append(
            f"The students learned to detect lanes: test F1 {parts}"
            + (
                ""
                if len(learned) == len(students)
                else f"; {', '.join(m for m in students if m not in learned)} stayed below 0.5"
            )
            + "."
        )
    if "teacher" in summary:
        rel = "above" if f1["teacher"] > f1["none"] else "not above"
        lines.append(
            f"The {teacher_label(b or {})} reaches F1 {f1['teacher']:.2f}, {rel} the plain student "
            f"({f1['none']:.2f})."
        )
    for m in students[1:]:
        v = summary[m].get("vs_none")
        if v is None:
            continue
        d = f"{v['delta']:+.2f}"
        if v["spread"] is None:
            lines.append(f"{m}'s difference to none ({d}) cannot be judged: one seed gives no spread.")
        elif v["exceeds"]:
            kind = "a gain" if v["delta"] > 0 else "a loss"
            lines.append(
                f"{m}'s difference to none ({d}) exceeds the seed spread ({v['spread']:.2f}): {kind}."
            )
        else:
            lines.append(
                f"{m}'s difference to none ({d}) is inside the seed spread ({v['spread']:.2f}): "
                "no measurable effect."
            )
    cats = summary["none"]["categories"]
    if cats and learned:
        lo = min(cats, key=lambda c: cats[c]["mean"])
        hi = max(cats, key=lambda c: cats[c]["mean"])
        lines.append(
            f"For the plain student the hardest category is {lo} (F1 {cats[lo]['mean']:.2f}), "
            f"the easiest {hi} ({cats[hi]['mean']:.2f})."
        )
        weak = [
            c
            for c in cats
            if all(summary[m]["categories"].get(c, {"mean": 0})["mean"] < 0.5 for m in students)
        ]
        if weak:
            lines.append(f"Not learned by any student (F1 below 0.5): {', '.join(weak)}.")
    return lines


def report_md(results: dict[str, Any], b: dict[str, Any]) -> str:
    """The report: setup, the F1 tables (mean ± std over seeds), verdicts, figures, stage times."""
    summ = results["summary"]
    seeds = b["seeds"]
    rec = results.get("recipe") or {}
    recipe = (
        (
            f"{rec.get('optimizer')} lr {rec.get('effective_lr')}, {rec.get('schedule')} schedule, "
            f"{rec.get('warmup_iters')} warm-up iterations (recipe `{rec.get('recipe')}`)"
        )
        if rec
        else "default recipe"
    )
    spread = "mean ± sample std over seeds" if len(seeds) > 1 else "one seed: no spread available"
    cats = sorted({c for s in summ.values() for c in (*s["categories"], *s["empty_categories"])})
    lines = [
        "# lanekd demo report",
        "",
        f"Synthetic CULane-like scenes at {b['size'][0]}x{b['size'][1]}: {b['n_train']} train, "
        f"{b['n_val']} val, "
        f"{b['n_test']} test images. Every student is ENet-SAD trained for {b['student_iters']} iterations "
        f"(batch {b['batch']}, {recipe}) with {len(seeds)} seed{'s' if len(seeds) > 1 else ''} "
        f"({', '.join(str(s) for s in seeds)}); the RGB teacher is "
        f"{teacher_label(b).removesuffix(' teacher')} ({b['teacher_iters']} iterations) and LGAD's "
        "teacher an ENet-SAD fed the one-hot label map"
        + (
            f"; every network starts from the zoo weights `{b['init']}` (trained on other synthetic scenes, "
            "`lanekd zoo list`) and is fine-tuned here"
            if b.get("init")
            else ", all trained from scratch"
        )
        + ". Scores are the CULane metric (30-px lanes, "
        "IoU > 0.5) on the held-out test split, from the checkpoint each run's validation selected: the "
        "best validation F1 among the checkpoints at which every distillation term of the run was on, ties "
        "to the later one (column *checkpoint*). Lane-pixel IoU is lane vs background at network resolution.",
        "",
        f"## Test scores (%, {spread})",
        "",
        "| model | seeds | checkpoint (iteration) | F1 | precision | recall | F1 vs. none | lane px IoU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, s in summ.items():
        its = ", ".join(str(i) for i in s["iterations"])
        vs = _verdict(s["vs_none"]) if "vs_none" in s else ""
        lines.append(
            f"| {_label(key, b)} | {s['f1']['n']} | {its} | {_pm(s['f1'])} | {_pm(s['precision'])} | "
            f"{_pm(s['recall'])} | {vs} | {_pm(s['pixel_iou'])} |"
        )
    lines += [
        "",
        "*F1 vs. none*: difference of the mean F1 to the undistilled student, in points; it *exceeds the "
        "spread* when its size is larger than the larger of the two standard deviations over seeds "
        "(with one seed no spread is available and nothing is claimed).",
        "",
        f"## Test F1 per category (%, {spread})",
        "",
        "| model | " + " | ".join(cats) + " |",
        "|---|" + "---|" * len(cats),
    ]
    empty_seen: dict[str, dict[str, list[int]]] = {}
    for key, s in summ.items():
        cells = []
        for c in cats:
            if c in s["categories"]:
                cells.append(_pm(s["categories"][c]))
            elif c in s["empty_categories"]:
                cells.append("–¹")
                empty_seen.setdefault(c, {})[key] = s["empty_categories"][c]
            else:
                cells.append("–")
        lines.append(f"| {_label(key, b)} | " + " | ".join(cells) + " |")
    if empty_seen:
        fp = "; ".join(
            f"{c}: " + ", ".join(f"{k} {sum(v)}" for k, v in per.items()) for c, per in empty_seen.items()
        )
        lines += [
            "",
            "¹ No ground-truth lanes in this category of the test split, so recall and F1 are "
            "undefined (the official CULane tool prints -1 / -100 there, `results.json` keeps the "
            f"counts); its false positives, summed over seeds: {fp}.",
        ]
    lines += ["", "## What was learned", "", *(f"- {s}" for s in statement(summ, b)), ""]
    lines += [
        "![test F1](figures/f1_bars.png)",
        "",
        "## Learning curves of every student (mean over seeds)",
        "",
        "Training loss is the total loss averaged over each 10-iteration logging interval (the same "
        "numbers as the console's progress lines and each run's `metrics.jsonl`); validation F1 is on the "
        "validation split.",
        "",
        "![curves](figures/training_curves.png)",
        "",
        "## Predicted lanes on test images (seed " + str(seeds[0]) + ", the scored checkpoints)",
        "",
        "![test lanes](figures/test_lanes.png)",
        "",
        "## Attention maps of the student (block2..block4), without and with SAD (the scored checkpoints)",
        "",
        "![attention](figures/attention.png)",
        "",
        "## Wall time of each stage",
        "",
        "| stage | seconds | |",
        "|---|---|---|",
        *(
            f"| {st['stage']} | {st['seconds']:.0f} | {'earlier invocation' if st['reused'] else ''} |"
            for st in results.get("stages", [])
        ),
        "",
        f"This invocation: {results.get('elapsed_s', 0):.0f} s. Disk: this folder holds "
        f"{results.get('footprint', {}).get('out_mb', 0):.0f} MB (one model-only checkpoint per run), the "
        f"cached synthetic splits {results.get('footprint', {}).get('data_mb', 0):.0f} MB "
        "(`$LANEKD_CACHE` or `~/.cache/lanekd`). Raw numbers: `results.json`; each run's `metrics.jsonl`, "
        "`config.json` and `best.pt` are under `runs/`.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# figures (OpenCV only; matplotlib is not a dependency). Images are BGR as OpenCV writes them.

_COLORS = [(200, 90, 40), (40, 140, 230), (60, 170, 60), (40, 40, 210), (150, 60, 160), (30, 30, 30)]
_GRID = (225, 225, 225)


def _write_png(path: Path, img: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise RuntimeError(f"cannot encode {path}")
        tmp.write_bytes(buf.tobytes())


def _text(img: np.ndarray, s: str, xy: tuple[int, int], scale: float = 0.45, color=(20, 20, 20)) -> None:
    cv2.putText(img, s, xy, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _text_right(img: np.ndarray, s: str, x: int, y: int, scale: float = 0.4) -> None:
    (tw, th), _ = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    _text(img, s, (x - tw, y + th // 2), scale)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (1, 2 or 5 times a power of ten apart) covering ``[lo, hi]``."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    v = first
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.3g}"


class _Axes:
    """A plot box with value ticks, grid and axis labels; maps data to pixel coordinates."""

    def __init__(
        self,
        img: np.ndarray,
        box: tuple[int, int, int, int],
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        xlabel: str,
        ylabel: str,
        title: str,
        xticks: bool = True,
    ) -> None:
        self.img, self.box = img, box
        x0, y0, x1, y1 = box
        self.xt = nice_ticks(*xlim) if xticks else []
        self.yt = nice_ticks(*ylim)
        self.xlim = (min(xlim[0], self.xt[0]), max(xlim[1], self.xt[-1])) if xticks else xlim
        self.ylim = (self.yt[0], self.yt[-1])
        for v in self.yt:
            y = self.py(v)
            cv2.line(img, (x0, y), (x1, y), _GRID, 1)
            cv2.line(img, (x0 - 4, y), (x0, y), (0, 0, 0), 1)
            _text_right(img, _fmt(v), x0 - 7, y)
        for v in self.xt:
            x = self.px(v)
            cv2.line(img, (x, y0), (x, y1), _GRID, 1)
            cv2.line(img, (x, y1), (x, y1 + 4), (0, 0, 0), 1)
            s = _fmt(v)
            (tw, _), _ = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
            _text(img, s, (x - tw // 2, y1 + 17), 0.4)
        cv2.line(img, (x0, y0), (x0, y1), (0, 0, 0), 1)
        cv2.line(img, (x0, y1), (x1, y1), (0, 0, 0), 1)
        _text(img, title, (x0, y0 - 10), 0.5)
        if xlabel:
            (tw, _), _ = cv2.getTextSize(xlabel, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            _text(img, xlabel, ((x0 + x1 - tw) // 2, y1 + 36), 0.45)
        # vertical y label: drawn on a strip and rotated
        (tw, th), _ = cv2.getTextSize(ylabel, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        strip = np.full((th + 8, tw + 4, 3), 255, np.uint8)
        _text(strip, ylabel, (2, th + 2), 0.45)
        strip = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
        sy = max(0, (y0 + y1 - strip.shape[0]) // 2)
        sx = max(0, x0 - 48 - strip.shape[1])
        h = min(strip.shape[0], img.shape[0] - sy)
        img[sy : sy + h, sx : sx + strip.shape[1]] = strip[:h]

    def px(self, x: float) -> int:
        x0, _, x1, _ = self.box
        return int(round(x0 + (x1 - x0) * (x - self.xlim[0]) / max(self.xlim[1] - self.xlim[0], 1e-12)))

    def py(self, y: float) -> int:
        _, y0, _, y1 = self.box
        return int(round(y1 - (y1 - y0) * (y - self.ylim[0]) / max(self.ylim[1] - self.ylim[0], 1e-12)))


def _marker(img: np.ndarray, p: tuple[int, int], kind: int, color) -> None:
    x, y = p
    if kind == 0:
        cv2.circle(img, p, 3, color, -1, cv2.LINE_AA)
    elif kind == 1:
        cv2.rectangle(img, (x - 3, y - 3), (x + 3, y + 3), color, -1)
    elif kind == 2:
        cv2.fillPoly(img, [np.array([[x, y - 4], [x - 4, y + 3], [x + 4, y + 3]], np.int32)], color)
    else:
        cv2.line(img, (x - 3, y - 3), (x + 3, y + 3), color, 2)
        cv2.line(img, (x - 3, y + 3), (x + 3, y - 3), color, 2)


def _curves(
    runs: Path, seeds: tuple[int, ...], base_seed: int
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """``{"loss": {method: [(iter, mean over seeds)]}, "val_f1": {...}}`` from the runs' metrics.jsonl."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {"loss": {}, "val_f1": {}}
    for m in STUDENT_RUNS:
        per: dict[str, dict[int, list[float]]] = {"loss": {}, "val_f1": {}}
        for s in seeds:
            path = runs / student_run(m, base_seed + s) / "metrics.jsonl"
            if not path.is_file():
                continue
            for ln in path.read_text().splitlines():
                if not ln.strip():
                    continue
                r = json.loads(ln)
                if r.get("type") == "train":
                    per["loss"].setdefault(int(r["iter"]), []).append(float(r["loss_total"]))
                elif r.get("type") == "val":
                    per["val_f1"].setdefault(int(r["iter"]), []).append(float(r["f1"]))
        for k in out:
            out[k][m] = [(float(i), float(np.mean(v))) for i, v in sorted(per[k].items())]
    return out


def draw_curves(
    curves: dict[str, dict[str, list[tuple[float, float]]]],
    path: Path,
    markers: dict[str, float] | None = None,
) -> None:
    """Both learning curves of every method on one figure (training loss and validation F1
    against iterations), one colour and marker shape per method and one legend; ``markers``
    draws labelled vertical lines (e.g. where SAD switches on)."""
    img = np.full((400, 1080, 3), 255, np.uint8)
    methods = [m for m in curves["loss"] if curves["loss"][m] or curves["val_f1"].get(m)]
    panels = (
        ("loss", (90, 40, 470, 320), "training loss (total)", "loss"),
        ("val_f1", (590, 40, 900, 320), "validation F1", "F1"),
    )
    for key, box, title, ylabel in panels:
        series = {m: curves[key].get(m, []) for m in methods}
        pts = [p for s in series.values() for p in s]
        xmax = max((p[0] for p in pts), default=1.0)
        if key == "val_f1":
            ylim = (0.0, 1.0)
        else:
            ylim = (min((p[1] for p in pts), default=0.0), max((p[1] for p in pts), default=1.0))
            ylim = (min(0.0, ylim[0]), ylim[1])
        ax = _Axes(img, box, (0.0, xmax), ylim, "iteration", ylabel, title)
        for name, x in (markers or {}).items():
            if x <= ax.xlim[1]:
                px = ax.px(x)
                for yy in range(box[1], box[3], 8):
                    cv2.line(img, (px, yy), (px, min(yy + 4, box[3])), (120, 120, 120), 1)
                _text(img, name, (px + 3, box[1] + 12), 0.38, (90, 90, 90))
        for i, m in enumerate(methods):
            c = _COLORS[i % len(_COLORS)]
            poly = [(ax.px(x), ax.py(y)) for x, y in series[m]]
            # later methods draw thinner so an identical earlier curve stays visible under them
            if len(poly) > 1:
                cv2.polylines(img, [np.array(poly, np.int32)], False, c, max(1, 4 - i), cv2.LINE_AA)
            step = max(1, len(poly) // 12)
            for p in poly[i % step :: step] if key == "loss" else poly:
                _marker(img, p, i, c)
    lx, ly = 930, 60
    cv2.rectangle(img, (lx - 8, ly - 20), (1070, ly + 22 * len(methods)), (0, 0, 0), 1)
    for i, m in enumerate(methods):
        c = _COLORS[i % len(_COLORS)]
        y = ly + 22 * i
        cv2.line(img, (lx, y - 4), (lx + 26, y - 4), c, 2)
        _marker(img, (lx + 13, y - 4), i, c)
        _text(img, m, (lx + 34, y), 0.45)
    _write_png(path, img)


def draw_f1_bars(summary: dict[str, Any], path: Path) -> None:
    """Bar chart of mean test F1 per model with a 0..1 y axis and ± std error bars."""
    names = list(summary)
    left, top, bottom = 90, 40, 60
    w, h = 130 * len(names) + left + 30, 360
    img = np.full((h, w, 3), 255, np.uint8)
    ax = _Axes(
        img,
        (left, top, w - 20, h - bottom),
        (0, 1),
        (0.0, 1.0),
        "",
        "test F1",
        "CULane F1 on the synthetic test split (mean, bar = ± std over seeds)",
        xticks=False,
    )
    for i, n in enumerate(names):
        s = summary[n]["f1"]
        x0 = left + 25 + i * 130
        y0 = ax.py(s["mean"])
        cv2.rectangle(img, (x0, y0), (x0 + 80, ax.py(0.0)), _COLORS[i % len(_COLORS)], -1)
        if s["std"]:
            ya, yb = ax.py(min(1.0, s["mean"] + s["std"])), ax.py(max(0.0, s["mean"] - s["std"]))
            cv2.line(img, (x0 + 40, ya), (x0 + 40, yb), (0, 0, 0), 2)
            cv2.line(img, (x0 + 32, ya), (x0 + 48, ya), (0, 0, 0), 2)
            cv2.line(img, (x0 + 32, yb), (x0 + 48, yb), (0, 0, 0), 2)
        _text(img, f"{s['mean']:.2f}", (x0 + 22, max(top + 12, y0 - 6)))
        _text(img, "teacher" if n == "teacher" else n, (x0 + 4, h - bottom + 20))
        _text(img, f"{s['n']} seed{'s' if s['n'] > 1 else ''}", (x0 + 4, h - bottom + 38), 0.38, (90, 90, 90))
    _write_png(path, img)


def _tile_lanes(
    image: np.ndarray, lanes: list[np.ndarray], attrs: dict[str, Any], caption: str
) -> np.ndarray:
    """An RGB network-size test image with source-pixel lanes drawn, "no lanes" when there are none."""
    from lanekd.predict.draw import draw_lanes

    h, w = image.shape[:2]
    src_h, src_w = (int(v) for v in attrs.get("source_size", (590, 1640)))
    crop = int(attrs.get("crop_top", 0))
    sx, sy = w / src_w, h / (src_h - crop)
    scaled = [
        np.stack([p[:, 0] * sx, (p[:, 1] - crop) * sy], axis=1) if len(p) else np.zeros((0, 2))
        for p in (np.asarray(x, np.float64).reshape(-1, 2) for x in lanes)
    ]
    out = cv2.cvtColor(draw_lanes(image, scaled, thickness=2, points=False), cv2.COLOR_RGB2BGR)
    if not any(len(p) >= 2 for p in scaled):
        cv2.rectangle(out, (4, h // 2 - 16), (110, h // 2 + 8), (255, 255, 255), -1)
        _text(out, "no lanes", (10, h // 2 + 2), 0.55, (0, 0, 200))
    band = np.full((20, w, 3), 255, np.uint8)
    _text(band, caption, (4, 15), 0.42)
    return np.concatenate([band, out], axis=0)


def pick_images(categories: list[str], k: int = 4) -> list[int]:
    """Indices of ``k`` test images of different categories (first of each, in order met)."""
    seen: dict[str, int] = {}
    for i, c in enumerate(categories):
        seen.setdefault(c, i)
    picked = list(seen.values())[:k]
    return picked + [i for i in range(len(categories)) if i not in picked][: k - len(picked)]


def draw_overlays(checkpoints: dict[str, Path], test: str, path: Path, device: str, k: int = 4) -> None:
    """A strip of ``k`` test images: the ground truth in the first row, each model's predicted
    lanes (decoded as for scoring) in the next ones."""
    from lanekd.data import LaneDataset, LaneH5
    from lanekd.data.h5 import data_attrs_from_h5
    from lanekd.engine.checkpoint import load_checkpoint_model
    from lanekd.inference import infer_lanes as predict_lanes

    attrs = data_attrs_from_h5(test)
    h5 = LaneH5(test)
    ds = LaneDataset(test, train=False)
    idx = pick_images(list(h5.categories), k)
    raw = [h5.image(i) for i in idx]
    cats = [h5.categories[i] or "-" for i in idx]
    rows = {"ground truth": [h5.lanes(i)[0] for i in idx]}
    images = torch.stack([ds[i]["image"] for i in idx])
    for name, ckpt in checkpoints.items():
        model, _ = load_checkpoint_model(ckpt, device=device)
        lanes, _, _ = predict_lanes(model, images.to(device), attrs.get("profile", "culane"))
        rows[name] = lanes
    close = getattr(h5, "close", None)
    if callable(close):
        close()
    label_w = 170
    out_rows = []
    for name, per in rows.items():
        tiles = [
            _tile_lanes(im, ln, attrs, f"test #{i} [{c}]")
            for im, ln, i, c in zip(raw, per, idx, cats, strict=True)
        ]
        row = np.concatenate(tiles, axis=1)
        label = np.full((row.shape[0], label_w, 3), 255, np.uint8)
        _text(label, name, (6, row.shape[0] // 2 + 5), 0.45)
        out_rows.append(np.concatenate([label, row], axis=1))
    _write_png(path, np.concatenate(out_rows, axis=0))


def _draw_attention(checkpoints: dict[str, Path], test: str, path: Path, device: str) -> None:
    """The student's block attention maps (Ψ of block2..block4) without and with SAD on one test image."""
    from lanekd.data import LaneDataset, LaneH5
    from lanekd.distill import DistillConfig, attention_map
    from lanekd.engine.checkpoint import load_checkpoint_model

    ds = LaneDataset(test, train=False)
    sample = ds[0]
    raw = LaneH5(test).image(0)  # (H, W, 3) RGB uint8
    h, w = raw.shape[:2]
    rows = []
    for m, ckpt in checkpoints.items():
        model, meta = load_checkpoint_model(ckpt, device=device)
        with torch.no_grad():
            out = model(sample["image"].unsqueeze(0).to(device), return_features=True)
        tiles = [cv2.cvtColor(raw, cv2.COLOR_RGB2BGR)]
        for blk in getattr(model, "sad_blocks", ("block2", "block3", "block4")):
            # the SAD loss's own aggregation (the paper's plain sum is a one-hot map on these nets)
            a = (
                attention_map(
                    out.features[blk].float(), size=(h, w), aggregation=DistillConfig().sad_aggregation
                )[0]
                .cpu()
                .numpy()
            )
            a = (255 * (a - a.min()) / max(float(a.max() - a.min()), 1e-12)).astype(np.uint8)
            tile = cv2.applyColorMap(a, cv2.COLORMAP_JET)
            _text(tile, blk, (4, 14), 0.45, (255, 255, 255))
            tiles.append(tile)
        row = np.concatenate(tiles, axis=1)
        label = np.full((22, row.shape[1], 3), 255, np.uint8)
        what = "without SAD" if m == "none" else "with SAD"
        _text(label, f"{what} (checkpoint of iteration {meta['iteration']})", (4, 16), 0.5)
        rows += [label, row]
    _write_png(path, np.concatenate(rows, axis=0))
