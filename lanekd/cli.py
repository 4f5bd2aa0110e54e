"""The ``lanekd`` command line. Thin: parse options, call the library, print.

Rules every command follows:

* no torch import at module level (``lanekd --help`` and ``lanekd info`` stay fast); import the
  library inside the command body;
* bad input raises :class:`lanekd.errors.LaneKDError`; :func:`main` prints it as one line on
  stderr and exits 1 (no traceback); usage errors exit 2;
* ``--json`` prints one JSON document on stdout and nothing else on stdout; ``--quiet`` prints
  only a one-line summary; progress bars are drawn only when stderr is a terminal.

Each command lives in its own section below, marked ``# === <command> ===``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from lanekd import __version__
from lanekd.errors import LaneKDError

try:  # typer >= 0.22 vendors click; older releases use the click package
    from typer import TyperException as _UsageError
except ImportError:  # pragma: no cover
    from click import ClickException as _UsageError

app = typer.Typer(
    name="lanekd",
    help="Train lightweight lane detectors with knowledge distillation (SAD, IntRA-KD, LGAD, KD, AT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lanekd {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                 callback=_version_callback, is_eager=True),
) -> None:
    """lanekd command line."""


def print_json(obj: Any) -> None:
    """Print one JSON document on stdout (machine-readable output for ``--json``)."""
    typer.echo(json.dumps(obj, indent=2, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def err(message: str) -> None:
    """Print a one-line message on stderr."""
    typer.echo(message, err=True)


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (e.g. ``288x800``) into ``(H, W)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HxW such as 288x800, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise typer.BadParameter(f"sizes must be positive, got {text!r}")
    return h, w


# === prepare (issue 2) ===
_PREPARE_DATASETS = ("culane", "tusimple", "llamas", "bdd100k", "apolloscape", "custom", "synthetic")


@app.command("prepare")
def prepare_cmd(
    dataset: str | None = typer.Argument(None, help="Dataset: " + ", ".join(_PREPARE_DATASETS) + "."),
    root: Path | None = typer.Option(None, "--root", help="Dataset root folder (not for synthetic)."),
    out: Path | None = typer.Option(None, "--out", help="Output FILE.h5 (a folder with --layout culane)."),
    split: str = typer.Option("train", "--split", help="Split to convert: train, val or test."),
    size: str | None = typer.Option(None, "--size", help="Training size HxW (default: the dataset's)."),
    crop_top: int | None = typer.Option(None, "--crop-top", help="Source rows cropped off the top before "
                                        "resizing (default: the dataset's)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted conversion of the same "
                                "invocation (same options)."),
    on_error: str = typer.Option("fail", "--on-error", help="Bad sample: fail (exit 1, no output) or skip "
                                 "(record it in OUT.skipped.json)."),
    storage: str = typer.Option("encoded", "--storage", help="Image storage: encoded (JPEG bytes, small) "
                                "or raw (uint8 arrays, fastest reads, ~10x larger)."),
    n: int = typer.Option(2000, "--n", min=0, help="Synthetic only: number of scenes."),
    seed: int = typer.Option(0, "--seed", help="Synthetic only: generator seed."),
    layout: str = typer.Option("h5", "--layout", help="Synthetic only: h5, or culane to write the "
                               "CULane on-disk layout (JPEGs, .lines.txt, lists) into --out DIR."),
    flush_every: int = typer.Option(64, "--flush-every", min=1, help="Commit (flush) at least every N "
                                    "samples: how much work a killed conversion can lose before --resume."),
    verify: Path | None = typer.Option(None, "--verify", help="Check the integrity of FILE.h5 "
                                       "(checksums, shapes, counts) instead of converting."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar; only the one-line summary."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Convert a dataset split into lanekd's HDF5 format (or verify a prepared file)."""
    if verify is not None:
        from lanekd.data.h5 import verify_h5

        result = verify_h5(verify)
        if json_out:
            print_json(result)
        else:
            typer.echo(f"OK {verify}: {result['count']} samples, checksums, shapes and counts verified")
        return
    if dataset is None:
        raise typer.BadParameter("DATASET is required (or use --verify FILE.h5)", param_hint="DATASET")
    if dataset not in _PREPARE_DATASETS:
        raise typer.BadParameter(f"choose from {', '.join(_PREPARE_DATASETS)}", param_hint="DATASET")
    for name, value, allowed in (("--on-error", on_error, ("fail", "skip")),
                                 ("--storage", storage, ("encoded", "raw")),
                                 ("--layout", layout, ("h5", "culane"))):
        if value not in allowed:
            raise typer.BadParameter(f"choose from {', '.join(allowed)}, got {value!r}", param_hint=name)
    if out is None:
        raise typer.BadParameter("--out is required", param_hint="--out")
    if layout == "culane":
        if dataset != "synthetic":
            raise typer.BadParameter("--layout culane is only for the synthetic dataset",
                                     param_hint="--layout")
        from lanekd.data.synthetic import write_culane_layout

        written = write_culane_layout(out, n, seed=seed, split=split)
        if json_out:
            print_json({"out": str(written), "dataset": "synthetic", "layout": "culane", "split": split,
                        "count": n})
        else:
            typer.echo(f"wrote {n} synthetic {split} scenes in the CULane layout -> {written}")
        return
    if dataset == "synthetic" and root is not None:
        raise typer.BadParameter("synthetic data takes no --root", param_hint="--root")
    from lanekd.data.prepare import prepare_dataset

    result = prepare_dataset(
        dataset, out, root=root, split=split, size=parse_size(size) if size else None, crop_top=crop_top,
        workers=workers, resume=resume, on_error=on_error, storage=storage, n=n, seed=seed,
        flush_every=flush_every, quiet=quiet or json_out,
    )
    if json_out:
        print_json(result.to_json())
    else:
        typer.echo(result.summary())


