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
from lanekd.cli_fast import json_text, run_evaluate
from lanekd.cli_options import App, FieldFlags, config_flags, one_of, parse_size
from lanekd.errors import LaneKDError
from lanekd.evaluate import registry as _evaluate

try:  # typer >= 0.22 vendors click; older releases use the click package
    from typer import TyperException as _UsageError
except ImportError:  # pragma: no cover
    from click import ClickException as _UsageError

app = App(
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
    typer.echo(json_text(obj))


def err(message: str) -> None:
    """Print a one-line message on stderr."""
    typer.echo(message, err=True)


# === prepare ===
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
    layout: str = typer.Option("h5", "--layout", help="Synthetic only: h5, or culane / tusimple to "
                               "write that dataset's on-disk layout (JPEGs and its label files) into "
                               "--out DIR, seen by that dataset's camera."),
    randomize: str = typer.Option("", "--randomize", help="Synthetic only: dashcam-look randomisations, "
                                  "comma-separated option names or all (docs/zoo.md lists them; an unknown "
                                  "name is refused with the list)."),
    line_width: int | None = typer.Option(None, "--line-width", min=1, max=64, help="Training label "
                                          "line width in pixels at --size (default: the dataset's "
                                          "official width scaled, 4 px at 400 wide for CULane)."),
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
                                 ("--layout", layout, ("h5", "culane", "tusimple"))):
        if value not in allowed:
            raise typer.BadParameter(f"choose from {', '.join(allowed)}, got {value!r}", param_hint=name)
    if out is None:
        raise typer.BadParameter("--out is required", param_hint="--out")
    from lanekd.data.synthetic_domain import DomainRandomization
    from lanekd.errors import ConfigError

    try:
        randomization = DomainRandomization.parse(randomize)
    except ConfigError as e:
        raise typer.BadParameter(str(e), param_hint="--randomize") from None
    if randomization and dataset != "synthetic":
        raise typer.BadParameter("randomisation applies to the synthetic dataset only",
                                 param_hint="--randomize")
    if layout != "h5":
        if dataset != "synthetic":
            raise typer.BadParameter(f"--layout {layout} is only for the synthetic dataset",
                                     param_hint="--layout")
        from lanekd.data.synthetic import SYNTHETIC_LAYOUT_WRITERS, camera_geometry

        if size is not None:  # the layout mimics the dataset's files and frame size, as its readers expect
            fh, fw = camera_geometry(layout).size
            raise typer.BadParameter(f"applies to HDF5 output only; the {layout} layout is written at "
                                     f"{fh}x{fw}, that dataset's frame size (resize when preparing it)",
                                     param_hint="--size")

        written = SYNTHETIC_LAYOUT_WRITERS[layout](out, n, seed=seed, split=split, randomize=randomization)
        if json_out:
            print_json({"out": str(written), "dataset": "synthetic", "layout": layout, "split": split,
                        "count": n})
        else:
            typer.echo(f"wrote {n} synthetic {split} scenes in the {layout} layout -> {written}")
        return
    if dataset == "synthetic" and root is not None:
        raise typer.BadParameter("synthetic data takes no --root", param_hint="--root")
    from lanekd.data.prepare import prepare_dataset

    result = prepare_dataset(
        dataset, out, root=root, split=split, size=_training_size(size) if size else None, crop_top=crop_top,
        workers=workers, resume=resume, on_error=on_error, storage=storage, n=n, seed=seed,
        flush_every=flush_every, quiet=quiet or json_out, line_width=line_width,
        randomize=randomization.spec(),
    )
    if json_out:
        print_json(result.to_json())
    else:
        typer.echo(result.summary())


def _training_size(text: str) -> tuple[int, int]:
    """``--size``: a size the networks accept (their stride, see ``lanekd models``) within the
    prepare limit, checked before any work."""
    from lanekd.data.prepare import check_size
    from lanekd.errors import ConfigError
    from lanekd.models.common import check_input_size

    try:
        size = parse_size(text)
    except typer.BadParameter as e:
        raise typer.BadParameter(e.message, param_hint="--size") from None
    try:
        check_size(size)
    except ConfigError as e:
        raise typer.BadParameter(str(e), param_hint="--size") from None
    try:
        check_input_size(size)
    except ConfigError as e:
        raise typer.BadParameter(f"{e}: every network downsamples by this stride (`lanekd models`)",
                                 param_hint="--size") from None
    return size


# === info ===
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


# === models ===
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


