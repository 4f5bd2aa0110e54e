"""TuSimple evaluator: parity with the official lane.py outputs, hand-computed edge cases, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lanekd.errors import DataError
from lanekd.evaluate.tusimple import (
    _sklearn_slope,
    _slopes,
    evaluate_tusimple,
    f1_paper,
    format_tusimple,
)

H = list(range(160, 720, 10))  # 56 rows
R = len(H)


def vertical(x: float, top: int = 0) -> list[float]:
    """A vertical lane at ``x`` present from row index ``top`` down to the bottom."""
    return [-2 if i < top else x for i in range(R)]


def write(tmp_path: Path, gt: list[dict], pred: list[dict] | list[str]) -> tuple[Path, Path]:
    g, p = tmp_path / "gt.json", tmp_path / "pred.json"
    g.write_text("".join(json.dumps({"h_samples": H, **r}) + "\n" for r in gt))
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in pred))
    return g, p


def score(tmp_path: Path, gt_lanes: list[list[float]], pred_lanes: list[list[float]],
          run_time: float = 10.0) -> list[float]:
    g, p = write(tmp_path, [{"raw_file": "a.jpg", "lanes": gt_lanes}],
                 [{"raw_file": "a.jpg", "lanes": pred_lanes, "run_time": run_time}])
    return evaluate_tusimple(g, p, per_image=True)["images"]["a.jpg"]


# ----------------------------------------------------------------------------------------- parity
@pytest.mark.shared
def test_golden_parity_with_official_lane_py(golden: Path) -> None:
    d = golden / "tusimple_eval"
    expected = json.loads((d / "expected.json").read_text())
    res = evaluate_tusimple(d / "gt.json", d / "pred.json", per_image=True)
    assert res["benchmark"] == "tusimple"
    assert res["accuracy"] == pytest.approx(expected["overall"]["Accuracy"], abs=1e-9)
    assert res["fp"] == pytest.approx(expected["overall"]["FP"], abs=1e-9)
    assert res["fn"] == pytest.approx(expected["overall"]["FN"], abs=1e-9)
    assert set(res["images"]) == set(expected["images"])
    for raw, vals in expected["images"].items():
        np.testing.assert_allclose(res["images"][raw], vals, atol=1e-9, rtol=0, err_msg=raw)
    assert res["zeroed"]["run_time"] > 0 and res["zeroed"]["lane_count"] > 0  # the file exercises both


@pytest.mark.shared
def test_self_evaluation_of_test_label_is_perfect(realdata: Path) -> None:
    gt = realdata / "tusimple" / "_full_annotations" / "test_label.json"
    if not gt.is_file():
        pytest.skip("full TuSimple annotations absent")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        pred = Path(d) / "pred.json"
        with open(gt) as f, open(pred, "w") as out:
            for line in f:
                r = json.loads(line)
                out.write(json.dumps({"raw_file": r["raw_file"], "lanes": r["lanes"], "run_time": 5}) + "\n")
        res = evaluate_tusimple(gt, pred)
    assert (res["accuracy"], res["fp"], res["fn"], res["f1"]) == (1.0, 0.0, 0.0, 1.0)
    assert res["num_images"] == res["num_gt"] == 2782


# ----------------------------------------------------------------------------------------- per image
def test_perfect_and_offset_predictions(tmp_path: Path) -> None:
    assert score(tmp_path, [vertical(300), vertical(600)], [vertical(300), vertical(600)]) == [1, 0, 0]
    # Vertical GT: threshold 20 px, strict. Offset 19.9 -> every row correct; offset 20 -> none of the
    # 56 rows (all present) -> 0 accuracy, both lanes missed, both predictions false positives.
    assert score(tmp_path, [vertical(300)], [vertical(319.9)]) == [1, 0, 0]
    assert score(tmp_path, [vertical(300)], [vertical(320)]) == [0, 1, 1]


def test_rows_missing_on_both_sides_count_as_correct(tmp_path: Path) -> None:
    # GT present on rows 20..55 (36 rows); prediction present on rows 26..55 at the right x: the 20 rows
    # missing on both sides are correct, rows 20..25 (GT only) wrong -> (20 + 30) / 56 = 0.8929 >= 0.85.
    acc, fp, fn = score(tmp_path, [vertical(500, top=20)], [vertical(500, top=26)])
    assert acc == pytest.approx(50 / 56, abs=1e-12) and (fp, fn) == (0, 0)
    # Prediction present on rows 30..55 only: (20 + 26) / 56 = 0.821 < 0.85 -> miss.
    acc, fp, fn = score(tmp_path, [vertical(500, top=20)], [vertical(500, top=30)])
    assert acc == pytest.approx(46 / 56, abs=1e-12) and (fp, fn) == (1, 1)


def test_angle_threshold_from_linear_fit(tmp_path: Path) -> None:
    # GT x = y - 100 (slope 1 -> threshold 20*sqrt(2) = 28.28 px).
    gt = [float(y - 100) for y in H]
    assert score(tmp_path, [gt], [[x + 28.2 for x in gt]]) == [1, 0, 0]
    assert score(tmp_path, [gt], [[x + 28.3 for x in gt]]) == [0, 1, 1]
    k = _slopes(np.array([gt]), np.array(H, dtype=float))[0]
    assert k == pytest.approx(1.0, abs=1e-12)
    assert 20 / math.cos(math.atan(k)) == pytest.approx(28.2843, abs=1e-4)
    # x = 0 counts as a point in the fit (x >= 0), negatives do not.
    lane = np.array([0.0, 10.0, -2.0, 30.0])
    assert _slopes(lane[None], np.array([0.0, 10.0, 20.0, 30.0]))[0] == pytest.approx(1.0)
    assert _slopes(np.array([[-2.0, 5.0, -2.0]]), np.array([0.0, 1.0, 2.0]))[0] == 0.0  # < 2 points


def test_sklearn_replica_agrees_with_closed_form() -> None:
    rng = np.random.default_rng(0)
    ys = np.array(H, dtype=float)
    for _ in range(20):
        x = rng.uniform(0, 1280) + rng.uniform(-3, 3) * ys + rng.normal(0, 2, R)
        x[rng.random(R) < 0.3] = -2
        assert _sklearn_slope(x, ys) == pytest.approx(_slopes(x[None], ys)[0], rel=1e-12, abs=1e-12)


def test_threshold_ties_use_the_reference_fit(tmp_path: Path) -> None:
    # Slope 0.75 exactly (x step 7.5 per 10 px): the threshold is 25 up to rounding, and a prediction
    # offset by exactly 25 px sits on it; the decision must follow the scikit-learn-style fit.
    gt = [0.75 * y for y in H]
    t = 20 / np.cos(np.arctan(_sklearn_slope(np.array(gt), np.array(H, dtype=float))))
    expected = 1.0 if 25.0 < t else 0.0
    acc, _, _ = score(tmp_path, [gt], [[x + 25 for x in gt]])
    assert acc == expected


def test_one_prediction_matching_two_gt_lanes_gives_negative_fp(tmp_path: Path) -> None:
    acc, fp, fn = score(tmp_path, [vertical(500), vertical(510)], [vertical(505)])
    assert (acc, fp, fn) == (1.0, -1.0, 0.0)


def test_edge_cases_from_the_spec(tmp_path: Path) -> None:
    assert score(tmp_path, [vertical(300), vertical(600)], []) == [0, 0, 1]  # no predictions
    assert score(tmp_path, [], [vertical(300), vertical(600)]) == [0, 1, 0]  # no GT lanes
    two = [vertical(100 + 200 * i) for i in range(2)]
    assert score(tmp_path, two, two + [vertical(900 + 50 * i) for i in range(3)]) == [0, 0, 1]  # > gt+2
    assert score(tmp_path, two, two + [vertical(900), vertical(1000)]) == [1, 0.5, 0]  # = gt+2: scored
    assert score(tmp_path, two, two, run_time=200) == [1, 0, 0]  # not > 200
    assert score(tmp_path, two, two, run_time=200.5) == [0, 0, 1]
    # an all -2 prediction still counts as a prediction (a false positive)
    assert score(tmp_path, [vertical(300)], [vertical(300), [-2] * R]) == [1, 0.5, 0]
    # a GT lane that is all -2 is matched by a prediction missing on >= 85 % of the rows
    acc, fp, fn = score(tmp_path, [vertical(300), [-2] * R], [vertical(300), [-2] * R])
    assert (acc, fp, fn) == (1, 0, 0)
    # ... but not by a lane present on every row (0 rows agree): a miss.
    assert score(tmp_path, [vertical(300), [-2] * R], [vertical(300)]) == [0.5, 0, 0.5]


def test_more_than_four_gt_lanes(tmp_path: Path) -> None:
    gt = [vertical(100 + 250 * i) for i in range(5)]
    # 4 perfect predictions of 5 GT: worst GT lane dropped, one miss forgiven.
    assert score(tmp_path, gt, gt[:4]) == [1, 0, 0]
    # 3 perfect: sum 3 - min 0 = 3 over 4; misses 2 - 1 = 1 over 4.
    assert score(tmp_path, gt, gt[:3]) == [0.75, 0, 0.25]


def test_dataset_average_uses_unique_gt_and_counts_duplicate_predictions(tmp_path: Path) -> None:
    gt = [{"raw_file": "a", "lanes": [vertical(300)]}, {"raw_file": "b", "lanes": [vertical(300)]}]
    pred = [{"raw_file": "a", "lanes": [vertical(300)], "run_time": 1},
            {"raw_file": "a", "lanes": [vertical(300)], "run_time": 1}]
    res = evaluate_tusimple(*write(tmp_path, gt, pred))
    assert res["accuracy"] == 1.0 and res["warnings"] == {"duplicate_pred_raw_file": 1}
    gt.append({"raw_file": "a", "lanes": [vertical(700)]})  # duplicate GT: the last line wins
    pred.append({"raw_file": "b", "lanes": [vertical(300)], "run_time": 1})
    res = evaluate_tusimple(*write(tmp_path, gt, pred), per_image=True)
    assert res["num_gt"] == 2 and res["warnings"]["duplicate_gt_raw_file"] == 1
    assert res["images"]["a"] == [0, 1, 1]
    assert res["accuracy"] == pytest.approx(1 / 2)  # (0 + 0 + 1) / 2 unique GT


def test_f1_paper_convention() -> None:
    assert round(100 * f1_paper(0.0602, 0.0205), 2) == 95.92  # ENet-SAD in the LaneATT tables
    assert round(100 * f1_paper(0.0617, 0.0180), 2) == 95.97  # SCNN
    assert f1_paper(1.0, 1.0) == 0.0


def test_format_table(tmp_path: Path) -> None:
    g, p = write(tmp_path, [{"raw_file": "a", "lanes": [vertical(3)]}],
                 [{"raw_file": "a", "lanes": [vertical(3)], "run_time": 300}])
    text = format_tusimple(evaluate_tusimple(g, p))
    assert "Accuracy" in text and "0.00 %" in text and "1 over 200 ms" in text


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("pred", "match", "line"),
    [
        (['{"raw_file": "a", "lanes": []', ], "not valid JSON", 1),
        (['[1, 2]'], "expected a JSON object", 1),
        (['{"lanes": [], "run_time": 1}'], "missing key 'raw_file'", 1),
        (['{"raw_file": "a", "run_time": 1}'], "missing key 'lanes'", 1),
        (['{"raw_file": "a", "lanes": []}'], "missing key 'run_time'", 1),
        (['{"raw_file": "zz", "lanes": [], "run_time": 1}'], "not in the ground truth", 1),
        (['{"raw_file": "a", "lanes": [[1, 2]], "run_time": 1}'], "len\\(h_samples\\) = 56", 1),
        (['{"raw_file": "a", "lanes": 3, "run_time": 1}'], "'lanes' must be a list", 1),
        (['{"raw_file": "a", "lanes": [3], "run_time": 1}'], "lane 0 must be a list", 1),
        ([json.dumps({"raw_file": "a", "lanes": [["x"] * 56], "run_time": 1})], "must be numbers", 1),
        (['{"raw_file": "a", "lanes": [], "run_time": [1, 2]}'], "run_time must be a number", 1),
    ],
)
def test_malformed_prediction_lines(tmp_path: Path, pred: list[str], match: str, line: int) -> None:
    g, p = write(tmp_path, [{"raw_file": "a", "lanes": [vertical(3)]}], pred)
    with pytest.raises(DataError, match=match) as exc:
        evaluate_tusimple(g, p)
    assert exc.value.path == str(p) and exc.value.line == line
    assert str(exc.value).startswith(f"{p}:{line}: ")


def test_error_names_the_right_line_and_file(tmp_path: Path) -> None:
    gt = [{"raw_file": str(i), "lanes": [vertical(3)]} for i in range(4)]
    pred = [json.dumps({"raw_file": str(i), "lanes": [vertical(3)], "run_time": 1}) for i in range(4)]
    pred[2] = json.dumps({"raw_file": "2", "lanes": [vertical(3)[:-1]], "run_time": 1})
    with pytest.raises(DataError, match=r"pred.json:3: a lane's length"):
        evaluate_tusimple(*write(tmp_path, gt, pred))
    pred[2] = ""
    with pytest.raises(DataError, match=r"pred.json:3: blank line"):
        evaluate_tusimple(*write(tmp_path, gt, pred))
    g, p = write(tmp_path, gt, pred[:2])
    with pytest.raises(DataError, match="2 prediction lines for 4 ground-truth lines"):
        evaluate_tusimple(g, p)
    with pytest.raises(DataError, match="file not found"):
        evaluate_tusimple(tmp_path / "nope.json", p)
    g.write_text(g.read_text().replace('"h_samples": [160', '"h_samples": ["160"', 1))
    with pytest.raises(DataError, match=r"gt.json:1: 'h_samples' must be"):
        evaluate_tusimple(g, p)


def test_silently_read_values_are_counted_as_warnings(tmp_path: Path) -> None:
    lane = vertical(300)
    nan_lane = [float("nan") if i < 10 else x for i, x in enumerate(lane)]
    pred = [json.dumps({"raw_file": "a", "lanes": [nan_lane], "run_time": 1})]  # json writes NaN
    res = evaluate_tusimple(*write(tmp_path, [{"raw_file": "a", "lanes": [lane]}], pred), per_image=True)
    # lane.py reads NaN as "missing" (NaN >= 0 is False): 46 of 56 rows correct -> 0.821 < 0.85.
    assert res["images"]["a"][0] == pytest.approx(46 / 56)
    assert res["warnings"] == {"nonfinite_pred_values": 10}
    bool_lane = [True] * R
    pred = [json.dumps({"raw_file": "a", "lanes": [lane, bool_lane], "run_time": False})]
    res = evaluate_tusimple(*write(tmp_path, [{"raw_file": "a", "lanes": [lane]}], pred))
    assert res["warnings"] == {"boolean_x_values": 1, "boolean_run_time": 1}
    assert res["fp"] == 0.5


def test_mixed_h_samples_in_one_file(tmp_path: Path) -> None:
    # label_data_0313 uses 48 rows (240..710), the other files 56: both in one GT file.
    h48 = list(range(240, 720, 10))
    gt = tmp_path / "gt.json"
    recs = [{"raw_file": "a", "h_samples": h48, "lanes": [[300] * 48, [-2] * 48]},
            {"raw_file": "b", "h_samples": H, "lanes": [vertical(500), vertical(900, top=30)]}]
    gt.write_text("".join(json.dumps(r) + "\n" for r in recs))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"raw_file": "b", "lanes": [vertical(500)], "run_time": 1}) + "\n"
                    + json.dumps({"raw_file": "a", "lanes": [[300] * 48, [-2] * 48], "run_time": 1}) + "\n")
    res = evaluate_tusimple(gt, pred, per_image=True)
    # b: the second GT lane (rows 30..55) is never within 20 px of the prediction at x = 500, and rows
    # 0..29 are missing only on the GT side: 0 of 56 -> (1 + 0) / 2, one miss.
    assert res["images"] == {"a": [1.0, 0.0, 0.0], "b": [0.5, 0.0, 0.5]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"raw_file": "b", "lanes": [[1] * 48], "run_time": 1}) + "\n"
                   + json.dumps({"raw_file": "a", "lanes": [], "run_time": 1}) + "\n")
    with pytest.raises(DataError, match=r"bad.json:1: .*= 56"):
        evaluate_tusimple(gt, bad)
