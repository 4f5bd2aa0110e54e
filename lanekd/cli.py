"""The ``lanekd`` command line. Thin: parse options, call the library, print.

Rules every command follows:

* no torch import at module level (``lanekd --help`` and ``lanekd info`` stay fast); import the
  library inside the command body;
* bad input raises :class:`lanekd.errors.LaneKDError`; :func:`main` prints it as one line on
  stderr and exits 1 (no traceback); a command not implemented yet exits 2;
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
from lanekd.errors import LaneKDError, NotImplementedCommand

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


def _not_implemented(command: str, issue: int) -> None:
    raise NotImplementedCommand(f"`lanekd {command}` is not implemented yet (issue #{issue})")


# === prepare (issue 2) ===
@app.command("prepare")
def prepare_cmd() -> None:
    """Convert a dataset into lanekd's HDF5 format."""
    _not_implemented("prepare", 2)


# === info (issue 2) ===
@app.command("info")
def info_cmd() -> None:
    """Print the attributes and sample count of a prepared HDF5 file."""
    _not_implemented("info", 2)


# === models (issue 3) ===
@app.command("models")
def models_cmd() -> None:
    """List every model with parameters and GFLOPs."""
    _not_implemented("models", 3)


# === evaluate (issue 4) ===
@app.command("evaluate")
def evaluate_cmd() -> None:
    """Score predictions with a benchmark's official metric."""
    _not_implemented("evaluate", 4)


# === train-teacher (issue 5) ===
@app.command("train-teacher")
def train_teacher_cmd() -> None:
    """Train a teacher network (RGB or label-input for LGAD)."""
    _not_implemented("train-teacher", 5)


# === distill (issue 5) ===
@app.command("distill")
def distill_cmd() -> None:
    """Train a student with one or more distillation methods."""
    _not_implemented("distill", 5)


# === demo (issue 5) ===
@app.command("demo")
def demo_cmd() -> None:
    """Run the end-to-end demo on synthetic data and write a report."""
    _not_implemented("demo", 5)


# === export (issue 6) ===
@app.command("export")
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="A lanekd training checkpoint (last.pt / best.pt)."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.onnx / .pt)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
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
    summary = predict(backend, inputs, out, fmt=fmt, batch=batch, on_error=on_error,
                      spline=not no_spline, quiet=quiet)
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
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """The SAD attention map of each block side by side, as in the SAD paper's figure."""
    from lanekd.predict.inputs import read_image
    from lanekd.predict.visualize import attention_figure, save_rgb

    names = tuple(b.strip() for b in blocks.split(",") if b.strip()) if blocks else None
    save_rgb(out, attention_figure(checkpoint, read_image(image), device=device, blocks=names))
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
    except NotImplementedCommand as e:
        err(f"error: {e}")
        return 2
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