# === evaluate ===
_EVAL_BENCHMARKS = _evaluate.BENCHMARKS  # the package's list (lanekd/evaluate/registry.py)


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
    workers: str = typer.Option("auto", "--workers", help="CULane: worker processes, or auto (the "
                                                          "available CPU cores)."),
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
    from lanekd.errors import ConfigError

    try:
        bench = _evaluate.get_benchmark(benchmark)
    except ConfigError as e:
        raise typer.BadParameter(str(e), param_hint="--benchmark") from None
    try:
        metric = bench.check_metric(metric)
    except ConfigError as e:
        raise typer.BadParameter(str(e), param_hint="--metric") from None
    run_evaluate(bench, metric, gt, pred, list_file=list_file, split_dir=split_dir, iou=iou, width=width,
                 workers=workers, rasterizer=rasterizer, strict=strict, background=background,
                 per_image=per_image, as_json=as_json, quiet=quiet, echo=typer.echo)


# === train-teacher ===
# Their flags are generated from TrainConfig's and DistillConfig's fields (lanekd.cli_options);
# only the flags that are not one field each are written here.
_TRAIN_PANELS = ("Model", "Distillation", "Data", "Schedule", "Loss", "Hardware", "Output")
# fields that are not plain flags in either command (hand-written below, or nested configs)
_TRAIN_EXCLUDE = ("model", "methods", "distill", "out")
_O_IOU = typer.Option(False, "--iou-loss", rich_help_panel="Loss",
                      help="Add the SAD paper's soft IoU loss with its weight 0.1 (as --iou-weight 0.1).")
_O_JSON = typer.Option(False, "--json", rich_help_panel="Output",
                       help="Print the final summary as one JSON document on stdout.")


def _train_config(train: dict[str, Any], iou_loss: bool, json_out: bool, **fixed: Any) -> Any:
    """A TrainConfig from the generated flags (``train``) and the command's own values."""
    from lanekd.engine import TrainConfig

    kw = {**train, **fixed}
    if kw["iters"] is None and kw["epochs"] is None:
        if kw["data"] is not None:
            raise typer.BadParameter("give --iters or --epochs", param_hint="--iters")
        kw["iters"] = 200
    if iou_loss and not kw["iou_weight"]:
        kw["iou_weight"] = 0.1
    kw["quiet"] = kw["quiet"] or json_out
    return TrainConfig(**kw)


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


def _train_flags(*exclude: str) -> FieldFlags:
    from lanekd.engine.config import TrainConfig

    return FieldFlags(TrainConfig, "train", exclude=_TRAIN_EXCLUDE + exclude)


@app.command("train-teacher")
@config_flags(_train_flags("teacher", "cache_teacher"), panels=_TRAIN_PANELS)
def train_teacher_cmd(
    model: str = typer.Option("resnet18", "--model", metavar="NAME", rich_help_panel="Model",
                              help="Teacher architecture (see `lanekd models`)."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR", rich_help_panel="Output",
                                    help="Output folder (default runs/teacher-MODEL). best.pt is the "
                                    "best-scoring checkpoint with --val, else the final weights."),
    iou_loss: bool = _O_IOU, json_out: bool = _O_JSON, train: dict[str, Any] | None = None,
) -> None:
    """Train a teacher network (RGB, or label-input for LGAD)."""
    assert train is not None
    label = train["label_input"]
    out = out or Path("runs") / (f"teacher-{model}" + ("-label" if label else ""))
    cfg = _train_config(train, iou_loss, json_out, model=model, out=str(out))
    _run_training(cfg, f"teacher {model}" + (" (label input)" if label else ""), json_out)


# === distill ===
def _distill_panel(name: str) -> str:
    """Help panel of a DistillConfig field: its method's (by the registry's field prefix), else
    "Distillation" (so a new field always gets a flag)."""
    from lanekd.distill.methods import methods

    sections = sorted(methods(), key=lambda m: -len(m.section))  # intra_kd_ before kd_
    return next((_method_panel(m.name) for m in sections if name.startswith(m.section + "_")),
                "Distillation")


def _method_panel(name: str) -> str:
    return f"--method {name}"


def _method_panels() -> tuple[str, ...]:
    from lanekd.distill.methods import methods

    return tuple(_method_panel(m.name) for m in methods())


def _distill_flags() -> FieldFlags:
    from lanekd.distill.config import DistillConfig

    return FieldFlags(DistillConfig, "distill", aliases={"intra_kd_alpha": ("--alpha",)},
                      panel=_distill_panel)


def _parse_methods(value: str) -> list[str]:
    """``--method`` as validated method names; a bad name is a usage error (exit 2)."""
    from lanekd.distill.methods import parse_methods

    try:
        return parse_methods(value)
    except LaneKDError as e:
        raise typer.BadParameter(str(e)) from None


def _method_help() -> str:
    from lanekd.distill.methods import method_help

    return method_help()


