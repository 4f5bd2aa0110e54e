"""The ``lanekd`` entry point: ``lanekd evaluate`` without building the Typer app.

Building the Typer app and coercing its options costs more than scoring a TuSimple test set (typer,
click and pydantic imports, one pydantic adapter per option), so :func:`main` reads the arguments of
``lanekd evaluate`` itself when they are plain: only ``--long VALUE``, ``--long=VALUE``, ``-b VALUE``
and flags, each option at most once, values that need no interpretation (numbers as plain decimals,
no value starting with ``-``), a known benchmark and metric. Anything else - ``--help``, another
command, an unknown or repeated option, a missing one, a value Typer would have to judge - goes to
:func:`lanekd.cli.typer_main`, so help, usage errors and their exit codes are Typer's own. The command
body (:func:`run_evaluate`) is shared by both ways in.

This module imports neither typer nor numpy; the benchmark's module is imported when it scores.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lanekd.errors import LaneKDError

# option name -> (parameter, kind); kinds: flag, str, path, float, int
_EVAL_OPTIONS: dict[str, tuple[str, str]] = {
    "--benchmark": ("benchmark", "str"), "-b": ("benchmark", "str"),
    "--gt": ("gt", "path"), "--pred": ("pred", "path"), "--list": ("list_file", "path"),
    "--split-dir": ("split_dir", "path"), "--iou": ("iou", "float"), "--width": ("width", "int"),
    "--workers": ("workers", "str"), "--rasterizer": ("rasterizer", "str"), "--strict": ("strict", "flag"),
    "--background": ("background", "int"), "--metric": ("metric", "str"),
    "--per-image": ("per_image", "flag"), "--json": ("as_json", "flag"), "--quiet": ("quiet", "flag"),
}
#: the defaults of ``lanekd evaluate`` (lanekd.cli.evaluate_cmd declares the same; a test compares them)
EVAL_DEFAULTS: dict[str, Any] = {
    "list_file": None, "split_dir": None, "iou": 0.5, "width": 30, "workers": "auto",
    "rasterizer": "opencv46", "strict": False, "background": 0, "metric": None, "per_image": False,
    "as_json": False, "quiet": False,
}
_REQUIRED = ("benchmark", "gt", "pred")
_PLAIN = {"int": re.compile(r"-?(?:0|[1-9][0-9]*)"), "float": re.compile(r"-?[0-9]+(?:\.[0-9]+)?")}


def parse_evaluate(argv: list[str]) -> dict[str, Any] | None:
    """The options of a plain ``lanekd evaluate`` command line (converted as Typer converts them),
    or None where Typer must decide (see the module docstring)."""
    if not argv or argv[0] != "evaluate":
        return None
    seen: dict[str, Any] = {}
    i = 1
    while i < len(argv):
        tok = argv[i]
        name, eq, value = tok.partition("=") if tok.startswith("--") else (tok, "", "")
        spec = _EVAL_OPTIONS.get(name)
        if spec is None:
            return None  # help, positional arguments, "--", unknown or attached short options
        param, kind = spec
        if param in seen:
            return None  # repeated: Typer's rules
        if kind == "flag":
            if eq:
                return None
            seen[param] = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(argv):
                return None
            value = argv[i + 1]
            i += 1
        i += 1
        if value.startswith("-") and kind not in _PLAIN or value in ("-h", "--help"):
            return None
        if kind in _PLAIN:
            if not _PLAIN[kind].fullmatch(value):
                return None
            seen[param] = int(value) if kind == "int" else float(value)
        elif kind == "path":
            if not value:
                return None
            seen[param] = Path(value)
        else:
            seen[param] = value
    if any(p not in seen for p in _REQUIRED):
        return None
    return {**EVAL_DEFAULTS, **seen}


def _echo(message: str, err: bool = False) -> None:
    """``typer.echo``: the line and a newline, flushed (click itself where it would strip styles)."""
    if "\x1b" in message:
        import typer

        typer.echo(message, err=err)
        return
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def json_text(obj: Any) -> str:
    """The ``--json`` document of ``obj`` (paths as text, arrays as lists, NaN/inf as null).

    The first two levels of dicts are indented; anything deeper is written on one line. Besides
    keeping a per-image table at one image per line, this lets json's C encoder write the bulk:
    with ``indent`` it falls back to the pure-Python one (0.09 s for 3000 CULane images of 5-8
    lanes, against 0.02 s).
    """
    try:
        return _indented(obj, 0)
    except ValueError:  # NaN or inf somewhere: rare, so only then walk the document
        return _indented(json_safe(obj), 0)


def _indented(obj: Any, level: int) -> str:
    if level < 2 and isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        pad = "  " * (level + 1)
        items = [f"{pad}{json.dumps(k)}: {_indented(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    return json.dumps(obj, default=_json_default, allow_nan=False)


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None so ``--json`` output is valid JSON."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (int, float)):  # numpy arrays and scalars
        return json_safe(obj.tolist())
    return obj


def run_evaluate(bench: Any, metric: str | None, gt: Path, pred: Path, *, list_file: Path | None,
                 split_dir: Path | None, iou: float, width: int, workers: str, rasterizer: str,
                 strict: bool, background: int, per_image: bool, as_json: bool, quiet: bool,
                 echo: Callable[..., None] = _echo) -> None:
    """The body of ``lanekd evaluate`` once the benchmark and its metric are known: score, print."""
    from lanekd.evaluate import registry
    from lanekd.evaluate._malloc import keep_freed_memory

    keep_freed_memory()  # a one-shot command: no page faults for every batch's arrays
    opts = registry.EvalOptions(list_file=list_file, split_dir=split_dir, iou=iou, width=width,
                                workers=workers, rasterizer=rasterizer, strict=strict,
                                background=background, metric=metric, per_image=per_image)
    result = bench.evaluate(gt, pred, opts)
    for message in bench.warnings(result):
        echo(f"warning: {message}", err=True)  # also with --json: never score silently
    table = None if as_json or quiet else bench.format(result, opts)
    if as_json:
        echo(json_text(result))
    elif quiet or isinstance(table, str):
        echo(bench.summary(result, opts) if quiet else table)
    else:
        from rich.console import Console

        Console().print(table)
        echo(bench.summary(result, opts))


def _fast_evaluate(argv: list[str]) -> int | None:
    """Exit code of a plain ``lanekd evaluate`` run here, or None to leave it to Typer."""
    args = parse_evaluate(argv)
    if args is None:
        return None
    from lanekd.errors import ConfigError
    from lanekd.evaluate import registry

    try:
        bench = registry.get_benchmark(args.pop("benchmark"))
        metric = bench.check_metric(args.pop("metric"))
    except ConfigError:
        return None  # Typer reports it as a usage error
    try:
        run_evaluate(bench, metric, args.pop("gt"), args.pop("pred"), **args)
    except LaneKDError as e:
        _echo(f"error: {e}", err=True)
        return 1
    except OSError as e:  # as lanekd.cli.typer_main: one line, no traceback
        from lanekd.utils.io import os_error_message

        _echo(f"error: {os_error_message(None, e)}", err=True)
        return 1
    except KeyboardInterrupt:
        _echo("Interrupted.", err=True)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises for user errors)."""
    args = sys.argv[1:] if argv is None else list(argv)
    # FFmpeg (inside OpenCV) logs its own lines, e.g. "moov atom not found" for a file that is not a
    # video, before lanekd's one-line error; silence it unless the user asks for its log level.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    code = _fast_evaluate(args)
    if code is not None:
        return code
    from lanekd.cli import typer_main

    return typer_main(args)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
