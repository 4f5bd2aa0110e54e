"""The demo's numbers, report and figures: the report writer on fabricated results, the figures'
axes/legend/"no lanes" text, and one tiny end-to-end run (seconds, not a benchmark)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lanekd.engine import demo


def _score(f1: float, cats: dict[str, tuple[int, int, int]], it: int = 100) -> dict:
    from lanekd.engine.validation import f1_counts

    return {"iteration": it, "f1": f1, "precision": f1, "recall": f1, "pixel_iou": f1 / 2,
            "categories": {c: f1_counts(*v) for c, v in cats.items()}}


def _fabricated() -> tuple[dict, dict]:
    """Two seeds per student; category "cross" has no ground-truth lane (tp + fn = 0)."""
    scores = {"teacher": _score(0.9, {"normal": (9, 1, 1), "cross": (0, 2, 0)}, it=120)}
    per = {"none": (0.80, 0.82), "sad": (0.81, 0.83), "intra-kd": (0.70, 0.71), "lgad": (0.80, 0.84)}
    for m, vals in per.items():
        for s, v in enumerate(vals):
            scores[demo.student_run(m, s)] = _score(v, {"normal": (8, 2, 2), "cross": (0, 1 + s, 0)})
    b = {"size": (96, 256), "n_train": 160, "n_val": 24, "n_test": 54, "teacher_iters": 120,
         "student_iters": 100, "batch": 4, "seeds": (0, 1), "quick": True}
    return scores, b


def test_summary_mean_std_and_spread_verdict():
    scores, b = _fabricated()
    s = demo.summarize(scores, b["seeds"])
    assert s["none"]["f1"]["mean"] == pytest.approx(0.81)
    assert s["none"]["f1"]["std"] == pytest.approx(np.std([0.80, 0.82], ddof=1))
    assert s["none"]["iterations"] == [100, 100] and s["teacher"]["f1"]["std"] is None
    # sad: +0.01 against a spread of 0.014 -> inside; intra-kd: -0.105 -> exceeds
    assert s["sad"]["vs_none"]["exceeds"] is False
    assert s["intra-kd"]["vs_none"]["exceeds"] is True
    assert s["intra-kd"]["vs_none"]["delta"] == pytest.approx(-0.105)
    # the empty category is not averaged as an F1 (0 or -1) but kept apart with its false positives
    assert "cross" not in s["none"]["categories"] and s["none"]["empty_categories"]["cross"] == [1, 2]
    assert demo.empty_category({"f1": -1.0}) and not demo.empty_category({"tp": 0, "fn": 3, "f1": 0.0})


def test_report_table_footnote_and_statement():
    scores, b = _fabricated()
    results = {"summary": demo.summarize(scores, b["seeds"]), "stages": [
        {"stage": "train teacher", "seconds": 12.0, "reused": False}], "elapsed_s": 30.0,
        "recipe": {"optimizer": "sgd", "effective_lr": 0.5, "schedule": "poly", "warmup_iters": 100,
                   "recipe": "fast"}}
    md = demo.report_md(results, b)
    row = next(ln for ln in md.splitlines() if ln.startswith("| ENet-SAD, no distillation | 2 |"))
    assert "| 100, 100 |" in row and "81.0 ± 1.4" in row
    assert "+1.0 (inside spread 1.4)" in md and "-10.5 (exceeds spread 1.4)" in md
    assert "–¹" in md and "¹ No ground-truth lanes" in md and "cross: " in md
    table = "\n".join(ln for ln in md.splitlines() if ln.startswith("|"))
    assert "-100" not in table and "-1.0" not in table
    assert "sad's difference to none (+0.01) is inside the seed spread (0.01)" in md
    assert "intra-kd's difference to none (-0.11) exceeds the seed spread (0.01): a loss" in md
    assert "The ResNet-18 teacher reaches F1 0.90, above the plain student (0.81)" in md
    assert "| train teacher | 12 |" in md and "sgd lr 0.5" in md


def test_report_with_one_seed_says_no_spread():
    scores, b = _fabricated()
    b["seeds"] = (0,)
    md = demo.report_md({"summary": demo.summarize(scores, (0,))}, b)
    assert "(1 seed: no spread)" in md and "one seed gives no spread" in md and "±" not in md.split("##")[1]


def test_nice_ticks():
    assert demo.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert demo.nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    t = demo.nice_ticks(0.13, 1.27)
    assert t[0] <= 0.13 and t[-1] >= 1.27 and len(t) <= 8


def _ink(img: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> int:
    """Non-white pixels in a region."""
    return int((img[y0:y1, x0:x1] < 200).any(axis=2).sum())


def test_figures_have_axes_ticks_and_legend(tmp_path):
    scores, b = _fabricated()
    demo.draw_f1_bars(demo.summarize(scores, b["seeds"]), tmp_path / "bars.png")
    bars = cv2.imread(str(tmp_path / "bars.png"))
    # the y axis: a vertical line at x=90 and tick labels (0, 0.2, ..., 1) left of it
    assert (bars[60:280, 90] < 50).all(axis=1).mean() > 0.9
    assert _ink(bars, 40, 300, 40, 86) > 100
    curves = {"loss": {m: [(10.0 * i, 2.0 - 0.1 * i - 0.01 * k) for i in range(1, 11)]
                       for k, m in enumerate(demo.STUDENT_RUNS)},
              "val_f1": {m: [(50.0, 0.2), (100.0, 0.8)] for m in demo.STUDENT_RUNS}}
    demo.draw_curves(curves, tmp_path / "curves.png", markers={"SAD on": 66.0})
    img = cv2.imread(str(tmp_path / "curves.png"))
    assert _ink(img, 40, 320, 20, 86) > 100  # y tick labels and the rotated y label of the loss panel
    assert _ink(img, 325, 380, 90, 470) > 100  # x tick values and "iteration"
    legend = img[40:160, 920:1075]
    for c in demo._COLORS[:4]:  # every method's colour appears in the legend box
        assert (np.abs(legend.astype(int) - np.array(c)).sum(axis=2) < 30).sum() > 10, c


def test_tile_says_no_lanes_only_without_lanes():
    image = np.full((96, 256, 3), 90, np.uint8)
    attrs = {"source_size": (590, 1640), "crop_top": 0}
    red = np.array((0, 0, 200))
    empty = demo._tile_lanes(image, [np.zeros((0, 2))] * 4, attrs, "x")
    lane = demo._tile_lanes(image, [np.array([[400.0, 580.0], [700.0, 250.0]])], attrs, "x")
    assert (np.abs(empty.astype(int) - red).sum(axis=2) < 60).sum() > 20
    assert (np.abs(lane.astype(int) - red).sum(axis=2) < 60).sum() == 0
    assert empty.shape == lane.shape == (116, 256, 3)


def test_tiny_demo_end_to_end(tmp_path, monkeypatch):
    """Every stage on a few images and iterations: the seed, checkpoint rule, slim checkpoints, resume
    (one seed keeps it fast; mean ± std over two is checked on fabricated scores above)."""
    import torch

    monkeypatch.setenv("LANEKD_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    cfg = demo.DemoConfig(out=str(tmp_path / "demo"), quick=True, workers=0, quiet=True, overrides={
        "size": (96, 256), "n_train": 4, "n_val": 2, "n_test": 3, "teacher_iters": 2, "student_iters": 3,
        "batch": 2, "val_every": 2, "seeds": (3,)})
    res = demo.run_demo(cfg)
    runs = tmp_path / "demo" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == sorted(
        ["teacher", "label-teacher", *(f"{m}-s3" for m in demo.STUDENT_RUNS)])
    assert json.loads((runs / "sad-s3" / "config.json").read_text())["seed"] == 3
    # SAD is on from step index 2 of 3: the validation after 2 steps predates it, so best.pt is 3
    assert res["summary"]["sad"]["iterations"] == [3]
    for run in runs.iterdir():
        assert not (run / "last.pt").exists()
        ck = torch.load(run / "best.pt", weights_only=True)
        assert "optimizer" not in ck and "model" in ck
    md = (tmp_path / "demo" / "report.md").read_text()
    assert "| ENet-SAD + sad | 1 | 3 |" in md and "(1 seed: no spread)" in md and "## What was learned" in md
    for f in ("f1_bars.png", "training_curves.png", "test_lanes.png", "attention.png"):
        assert cv2.imread(str(tmp_path / "demo" / "figures" / f)) is not None, f
    again = demo.run_demo(cfg)  # finished runs are reused, scores come from the cache
    assert all(st["reused"] for st in again["stages"] if st["stage"].startswith("train"))
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved["summary"]["none"]["runs"] == ["none-s3"]


def test_budgets_full_fine_tunes_with_three_seeds_scratch_does_not():
    quick = demo.DemoConfig(quick=True).resolved_budget()
    full = demo.DemoConfig().resolved_budget()
    scratch = demo.DemoConfig(scratch=True).resolved_budget()
    assert quick["init"] == full["init"] == "enet-sad-synthetic"
    assert quick["seeds"] == (0,) and full["seeds"] == (0, 1, 2)
    assert full["student_iters"] > quick["student_iters"] and full["n_test"] > quick["n_test"]
    assert scratch["init"] is None and scratch["teacher_model"] == "resnet18" and scratch["lr"] is None


def test_cli_refuses_quick_from_scratch(tmp_path):
    from typer.testing import CliRunner

    from lanekd.cli import app

    res = CliRunner().invoke(app, ["demo", "--quick", "--from-scratch", "--out", str(tmp_path / "d")])
    assert res.exit_code == 2
    assert "--from-scratch" in res.output
    assert not (tmp_path / "d").exists()