@app.command("distill")
@config_flags(_train_flags("label_input"), _distill_flags(),
              panels=_TRAIN_PANELS + _method_panels())
def distill_cmd(
    method: str = typer.Option("sad", "--method", metavar="NAMES", rich_help_panel="Distillation",
                               help=_method_help()),
    student: str = typer.Option("enet-sad", "--student", metavar="NAME", rich_help_panel="Model",
                                help="Student architecture (see `lanekd models`)."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR", rich_help_panel="Output",
                                    help="Output folder (default runs/distill-METHOD-STUDENT). best.pt is "
                                    "the best-scoring checkpoint with --val, else the final weights."),
    iou_loss: bool = _O_IOU, json_out: bool = _O_JSON,
    train: dict[str, Any] | None = None, distill: dict[str, Any] | None = None,
) -> None:
    """Train a student with one or more distillation methods."""
    from lanekd.distill import DistillConfig

    assert train is not None and distill is not None
    methods = _parse_methods(method)
    name = "+".join(methods) if methods else "none"
    out = out or Path("runs") / f"distill-{name.replace('+', '-')}-{student}"
    cfg = _train_config(train, iou_loss, json_out, model=student, methods=methods,
                        distill=DistillConfig.from_dict(distill), out=str(out))
    _run_training(cfg, f"distill {name} -> {student}", json_out)


