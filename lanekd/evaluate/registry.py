"""One small interface per benchmark, so ``lanekd evaluate`` is a table lookup.

A :class:`Benchmark` scores prediction files against ground-truth files (``evaluate``), says the
result in one line (``summary``) and as a table (``format``); :data:`REGISTRY` lists them in the
order the CLI shows. The scoring itself stays in each benchmark's module (imported on first use,
so this module and ``lanekd --help`` load no NumPy/OpenCV code).

Adding a benchmark: write ``lanekd/evaluate/<name>.py`` with its ``evaluate_<name>(gt, pred, ...)``
returning a JSON-ready dict, then add one :class:`Benchmark` entry below (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lanekd.errors import ConfigError

Result = dict[str, Any]


@dataclass(frozen=True)
class EvalOptions:
    """Options of ``lanekd evaluate``; each benchmark reads the ones it documents.

    Attributes:
        list_file, split_dir: CULane image list and its per-category lists.
        iou, width: CULane/LLAMAS matching IoU threshold and lane thickness in pixels.
        workers: CULane worker processes (an int as text, or ``"auto"``).
        rasterizer, strict: CULane line rasteriser and strict prediction-line parsing.
        background: BDD100K mask value of background pixels.
        metric: the benchmark's metric (``None``: its default, the first of ``Benchmark.metrics``).
        per_image: include per-image results.
    """

    list_file: Path | None = None
    split_dir: Path | None = None
    iou: float = 0.5
    width: int = 30
    workers: str = "auto"
    rasterizer: str = "opencv46"
    strict: bool = False
    background: int = 0
    metric: str | None = None
    per_image: bool = False


@dataclass(frozen=True)
class Benchmark:
    """One benchmark's entry point.

    Attributes:
        name: ``--benchmark`` value.
        evaluate: ``(gt, pred, options) -> result`` (a JSON-ready dict, the ``--json`` output).
        summary: ``(result, options) -> str``, the ``--quiet`` line.
        format: ``(result, options) ->`` a plain-text table, or a ``rich`` renderable (then the
            summary line is printed after it).
        metrics: accepted ``--metric`` values, the default first; empty: no ``--metric``.
        warnings: ``result -> [message]`` printed on stderr in every output mode.
    """

    name: str
    evaluate: Callable[[Path, Path, EvalOptions], Result]
    summary: Callable[[Result, EvalOptions], str]
    format: Callable[[Result, EvalOptions], Any]
    metrics: tuple[str, ...] = ()
    warnings: Callable[[Result], list[str]] = lambda result: []

    def check_metric(self, metric: str | None) -> str | None:
        """``metric`` or the default one; ``ConfigError`` for one this benchmark does not have."""
        if metric is None:
            return self.metrics[0] if self.metrics else None
        if not self.metrics:
            with_metrics = " and ".join(b.name for b in REGISTRY.values() if b.metrics)
            raise ConfigError(f"--metric applies to {with_metrics} only, not {self.name}")
        if metric not in self.metrics:
            raise ConfigError(f"{self.name} metrics: {', '.join(self.metrics)} (got {metric!r})")
        return metric


# --- CULane ------------------------------------------------------------------------------------
def _culane(gt: Path, pred: Path, o: EvalOptions) -> Result:
    from lanekd.evaluate.culane import evaluate_culane

    return evaluate_culane(gt, pred, list_file=o.list_file, split_dir=o.split_dir, iou=o.iou, width=o.width,
                           workers=o.workers, per_image=o.per_image, rasterizer=o.rasterizer, strict=o.strict)


def _culane_mostly_missing(result: Result) -> bool:
    return result["missing_predictions"] * 2 > result["images_evaluated"]


def _culane_summary(result: Result, o: EvalOptions) -> str:
    ov = result["overall"]
    text = (f"CULane F1 {ov['f1'] * 100:.2f} (P {ov['precision']:.4f} R {ov['recall']:.4f}, "
            f"TP {ov['tp']} FP {ov['fp']} FN {ov['fn']}) over {result['images_evaluated']} images")
    if "cross" in result["splits"]:
        text += f"; crossroad FP {result['splits']['cross']['fp']}"
    issues = result["warnings"] - _culane_mostly_missing(result)
    if issues:
        text += f"; {issues} tolerated prediction-line issues"
    return text


def _culane_table(result: Result, o: EvalOptions) -> Any:
    from rich.table import Table

    from lanekd.evaluate.culane import SPLIT_TITLES

    t = Table(title="CULane (official metric)")
    for col in ("category", "TP", "FP", "FN", "precision", "recall", "F1"):
        t.add_column(col, justify="left" if col == "category" else "right")
    rows = list(result["splits"].items()) + [("Total", result["overall"])]
    undefined = False
    for key, r in rows:
        # -1 is the official tool's "undefined" (no predictions / no lanes): a dash here, -1 in --json
        p, rc = (f"{r[k]:.4f}" if r[k] >= 0 else "–" for k in ("precision", "recall"))
        f1 = f"{r['f1'] * 100:.2f}" if r["precision"] >= 0 and r["recall"] >= 0 else "–"
        undefined |= "–" in (p, rc, f1)
        t.add_row(SPLIT_TITLES.get(key, key), str(r["tp"]), str(r["fp"]), str(r["fn"]), p, rc, f1)
    if undefined:
        t.caption = ("– undefined: no predictions or no ground-truth lanes in that category (the official "
                     "tool prints -1 / -100; --json keeps those values)")
    return t


def _culane_warnings(result: Result) -> list[str]:
    # never score silently when most predictions are missing (wrong --pred folder, say)
    return [result["warning_examples"][0]] if _culane_mostly_missing(result) else []


# --- TuSimple ----------------------------------------------------------------------------------
def _tusimple(gt: Path, pred: Path, o: EvalOptions) -> Result:
    from lanekd.evaluate.tusimple import evaluate_tusimple

    return evaluate_tusimple(gt, pred, per_image=o.per_image)


def _tusimple_summary(result: Result, o: EvalOptions) -> str:
    return (f"TuSimple accuracy {result['accuracy'] * 100:.2f} FP {result['fp']:.4f} "
            f"FN {result['fn']:.4f} F1 {result['f1'] * 100:.2f}")


def _tusimple_table(result: Result, o: EvalOptions) -> str:
    from lanekd.evaluate.tusimple import format_tusimple

    return format_tusimple(result)


# --- LLAMAS ------------------------------------------------------------------------------------
def _llamas(gt: Path, pred: Path, o: EvalOptions) -> Result:
    from lanekd.evaluate import llamas

    if o.metric in ("ap", "ap-multi"):
        return llamas.evaluate_llamas_segmentation(gt, pred, multi_class=o.metric == "ap-multi",
                                                   per_image=o.per_image)
    return llamas.evaluate_llamas(gt, pred, iou=o.iou, width=o.width, per_image=o.per_image)


def _llamas_summary(result: Result, o: EvalOptions) -> str:
    if o.metric in ("ap", "ap-multi"):
        return f"LLAMAS segmentation {o.metric} {result['ap']:.4f} over {result['num_images']} images"
    return f"LLAMAS F1 {result['f1'] * 100:.2f} (TP {result['tp']} FP {result['fp']} FN {result['fn']})"


def _llamas_table(result: Result, o: EvalOptions) -> str:
    from lanekd.evaluate.llamas import format_llamas

    return format_llamas(result)


# --- BDD100K -----------------------------------------------------------------------------------
def _bdd100k(gt: Path, pred: Path, o: EvalOptions) -> Result:
    from lanekd.evaluate import bdd100k

    if o.metric == "toolkit":
        return bdd100k.evaluate_lane_marking(gt, pred, per_image=o.per_image)
    return bdd100k.evaluate_bdd100k(gt, pred, per_image=o.per_image, background=o.background)


def _bdd100k_summary(result: Result, o: EvalOptions) -> str:
    from lanekd.evaluate import bdd100k

    if o.metric == "toolkit":
        return ("BDD100K lane marking F1_pix1/2/5 "
                + " / ".join(f"{result[f'F1_pix{b}']['AVERAGE']:.2f}" for b in bdd100k.BOUND_PIXELS)
                + f" over {result['num_images']} images")
    return bdd100k.format_bdd100k(result)


def _bdd100k_table(result: Result, o: EvalOptions) -> str:
    from lanekd.evaluate import bdd100k

    return bdd100k.format_lane_marking(result) if o.metric == "toolkit" else bdd100k.format_bdd100k(result)


# --- ApolloScape -------------------------------------------------------------------------------
def _apolloscape(gt: Path, pred: Path, o: EvalOptions) -> Result:
    from lanekd.evaluate.apolloscape import evaluate_apolloscape

    return evaluate_apolloscape(gt, pred, per_image=o.per_image)


def _apolloscape_summary(result: Result, o: EvalOptions) -> str:
    return f"ApolloScape mIoU {result['miou'] * 100:.2f} over {result['num_images']} images"


def _apolloscape_table(result: Result, o: EvalOptions) -> str:
    from lanekd.evaluate.apolloscape import format_apolloscape

    return format_apolloscape(result)


#: Every benchmark ``lanekd evaluate`` scores, in the order it lists them.
REGISTRY: dict[str, Benchmark] = {
    "culane": Benchmark("culane", _culane, _culane_summary, _culane_table, warnings=_culane_warnings),
    "tusimple": Benchmark("tusimple", _tusimple, _tusimple_summary, _tusimple_table),
    "llamas": Benchmark("llamas", _llamas, _llamas_summary, _llamas_table, metrics=("f1", "ap", "ap-multi")),
    "bdd100k": Benchmark("bdd100k", _bdd100k, _bdd100k_summary, _bdd100k_table, metrics=("sad", "toolkit")),
    "apolloscape": Benchmark("apolloscape", _apolloscape, _apolloscape_summary, _apolloscape_table),
}

BENCHMARKS: tuple[str, ...] = tuple(REGISTRY)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (any case); ``ConfigError`` listing the known ones."""
    try:
        return REGISTRY[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}") from None
