"""``lanekd evaluate`` is a lookup in lanekd.evaluate's registry: every benchmark (and metric) runs
through the same interface in each output mode, on tiny perfect predictions."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanekd import cli as cli_module
from lanekd.errors import ConfigError
from lanekd.evaluate import BENCHMARKS, REGISTRY, get_benchmark


def _culane(tmp: Path) -> tuple[Path, Path]:
    for sub in ("gt", "pred"):
        d = tmp / sub / "drv" / "clip"
        d.mkdir(parents=True)
        (d / "00000.lines.txt").write_text("800 580 800 300\n")
    (tmp / "gt" / "list").mkdir()
    (tmp / "gt" / "list" / "test.txt").write_text("/drv/clip/00000.jpg\n")
    return tmp / "gt", tmp / "pred"


def _tusimple(tmp: Path) -> tuple[Path, Path]:
    hs = list(range(160, 720, 10))
    rec = {"raw_file": "clips/a/20.jpg", "h_samples": hs, "lanes": [[300 + i for i in range(len(hs))]],
           "run_time": 10}
    for name in ("gt.json", "pred.json"):
        (tmp / name).write_text(json.dumps(rec) + "\n")
    return tmp / "gt.json", tmp / "pred.json"


def _llamas(tmp: Path) -> tuple[Path, Path]:
    ys = np.arange(716, 250, -1.0)
    lane = np.stack([600 + 0.5 * (716 - ys), ys], axis=1)
    for d in ("g", "p"):
        (tmp / d / "rec").mkdir(parents=True)
        (tmp / d / "rec" / "a.lines.txt").write_text(" ".join(f"{x} {y}" for x, y in lane) + "\n")
    return tmp / "g", tmp / "p"


def _masks(tmp: Path, value: int) -> tuple[Path, Path]:
    mask = np.zeros((8, 8), np.uint8)
    mask[2, :] = value
    for d in ("g", "p"):
        (tmp / d).mkdir()
        cv2.imwrite(str(tmp / d / "a.png"), mask)
    return tmp / "g", tmp / "p"


CASES = {  # (benchmark, metric): (data, words of its summary line)
    ("culane", None): (_culane, "CULane F1 100.00"),
    ("tusimple", None): (_tusimple, "TuSimple accuracy 100.00"),
    ("llamas", None): (_llamas, "LLAMAS F1 100.00"),
    ("bdd100k", None): (lambda t: _masks(t, 255), "accuracy"),
    ("bdd100k", "toolkit"): (lambda t: _masks(t, 255), "F1_pix1/2/5"),
    ("apolloscape", None): (lambda t: _masks(t, 200), "ApolloScape mIoU 100.00"),
}


def test_the_cli_lists_the_packages_benchmarks():
    assert cli_module._EVAL_BENCHMARKS == BENCHMARKS == tuple(REGISTRY)
    assert {b for b, _ in CASES} == set(BENCHMARKS)  # a new benchmark needs a case here


@pytest.mark.parametrize("bench,metric", list(CASES))
def test_evaluate_cmd_over_each_benchmark(cli, tmp_path, bench, metric):
    make, words = CASES[(bench, metric)]
    gt, pred = make(tmp_path)
    args = ["evaluate", "-b", bench.upper(), "--gt", gt, "--pred", pred]
    args += ["--metric", metric] if metric else []
    code, out, err = cli(*args, "--quiet")
    assert code == 0, err
    assert out.count("\n") == 1 and words in out
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    assert isinstance(json.loads(out), dict)
    code, out, err = cli(*args)
    assert code == 0 and out.strip(), err


def test_metric_choices_are_usage_errors(cli, tmp_path):
    gt, pred = _culane(tmp_path)
    code, _, err = cli("evaluate", "-b", "culane", "--gt", gt, "--pred", pred, "--metric", "ap")
    assert code == 2 and "applies to llamas and bdd100k only" in err
    code, _, err = cli("evaluate", "-b", "nosuch", "--gt", gt, "--pred", pred)
    assert code == 2 and "choose from culane, tusimple" in err
    assert get_benchmark("llamas").check_metric(None) == "f1"
    with pytest.raises(ConfigError, match="llamas metrics: f1, ap, ap-multi"):
        get_benchmark("llamas").check_metric("miou")