# === demo ===
@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Output folder (report.md, figures, runs)."),
    quick: bool = typer.Option(False, "--quick", help="Small budget: finishes in under 10 minutes on 2 CPU "
                               "cores (the numbers are then only indicative)."),
    scratch: bool = typer.Option(False, "--from-scratch", help="Train every network from scratch (ResNet-18 "
                                 "teacher, 6000 iterations per student; meant for a GPU) instead of "
                                 "fine-tuning the zoo's enet-sad-synthetic."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    workers: int = typer.Option(2, "--workers", min=0, help="DataLoader worker processes."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data and of the teachers; students use "
                             "SEED, SEED+1, ..."),
    seeds: int | None = typer.Option(None, "--seeds", min=1, help="Seeds per student method (default: "
                                     "1 with --quick, 3 full); the report gives mean ± std over them."),
    quiet: bool = typer.Option(False, "--quiet", help="Only the one-line summary."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as one JSON document on stdout."),
) -> None:
    """Run the end-to-end demo on synthetic data and write a report."""
    from lanekd.engine import TrainingInterrupted
    from lanekd.engine.demo import DemoConfig, run_demo

    try:
        if quick and scratch:
            raise typer.BadParameter("--quick fine-tunes the zoo weights; it cannot be --from-scratch",
                                     param_hint="--from-scratch")
        result = run_demo(DemoConfig(out=str(out), quick=quick, scratch=scratch, device=device,
                                     workers=workers, seed=seed,
                                     quiet=quiet or json_out,
                                     overrides={"seeds": tuple(range(seeds))} if seeds else {}))
    except TrainingInterrupted as e:
        err(f"error: {e} (rerun `lanekd demo` to continue)")
        raise typer.Exit(e.exit_code) from None
    if json_out:
        print_json(result)
        return
    if not quiet:
        from lanekd.engine.demo import statement

        for line in statement(result["summary"]):
            typer.echo(line)
    typer.echo(f"demo finished in {result['elapsed_s']:.0f}s: report {result['report']}")


# === export ===
@app.command("export")
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="A lanekd training checkpoint (last.pt / best.pt)."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript.",
                            callback=one_of("lanekd.export.core:FORMATS")),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.onnx / .pt)."),
    opset: int = typer.Option(18, "--opset", min=18, help="ONNX opset version (18 is native to the exporter, "
                              "which cannot write older opsets)."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Export with a symbolic batch size."),
    input_size: str | None = typer.Option(None, "--input-size",
                                          help="HxW; must equal the checkpoint's (the existence branch "
                                               "is built for one size). Default: the checkpoint's."),
    check_image: list[Path] = typer.Option([], "--check-image",
                                           help="Extra real image(s) to compare PyTorch and the export on."),
    tolerance: float = typer.Option(1e-4, "--tolerance", min=0.0,
                                    help="Max abs difference allowed (float32)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Export a checkpoint to ONNX or TorchScript, checked against PyTorch (fails above --tolerance)."""
    from lanekd.export.core import export_model
    from lanekd.inference import load_checkpoint_model, meta_from_checkpoint
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


# === predict / visualize / bench ===
@app.command("predict")
def predict_cmd(
    model: Path = typer.Argument(..., help="Checkpoint (.pt), ONNX (.onnx) or TorchScript file."),
    inputs: list[str] = typer.Argument(..., help="Images, folders, glob patterns or video files."),
    out: str = typer.Option(..., "--out", "-o", help="Output folder ('-' = stdout, json format only)."),
    fmt: str = typer.Option("culane", "--format", "-f", help="culane, tusimple, overlay or json.",
                            callback=one_of("lanekd.predict.run:FORMATS")),
    batch: int = typer.Option(8, "--batch", "-b", help="Frames per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    no_spline: bool = typer.Option(False, "--no-spline", help="Output the raw 20-px row points."),
    threshold: float | None = typer.Option(None, "--threshold",
                                           help="Point threshold on the smoothed map (profile default 0.3)."),
    exist_threshold: float | None = typer.Option(None, "--exist-threshold",
                                                 help="Lane existence threshold (profile default 0.5)."),
    on_error: str = typer.Option("fail", "--on-error", help="fail or skip unreadable inputs."),
    root: Path | None = typer.Option(None, "--root", help="Mirror input paths relative to this dataset "
                                                        "root (predict DATA/driver_x/test, evaluate "
                                                        "--gt DATA); inputs must lie under it."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (on stderr with --out -)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary."),
) -> None:
    """Detect lanes in images, folders, globs or videos and write them in a benchmark format."""
    from lanekd.inference import load_backend
    from lanekd.predict.run import predict

    if on_error not in ("fail", "skip"):
        raise typer.BadParameter("must be fail or skip", param_hint="--on-error")
    backend = load_backend(model, device)
    options = {k: v for k, v in (("threshold", threshold), ("exist_threshold", exist_threshold))
               if v is not None}
    summary = predict(backend, inputs, out, fmt=fmt, batch=batch, on_error=on_error,
                      spline=not no_spline, quiet=quiet, root=root, **options)
    info = summary.to_dict()
    if as_json:
        info["outputs"] = len(summary.outputs)
        typer.echo(json.dumps(info), err=out == "-")
    elif not quiet:
        err(f"{info['frames']} frame(s) from {info['images']} image(s) and {info['videos']} video(s), "
            f"{info['lanes']} lanes, {info['fps']} frames/s; {len(summary.skipped)} skipped; output: {out}")


visualize_app = App(help="Figures: attention maps of a model, prepared samples.",
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


zoo_app = App(help="Pretrained weights shipped with lanekd (synthetic data only, no download); "
                   "a zoo name works wherever a checkpoint does.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("list")
def zoo_list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the entries as JSON."),
) -> None:
    """The zoo's entries, whether their weights are installed, and their recorded scores."""
    from lanekd.zoo import list_entries

    entries = list_entries()
    if as_json:
        print_json(entries)
        return
    width = max((len(e["name"]) for e in entries), default=0)
    for e in entries:
        held = (e.get("scores") or {}).get("held_out_synthetic") or {}
        score = f"held-out synthetic F1 {held['f1']:.3f}" if "f1" in held else "not trained"
        if "accuracy" in (held.get("tusimple") or {}):
            score += f", TuSimple accuracy {held['tusimple']['accuracy']:.3f}"
        typer.echo(f"{e['name']:<{width}} {e['model']:<10} {'installed' if e['installed'] else 'missing':<9} "
                   f"{score}  ({e['command']})")
        typer.echo(f"  {e['description']}")


@zoo_app.command("train")
def zoo_train_cmd(
    name: str = typer.Argument(..., help="Zoo entry.", callback=one_of("lanekd.zoo:RECIPES")),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for NAME.pt and NAME.json "
                                    "(default: the package's zoo folder)."),
    workers: int = typer.Option(1, "--workers", help="DataLoader and prepare worker processes.", min=0),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print the card as JSON."),
) -> None:
    """Train a zoo entry from its recipe (synthetic data only; resumable) and write its card."""
    from lanekd.zoo.train import train_entry

    card = train_entry(name, out_dir=out, workers=workers, quiet=quiet or as_json)
    if as_json:
        print_json(card)
    else:
        f1 = card["scores"]["held_out_synthetic"]["f1"]
        err(f"{name}: held-out synthetic F1 {f1:.3f}; weights {card['size_bytes'] / 2**20:.1f} MB, "
            f"sha256 {card['sha256'][:12]}")


# === entry point ===
def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises for user errors); a plain ``lanekd
    evaluate`` runs without the Typer app (:mod:`lanekd.cli_fast`), the rest through it."""
    from lanekd import cli_fast

    return cli_fast.main(argv)


def typer_main(argv: list[str] | None = None) -> int:
    """:func:`main` through the Typer app, whatever the arguments."""
    import os

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # see lanekd.cli_fast.main
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
    except OSError as e:  # disk full, permission denied, ... while writing: one line, no traceback
        from lanekd.utils.io import os_error_message

        err(f"error: {os_error_message(None, e)}")
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