# === info (issue 2) ===
@app.command("info")
def info_cmd(
    path: Path = typer.Argument(..., help="A FILE.h5 written by `lanekd prepare`."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Print the attributes and sample count of a prepared HDF5 file."""
    from lanekd.data.h5 import describe_h5

    attrs = describe_h5(path)
    if json_out:
        print_json(attrs)
        return
    width = max(len(k) for k in attrs)
    for key, value in attrs.items():
        shown = "x".join(str(v) for v in value) if key in ("size", "source_size") else value
        typer.echo(f"{key:<{width}}  {shown}")


# === models (issue 3) ===
@app.command("models")
def models_cmd(
    input_size: str = typer.Option("288x800", "--input-size", help="Network input HxW (divisible by 8)."),
    num_classes: int = typer.Option(5, "--num-classes", help="Segmentation classes (5 for CULane)."),
    num_lanes: int = typer.Option(4, "--num-lanes", help="Existence outputs; 0 = no existence branch."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of a table."),
) -> None:
    """List every model with parameters and GFLOPs (2 x multiply-adds of conv/deconv/linear layers)."""
    import torch

    from lanekd.models import build_model, count_flops, count_parameters, list_models

    size = parse_size(input_size)
    rows = []
    for name in list_models():
        with torch.device("meta"):  # shapes only: counts without allocating or computing
            model = build_model(name, num_classes=num_classes, num_lanes=num_lanes, input_size=size)
        rows.append({"name": name, "params": count_parameters(model),
                     "gflops": round(count_flops(model) / 1e9, 3), "sad_blocks": list(model.sad_blocks)})
    if as_json:
        print_json({"input_size": list(size), "num_classes": num_classes, "num_lanes": num_lanes,
                    "flops": "2 x multiply-accumulates of Conv2d, ConvTranspose2d and Linear layers",
                    "models": rows})
        return
    typer.echo(f"input {size[0]}x{size[1]}, {num_classes} classes, {num_lanes} lanes")
    typer.echo(f"{'model':<10} {'params (M)':>11} {'GFLOPs':>9}  SAD blocks")
    for r in rows:
        blocks = ",".join(r["sad_blocks"])
        typer.echo(f"{r['name']:<10} {r['params'] / 1e6:>11.3f} {r['gflops']:>9.2f}  {blocks}")


# === evaluate (issue 4) ===
_EVAL_BENCHMARKS = ("culane", "tusimple", "llamas", "bdd100k", "apolloscape")


@app.command("evaluate")
def evaluate_cmd(
    benchmark: str = typer.Option(..., "--benchmark", "-b",
                                  help="culane | tusimple | llamas | bdd100k | apolloscape."),
    gt: Path = typer.Option(..., "--gt", help="Ground truth: CULane/LLAMAS annotation root, TuSimple "
                                              "label JSON-lines file, or a folder of PNG masks "
                                              "(bdd100k, apolloscape)."),
    pred: Path = typer.Option(..., "--pred", help="Predictions, same layout as --gt."),
    list_file: Path | None = typer.Option(None, "--list",
                                          help="CULane image list (default GT/list/test.txt)."),
    split_dir: Path | None = typer.Option(None, "--split-dir",
                                          help="CULane folder of test0_normal.txt..test8_night.txt "
                                               "(default: test_split beside the list)."),
    iou: float = typer.Option(0.5, "--iou", help="CULane/LLAMAS: TP iff matched IoU > this."),
    width: int = typer.Option(30, "--width", help="CULane/LLAMAS: lane line thickness in pixels."),
    workers: int = typer.Option(1, "--workers", help="CULane/LLAMAS: worker processes."),
    rasterizer: str = typer.Option("opencv46", "--rasterizer",
                                   help="CULane: opencv46 (official pixels), cv2 (installed cv2.line), "
                                        "reference (slow literal port)."),
    strict: bool = typer.Option(False, "--strict", help="CULane: fail on prediction lines the official "
                                                        "tool only tolerates (blank, odd, non-numeric)."),
    background: int = typer.Option(0, "--background", help="bdd100k: mask value of background pixels "
                                                           "(0 for SAD labels, 255 for toolkit masks)."),
    metric: str | None = typer.Option(None, "--metric", help="bdd100k: sad (default; SAD accuracy/IoU) or "
                                                             "toolkit (bdd100k toolkit F1_pix1/2/5); llamas: "
                                                             "f1 (default), ap (binary segmentation AP) or "
                                                             "ap-multi (per-lane segmentation mAP)."),
    per_image: bool = typer.Option(False, "--per-image", help="Include per-image results in --json output."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
    quiet: bool = typer.Option(False, "--quiet", help="Print only a one-line summary."),
) -> None:
    """Score predictions with a benchmark's official metric."""
    name = benchmark.lower()
    if name not in _EVAL_BENCHMARKS:
        raise typer.BadParameter(f"unknown benchmark {benchmark!r}; choose from "
                                 f"{', '.join(_EVAL_BENCHMARKS)}", param_hint="--benchmark")
    if metric is not None and name not in ("llamas", "bdd100k"):
        raise typer.BadParameter(f"--metric applies to llamas and bdd100k only, not {name}",
                                 param_hint="--metric")
    if name == "culane":
        from lanekd.evaluate.culane import evaluate_culane

        result = evaluate_culane(gt, pred, list_file=list_file, split_dir=split_dir, iou=iou, width=width,
                                 workers=workers, per_image=per_image, rasterizer=rasterizer, strict=strict)
        o = result["overall"]
        summary = (f"CULane F1 {o['f1'] * 100:.2f} (P {o['precision']:.4f} R {o['recall']:.4f}, "
                   f"TP {o['tp']} FP {o['fp']} FN {o['fn']}) over {result['images_evaluated']} images")
        if "cross" in result["splits"]:
            summary += f"; crossroad FP {result['splits']['cross']['fp']}"
        if result["warnings"]:
            summary += f"; {result['warnings']} tolerated prediction-line issues"
        table = _culane_table(result)
    elif name == "tusimple":
        from lanekd.evaluate.tusimple import evaluate_tusimple, format_tusimple

        result = evaluate_tusimple(gt, pred, per_image=per_image)
        summary = (f"TuSimple accuracy {result['accuracy'] * 100:.2f} FP {result['fp']:.4f} "
                   f"FN {result['fn']:.4f} F1 {result['f1'] * 100:.2f}")
        table = format_tusimple(result)
    elif name == "llamas":
        from lanekd.evaluate import llamas as ll

        if (metric or "f1") == "f1":
            result = ll.evaluate_llamas(gt, pred, iou=iou, width=width, per_image=per_image)
            summary = (f"LLAMAS F1 {result['f1'] * 100:.2f} (TP {result['tp']} FP {result['fp']} "
                       f"FN {result['fn']})")
        elif metric in ("ap", "ap-multi"):
            result = ll.evaluate_llamas_segmentation(gt, pred, multi_class=metric == "ap-multi",
                                                     per_image=per_image)
            summary = f"LLAMAS segmentation {metric} {result['ap']:.4f} over {result['num_images']} images"
        else:
            raise typer.BadParameter(f"llamas metrics: f1, ap, ap-multi (got {metric!r})",
                                     param_hint="--metric")
        table = ll.format_llamas(result)
    elif name == "bdd100k":
        from lanekd.evaluate import bdd100k as bdd

        if (metric or "sad") == "sad":
            result = bdd.evaluate_bdd100k(gt, pred, per_image=per_image, background=background)
            table = summary = bdd.format_bdd100k(result)
        elif metric == "toolkit":
            result = bdd.evaluate_lane_marking(gt, pred, per_image=per_image)
            table = bdd.format_lane_marking(result)
            summary = ("BDD100K lane marking F1_pix1/2/5 "
                       + " / ".join(f"{result[f'F1_pix{b}']['AVERAGE']:.2f}" for b in bdd.BOUND_PIXELS)
                       + f" over {result['num_images']} images")
        else:
            raise typer.BadParameter(f"bdd100k metrics: sad, toolkit (got {metric!r})", param_hint="--metric")
    else:
        from lanekd.evaluate.apolloscape import evaluate_apolloscape, format_apolloscape

        result = evaluate_apolloscape(gt, pred, per_image=per_image)
        summary = f"ApolloScape mIoU {result['miou'] * 100:.2f} over {result['num_images']} images"
        table = format_apolloscape(result)
    if as_json:
        print_json(_json_safe(result))
    elif quiet:
        typer.echo(summary)
    elif isinstance(table, str):
        typer.echo(table)
    else:
        from rich.console import Console

        Console().print(table)
        typer.echo(summary)


def _json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None so ``--json`` output is valid JSON."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _culane_table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    from lanekd.evaluate.culane import SPLIT_TITLES

    t = Table(title="CULane (official metric)")
    for col in ("category", "TP", "FP", "FN", "precision", "recall", "F1"):
        t.add_column(col, justify="left" if col == "category" else "right")
    rows = list(result["splits"].items()) + [("Total", result["overall"])]
    for key, r in rows:
        t.add_row(SPLIT_TITLES.get(key, key), str(r["tp"]), str(r["fp"]), str(r["fn"]),
                  f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1'] * 100:.2f}")
    return t


# === train-teacher (issue 5) ===
_O_DATA = typer.Option(None, "--data", help="Training FILE.h5 from `lanekd prepare` (default: the built-in "
                       "synthetic set, prepared once into the cache).")
_O_VAL = typer.Option(None, "--val", help="Validation FILE.h5 (scored with the benchmark metric).")
_O_ITERS = typer.Option(None, "--iters", min=1, help="Training iterations (default 200 on synthetic data).")
_O_EPOCHS = typer.Option(None, "--epochs", min=1, help="Training epochs (instead of --iters).")
_O_BATCH = typer.Option(None, "--batch-size", min=1, help="Global batch size, all processes together "
                        "(fast: 8, paper: 12).")
_O_RECIPE = typer.Option("fast", "--recipe", help="fast (measured fastest on a CPU) or paper (SGD 0.01, "
                         "Nesterov, poly 0.9, batch 12); fills every schedule flag left unset.")
_O_OPTIM = typer.Option(None, "--optimizer", help="sgd or adamw (default: the recipe's, sgd).")
_O_SCHED = typer.Option(None, "--schedule", help="poly, cosine or onecycle (default: the recipe's, poly).")
_O_MOMENTUM = typer.Option(None, "--momentum", min=0.0, help="SGD momentum / AdamW beta1 (default 0.9).")
_O_LR = typer.Option(None, "--lr", help="Base learning rate (default: the recipe's; fast: 0.5 for ENet-SAD "
                     "with SGD, paper: 0.01).")
_O_SCALE = typer.Option(False, "--scale-lr", help="Scale --lr linearly with the global batch (lr*batch/12).")
_O_WARMUP = typer.Option(None, "--warmup-iters", min=0, help="Linear LR warm-up iterations from 0.1x "
                         "(fast: 100, paper: 0).")
_O_NESTEROV = typer.Option(None, "--nesterov/--no-nesterov", help="Nesterov momentum (paper: on).")
_O_WD = typer.Option(None, "--weight-decay", min=0.0, help="Weight decay (default 1e-4).")
_O_IOU = typer.Option(False, "--iou-loss", help="Add the SAD paper's soft IoU loss (weight 0.1, §3.4).")
_O_WORKERS = typer.Option(2, "--workers", min=0, help="DataLoader worker processes.")
_O_SEED = typer.Option(0, "--seed", help="Seed of initialisation, data order and augmentation.")
_O_DEVICE = typer.Option("cpu", "--device", help="cpu or cuda (DDP: one GPU per torchrun process).")
_O_AMP = typer.Option(None, "--amp", help="Mixed precision: bf16, or fp16 (with gradient scaling).")
_O_CL = typer.Option(False, "--channels-last", help="Use the channels_last memory format (faster on GPUs).")
_O_COMPILE = typer.Option(False, "--compile", help="Compile the model with torch.compile.")
_O_CLIP = typer.Option(None, "--clip-grad", help="Clip the gradient norm to this value.")
_O_SYNCBN = typer.Option(False, "--sync-bn", help="Synchronised BatchNorm across DDP processes (CUDA).")
_O_RESUME = typer.Option(False, "--resume", help="Continue from OUT/last.pt.")
_O_CKPT = typer.Option(500, "--ckpt-every", min=0, help="Write last.pt every N iterations (and at the end).")
_O_VALEVERY = typer.Option(0, "--val-every", min=0, help="Validate every N iterations (0: only at the end).")
_O_MAXVAL = typer.Option(None, "--max-val-images", min=1, help="Validate on at most this many images.")
_O_LOGEVERY = typer.Option(10, "--log-every", min=1, help="Write a metrics.jsonl record every N iterations.")
_O_NOAUG = typer.Option(False, "--no-augment", help="Train without random augmentation.")
_O_TB = typer.Option(False, "--tensorboard", help="Also write TensorBoard logs (needs lanekd[tensorboard]).")
_O_QUIET = typer.Option(False, "--quiet", help="No progress output; only the one-line summary.")
_O_JSON = typer.Option(False, "--json", help="Print the final summary as one JSON document on stdout.")
_O_SYN_N = typer.Option(240, "--synthetic-n", min=1, help="Synthetic training images when --data is absent.")
# the flags train-teacher and distill share (passed through to TrainConfig)
_COMMON_TRAIN = ("data", "val", "iters", "epochs", "batch_size", "lr", "scale_lr", "warmup_iters", "nesterov",
                 "recipe", "optimizer", "schedule", "momentum",
                 "weight_decay", "iou_loss", "workers", "seed", "device", "amp", "channels_last", "compile",
                 "clip_grad", "sync_bn", "resume", "ckpt_every", "val_every", "max_val_images", "log_every",
                 "no_augment", "tensorboard", "synthetic_n")


def _train_config(**kw: Any) -> Any:
    """A TrainConfig from the common flags (defaults for the built-in synthetic data)."""
    from lanekd.engine import TrainConfig

    if kw["iters"] is None and kw["epochs"] is None:
        if kw["data"] is not None:
            raise typer.BadParameter("give --iters or --epochs", param_hint="--iters")
        kw["iters"] = 200
    iou = kw.pop("iou_loss")
    augment = not kw.pop("no_augment")
    data = kw.pop("data")
    val = kw.pop("val")
    return TrainConfig(data=str(data) if data else None, val=str(val) if val else None,
                       iou_weight=0.1 if iou else 0.0, augment=augment, **kw)


def _run_training(cfg: Any, title: str, json_out: bool) -> None:
    """Run :func:`lanekd.engine.train`, map interruption to exit 130/143, print the summary."""
    from lanekd.engine import TrainingInterrupted, train

    try:
        res = train(cfg)
    except TrainingInterrupted as e:
        err(f"error: {e}")
        raise typer.Exit(e.exit_code) from None
    if json_out:
        print_json(res.to_dict())
        return
    metric = (f", {res.metric} {res.final_value:.4f} (best {res.best_value:.4f} @ {res.best_iter})"
              if res.metric else "")
    loss = f", loss {res.loss_total:.4f}" if res.loss_total is not None else ""
    files = "last.pt, best.pt" if res.best_checkpoint else "last.pt"
    typer.echo(f"{title}: {res.iterations} iterations{loss}{metric}, {res.img_s:.1f} img/s; "
               f"outputs in {res.out_dir} ({files}, metrics.jsonl)")


@app.command("train-teacher")
def train_teacher_cmd(
    model: str = typer.Option("resnet18", "--model", help="Teacher architecture (see `lanekd models`)."),
    label_input: bool = typer.Option(False, "--label-input", help="Train LGAD's teacher: fed the one-hot "
                                     "label map, it reconstructs it (METHODS §5.3)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default runs/teacher-MODEL)."),
    data: Path | None = _O_DATA, val: Path | None = _O_VAL, iters: int | None = _O_ITERS,
    epochs: int | None = _O_EPOCHS, batch_size: int | None = _O_BATCH, lr: float | None = _O_LR,
    scale_lr: bool = _O_SCALE,
    warmup_iters: int | None = _O_WARMUP, nesterov: bool | None = _O_NESTEROV,
    weight_decay: float | None = _O_WD, recipe: str = _O_RECIPE, optimizer: str | None = _O_OPTIM,
    schedule: str | None = _O_SCHED, momentum: float | None = _O_MOMENTUM,
    iou_loss: bool = _O_IOU, workers: int = _O_WORKERS, seed: int = _O_SEED, device: str = _O_DEVICE,
    amp: str | None = _O_AMP, channels_last: bool = _O_CL, compile: bool = _O_COMPILE,
    clip_grad: float | None = _O_CLIP, sync_bn: bool = _O_SYNCBN, resume: bool = _O_RESUME,
    ckpt_every: int = _O_CKPT, val_every: int = _O_VALEVERY, max_val_images: int | None = _O_MAXVAL,
    log_every: int = _O_LOGEVERY, no_augment: bool = _O_NOAUG, tensorboard: bool = _O_TB,
    synthetic_n: int = _O_SYN_N, quiet: bool = _O_QUIET, json_out: bool = _O_JSON,
) -> None:
    """Train a teacher network (RGB, or label-input for LGAD)."""
    out = out or Path("runs") / (f"teacher-{model}" + ("-label" if label_input else ""))
    common = {k: v for k, v in locals().items() if k in _COMMON_TRAIN}
    cfg = _train_config(model=model, label_input=label_input, out=str(out), quiet=quiet or json_out, **common)
    _run_training(cfg, f"teacher {model}" + (" (label input)" if label_input else ""), json_out)


# === distill (issue 5) ===
@app.command("distill")
def distill_cmd(
    method: str = typer.Option("sad", "--method", help="none, sad, intra-kd, lgad, kd, at, or a comma list "
                               "(e.g. sad,kd)."),
    student: str = typer.Option("enet-sad", "--student", help="Student architecture (see `lanekd models`)."),
    teacher: Path | None = typer.Option(None, "--teacher", help="Frozen teacher checkpoint (intra-kd, kd, "
                                        "at: RGB teacher; lgad: `train-teacher --label-input`)."),
    cache_teacher: bool = typer.Option(False, "--cache-teacher", help="Compute the teacher's targets once "
                                       "into OUT/teacher_cache.h5 (implies --no-augment)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default runs/distill-METHOD)."),
    # SAD (METHODS §3)
    sad_gamma: float | None = typer.Option(None, "--sad-gamma", help="SAD loss weight gamma (default 0.1)."),
    sad_start: int | None = typer.Option(None, "--sad-start", help="Iteration at which SAD switches on "
                                         "(default: 2/3 of training)."),
    sad_blocks: str | None = typer.Option(None, "--sad-blocks", help="SAD chain, shallow to deep, comma list "
                                          "(default: the student's sad_blocks)."),
    sad_p: float | None = typer.Option(None, "--sad-p", help="Attention exponent p of sum_c |A|^p "
                                       "(default 2)."),
    sad_detach: bool | None = typer.Option(None, "--sad-detach/--no-sad-detach", help="Stop the gradient "
                                           "through the deeper (target) map (default: on)."),
    sad_label_mimic: bool | None = typer.Option(None, "--sad-label-mimic/--no-sad-label-mimic",
                                                help="Released-code variant: the deepest block also "
                                                "mimics the label."),
    sad_reduction: str | None = typer.Option(None, "--sad-reduction", help="sum-mean (default) or mean."),
    sad_aggregation: str | None = typer.Option(None, "--sad-aggregation", help="Channel aggregation before "
                                               "the softmax: zscore (default; never one-hot), mean (sum/C) "
                                               "or sum (the paper's literal formula, saturates)."),
    # IntRA-KD (METHODS §4)
    alpha: float | None = typer.Option(None, "--alpha", help="IntRA-KD loss weight alpha (default 1.0)."),
    intra_kd_kernel: int | None = typer.Option(None, "--intra-kd-kernel", help="AOI box-blur size "
                                               "(default 11)."),
    intra_kd_normaliser: str | None = typer.Option(None, "--intra-kd-normaliser", help="Moment normaliser: "
                                                   "aoi (paper, default) or hw."),
    intra_kd_student_feature: str | None = typer.Option(None, "--intra-kd-student-feature", help="Student "
                                                        "feature distilled (default encoder)."),
    intra_kd_teacher_feature: str | None = typer.Option(None, "--intra-kd-teacher-feature", help="Teacher "
                                                        "feature used as target (default encoder)."),
    intra_kd_eps: float | None = typer.Option(None, "--intra-kd-eps", help="Skewness epsilon "
                                              "(default 1e-10)."),
    # LGAD (METHODS §5.3)
    lgad_gamma: float | None = typer.Option(None, "--lgad-gamma", help="LGAD loss weight (default 0.1)."),
    lgad_blocks: str | None = typer.Option(None, "--lgad-blocks", help="Blocks mimicking the label-input "
                                           "teacher, comma list (default: the student's sad_blocks)."),
    lgad_p: float | None = typer.Option(None, "--lgad-p", help="LGAD attention exponent p (default 2)."),
    lgad_reduction: str | None = typer.Option(None, "--lgad-reduction", help="LGAD MSE reduction: sum-mean "
                                              "(default) or mean."),
    lgad_aggregation: str | None = typer.Option(None, "--lgad-aggregation", help="LGAD channel aggregation: "
                                                "zscore (default), mean or sum."),
    # logit KD and attention transfer
    kd_weight: float | None = typer.Option(None, "--kd-weight", help="Pixel-wise logit KD weight "
                                           "(default 1)."),
    kd_temperature: float | None = typer.Option(None, "--kd-temperature", help="KD temperature T "
                                                "(default 1)."),
    at_weight: float | None = typer.Option(None, "--at-weight", help="Attention-transfer weight "
                                           "(default 0.1)."),
    at_p: float | None = typer.Option(None, "--at-p", help="AT attention exponent p (default 2)."),
    at_blocks: str | None = typer.Option(None, "--at-blocks", help="Blocks matched by AT, comma list "
                                         "(default: the student's sad_blocks)."),
    data: Path | None = _O_DATA, val: Path | None = _O_VAL, iters: int | None = _O_ITERS,
    epochs: int | None = _O_EPOCHS, batch_size: int | None = _O_BATCH, lr: float | None = _O_LR,
    scale_lr: bool = _O_SCALE,
    warmup_iters: int | None = _O_WARMUP, nesterov: bool | None = _O_NESTEROV,
    weight_decay: float | None = _O_WD, recipe: str = _O_RECIPE, optimizer: str | None = _O_OPTIM,
    schedule: str | None = _O_SCHED, momentum: float | None = _O_MOMENTUM,
    iou_loss: bool = _O_IOU, workers: int = _O_WORKERS, seed: int = _O_SEED, device: str = _O_DEVICE,
    amp: str | None = _O_AMP, channels_last: bool = _O_CL, compile: bool = _O_COMPILE,
    clip_grad: float | None = _O_CLIP, sync_bn: bool = _O_SYNCBN, resume: bool = _O_RESUME,
    ckpt_every: int = _O_CKPT, val_every: int = _O_VALEVERY, max_val_images: int | None = _O_MAXVAL,
    log_every: int = _O_LOGEVERY, no_augment: bool = _O_NOAUG, tensorboard: bool = _O_TB,
    synthetic_n: int = _O_SYN_N, quiet: bool = _O_QUIET, json_out: bool = _O_JSON,
) -> None:
    """Train a student with one or more distillation methods."""
    from lanekd.distill import DistillConfig, parse_methods

    methods = parse_methods(method)
    given = {"sad_gamma": sad_gamma, "sad_start": sad_start, "sad_blocks": sad_blocks, "sad_p": sad_p,
             "sad_detach": sad_detach, "sad_label_mimic": sad_label_mimic, "sad_reduction": sad_reduction,
             "sad_aggregation": sad_aggregation, "lgad_aggregation": lgad_aggregation,
             "intra_kd_alpha": alpha, "intra_kd_kernel": intra_kd_kernel,
             "intra_kd_normaliser": intra_kd_normaliser, "intra_kd_student_feature": intra_kd_student_feature,
             "intra_kd_teacher_feature": intra_kd_teacher_feature, "intra_kd_eps": intra_kd_eps,
             "lgad_gamma": lgad_gamma, "lgad_blocks": lgad_blocks, "lgad_p": lgad_p,
             "lgad_reduction": lgad_reduction, "kd_weight": kd_weight, "kd_temperature": kd_temperature,
             "at_weight": at_weight, "at_p": at_p, "at_blocks": at_blocks}
    dcfg = DistillConfig.from_dict({k: v for k, v in given.items() if v is not None})
    name = "+".join(methods) if methods else "none"
    out = out or Path("runs") / f"distill-{name.replace('+', '-')}-{student}"
    common = {k: v for k, v in locals().items() if k in _COMMON_TRAIN}
    cfg = _train_config(model=student, methods=methods, teacher=str(teacher) if teacher else None,
                        cache_teacher=cache_teacher, distill=dcfg, out=str(out), quiet=quiet or json_out,
                        **common)
    _run_training(cfg, f"distill {name} -> {student}", json_out)


# === demo (issue 5) ===
@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Output folder (report.md, figures, runs)."),
    quick: bool = typer.Option(False, "--quick", help="Small budget: finishes in under 10 minutes on 2 CPU "
                               "cores (the numbers are then only indicative)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    workers: int = typer.Option(2, "--workers", min=0, help="DataLoader worker processes."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data and of every run."),
    quiet: bool = typer.Option(False, "--quiet", help="Only the one-line summary."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as one JSON document on stdout."),
) -> None:
    """Run the end-to-end demo on synthetic data and write a report."""
    from lanekd.engine import TrainingInterrupted
    from lanekd.engine.demo import DemoConfig, run_demo

    try:
        result = run_demo(DemoConfig(out=str(out), quick=quick, device=device, workers=workers, seed=seed,
                                     quiet=quiet or json_out))
    except TrainingInterrupted as e:
        err(f"error: {e} (rerun `lanekd demo` to continue)")
        raise typer.Exit(e.exit_code) from None
    if json_out:
        print_json(result)
        return
    typer.echo(f"demo finished in {result['elapsed_s']:.0f}s: report {result['report']}")


# === export (issue 6) ===
@app.command("export")
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="A lanekd training checkpoint (last.pt / best.pt)."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.onnx / .pt)."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset version (18 is native to the exporter)."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Export with a symbolic batch size."),
    input_size: str | None = typer.Option(None, "--input-size",
                                          help="HxW; must equal the checkpoint's (the existence branch "
                                               "is built for one size). Default: the checkpoint's."),
    check_image: list[Path] = typer.Option([], "--check-image",
                                           help="Extra real image(s) to compare PyTorch and the export on."),
    tolerance: float = typer.Option(1e-4, "--tolerance", help="Max abs difference allowed (float32)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Export a checkpoint to ONNX or TorchScript, checked against PyTorch (fails above --tolerance)."""
    from lanekd.engine import load_checkpoint_model
    from lanekd.export.core import export_model
    from lanekd.predict.backends import meta_from_checkpoint
    from lanekd.predict.inputs import read_image

    model, ckpt_meta = load_checkpoint_model(checkpoint)
    meta = meta_from_checkpoint(ckpt_meta, checkpoint)
    if input_size is not None and parse_size(input_size) != tuple(meta.input_size):
        raise typer.BadParameter(f"the checkpoint is built for {meta.input_size[0]}x{meta.input_size[1]}",
                                 param_hint="--input-size")
    meta.dynamic_batch = dynamic_batch
    report = export_model(model, meta, out, fmt=fmt, opset=opset, dynamic_batch=dynamic_batch,
                          check_images=[read_image(p) for p in check_image], tolerance=tolerance)
    if as_json:
        print_json(report.to_dict())
    elif not quiet:
        typer.echo(f"wrote {report.path} ({fmt}); max abs diff vs PyTorch {report.max_abs_diff:.2e} "
                   f"over {len(report.checks)} input(s)")


# === predict / visualize / bench (issue 6) ===
@app.command("predict")
def predict_cmd(
    model: Path = typer.Argument(..., help="Checkpoint (.pt), ONNX (.onnx) or TorchScript file."),
    inputs: list[str] = typer.Argument(..., help="Images, folders, glob patterns or video files."),
    out: str = typer.Option(..., "--out", "-o", help="Output folder ('-' = stdout, json format only)."),
    fmt: str = typer.Option("culane", "--format", "-f", help="culane, tusimple, overlay or json."),
    batch: int = typer.Option(8, "--batch", "-b", help="Frames per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    no_spline: bool = typer.Option(False, "--no-spline", help="Output the raw 20-px row points."),
    threshold: float | None = typer.Option(None, "--threshold",
                                           help="Point threshold on the smoothed map (profile default 0.3)."),
    exist_threshold: float | None = typer.Option(None, "--exist-threshold",
                                                 help="Lane existence threshold (profile default 0.5)."),
    on_error: str = typer.Option("fail", "--on-error", help="fail or skip unreadable inputs."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (on stderr with --out -)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary."),
) -> None:
    """Detect lanes in images, folders, globs or videos and write them in a benchmark format."""
    from lanekd.predict.backends import load_backend
    from lanekd.predict.run import predict

    if on_error not in ("fail", "skip"):
        raise typer.BadParameter("must be fail or skip", param_hint="--on-error")
    backend = load_backend(model, device)
    options = {k: v for k, v in (("threshold", threshold), ("exist_threshold", exist_threshold))
               if v is not None}
    summary = predict(backend, inputs, out, fmt=fmt, batch=batch, on_error=on_error,
                      spline=not no_spline, quiet=quiet, **options)
    info = summary.to_dict()
    if as_json:
        info["outputs"] = len(summary.outputs)
        typer.echo(json.dumps(info), err=out == "-")
    elif not quiet:
        err(f"{info['frames']} frame(s) from {info['images']} image(s) and {info['videos']} video(s), "
            f"{info['lanes']} lanes, {info['fps']} frames/s; {len(summary.skipped)} skipped; output: {out}")


visualize_app = typer.Typer(help="Figures: attention maps of a model, prepared samples.",
                            no_args_is_help=True)
app.add_typer(visualize_app, name="visualize")


@visualize_app.command("attention")
def visualize_attention_cmd(
    checkpoint: Path = typer.Argument(..., help="A lanekd training checkpoint."),
    image: Path = typer.Argument(..., help="An image file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output image (.png)."),
    blocks: str | None = typer.Option(None, "--blocks", help="Comma list of features (default: SAD blocks)."),
    aggregation: str | None = typer.Option(None, "--aggregation",
                                           help="zscore (as the SAD loss), mean or sum."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """The SAD attention map of each block side by side, as in the SAD paper's figure."""
    from lanekd.predict.inputs import read_image
    from lanekd.predict.visualize import attention_figure, save_rgb

    names = tuple(b.strip() for b in blocks.split(",") if b.strip()) if blocks else None
    save_rgb(out, attention_figure(checkpoint, read_image(image), device=device, blocks=names,
                                   aggregation=aggregation))
    err(f"wrote {out}")


@visualize_app.command("data")
def visualize_data_cmd(
    h5: Path = typer.Argument(..., help="A prepared HDF5 file."),
    index: int = typer.Option(0, "--index", "-i", help="Sample index."),
    out: Path = typer.Option(..., "--out", "-o", help="Output image (.png)."),
) -> None:
    """A prepared sample with its label map and lanes."""
    from lanekd.predict.visualize import data_figure, save_rgb

    save_rgb(out, data_figure(h5, index))
    err(f"wrote {out}")


@app.command("bench")
def bench_cmd(
    model: str = typer.Argument(..., help="Checkpoint, ONNX or TorchScript file, or a model name "
                                          "(random weights)."),
    input_size: str | None = typer.Option(None, "--input-size",
                                          help="HxW for model names (default 288x800)."),
    batch: int = typer.Option(1, "--batch", "-b", help="Batch size."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    runs: int = typer.Option(20, "--runs", help="Timed runs (median and p90 reported)."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed warm-up runs."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Measure model-only and end-to-end (with decoding) latency: warm-up, sync, median and p90."""
    from lanekd.predict.bench import bench

    size = parse_size(input_size) if input_size else None
    result = bench(model, size, batch=batch, device=device, runs=runs, warmup=warmup)
    if as_json:
        print_json(result)
        return
    mo, e2e = result["model_only"], result["end_to_end"]
    typer.echo(f"{result['model']} ({result['backend']}, {device}, batch {batch}, "
               f"{result['input_size'][0]}x{result['input_size'][1]})")
    if "params" in result:
        typer.echo(f"  params {result['params'] / 1e6:.3f}M, GFLOPs {result.get('gflops', '?')}")
    for label, st in (("model only", mo), ("end to end", e2e)):
        typer.echo(f"  {label:<11} median {st['median_ms']:.2f} ms, p90 {st['p90_ms']:.2f} ms, "
                   f"{st['ms_per_frame']:.2f} ms/frame, {st['fps']:.1f} FPS")


# === entry point ===
def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises for user errors)."""
    try:
        rv = app(args=argv, prog_name="lanekd", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err("Aborted.")
        return 130
    except _UsageError as e:
        e.show()
        return e.exit_code
    except LaneKDError as e:
        err(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        err("Interrupted.")
        return 130
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
