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
def export_cmd() -> None:
    """Export a checkpoint to ONNX or TorchScript, checked against PyTorch."""
    _not_implemented("export", 6)


# === predict / visualize / bench (issue 6) ===
@app.command("predict")
def predict_cmd() -> None:
    """Detect lanes in images, folders, globs or videos."""
    _not_implemented("predict", 6)


@app.command("bench")
def bench_cmd() -> None:
    """Measure model-only and end-to-end latency."""
    _not_implemented("bench", 6)


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
