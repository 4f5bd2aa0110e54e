"""``lanekd evaluate`` without the Typer app (lanekd.cli_fast): the same output, exit code and errors as
through Typer, for every argument list; anything not plain is left to Typer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from lanekd import cli, cli_fast
from tests.test_eval_registry import CASES


def _run(fn, capsys, args):
    code = fn([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("bench,metric", list(CASES))
@pytest.mark.parametrize("mode", [(), ("--quiet",), ("--json",), ("--json", "--per-image")])
def test_fast_path_prints_what_typer_prints(capsys, tmp_path, monkeypatch, bench, metric, mode):
    monkeypatch.setenv("COLUMNS", "100")
    gt, pred = CASES[(bench, metric)][0](tmp_path)
    args = ["evaluate", "-b", bench, "--gt", gt, "--pred", pred, *mode]
    args += ["--metric", metric] if metric else []
    assert cli_fast.parse_evaluate([str(a) for a in args]) is not None
    fast = _run(cli_fast.main, capsys, args)
    assert fast == _run(cli.typer_main, capsys, args)
    assert fast[0] == 0


@pytest.mark.parametrize("extra", [
    [],  # missing --pred: usage error
    ["--pred", "{root}/nope.json"],  # a DataError: exit 1
    ["--pred", "{pred}", "--iou", "abc"],
    ["--pred", "{pred}", "--iou", "1e-1"],
    ["--pred", "{pred}", "--width", "030"],
    ["--pred", "{pred}", "--metric", "ap"],
    ["--pred", "{pred}", "--help"],
    ["--pred", "{pred}", "-h"],
    ["--pred", "{pred}", "--json=1"],
    ["--pred", "{pred}", "--quiet", "--quiet"],
    ["--pred", "{pred}", "extra"],
    ["--pred", "{pred}", "--nosuch"],
    ["--pred=", "--quiet"],
    ["--pred={pred}", "--width=30", "--iou=0.5", "--quiet"],
    ["--pred", "{pred}", "--workers", "-1", "--quiet"],
    ["--pred", "{pred}", "--quiet", "--"],
])
def test_errors_help_and_odd_arguments_match_typer(capsys, tmp_path, monkeypatch, extra):
    monkeypatch.setenv("COLUMNS", "100")
    gt, pred = CASES[("tusimple", None)][0](tmp_path)
    args = ["evaluate", "-b", "tusimple", "--gt", str(gt)]
    args += [a.format(root=tmp_path, pred=pred) for a in extra]
    assert _run(cli_fast.main, capsys, args) == _run(cli.typer_main, capsys, args)


def test_unknown_benchmark_and_other_commands_go_to_typer(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    for args in (["evaluate", "-b", "nosuch", "--gt", "a", "--pred", "b"], ["--version"], ["models", "-h"],
                 []):
        assert _run(cli_fast.main, capsys, args) == _run(cli.typer_main, capsys, args)


def test_parse_evaluate_reads_values_as_typer_does():
    got = cli_fast.parse_evaluate(["evaluate", "--benchmark", "culane", "--gt", "g", "--pred=p", "--iou",
                                   "0.7", "--width", "-3", "--strict", "--list", "l.txt"])
    assert got == {**cli_fast.EVAL_DEFAULTS, "benchmark": "culane", "gt": Path("g"), "pred": Path("p"),
                   "iou": 0.7, "width": -3, "strict": True, "list_file": Path("l.txt")}
    for bad in (["evaluate", "-bculane", "--gt", "g", "--pred", "p"], ["evaluate", "--gt", "g", "--pred"],
                ["evaluate", "-b", "x", "--gt", "g", "--pred", "p", "--list", "-x"], ["predict", "x"]):
        assert cli_fast.parse_evaluate(bad) is None


def test_defaults_and_options_are_the_commands():
    command = typer.main.get_command(cli.app).commands["evaluate"]
    params = {p.name: p for p in command.params}
    assert {p.name: p.default for p in command.params if not p.required} == cli_fast.EVAL_DEFAULTS
    opts = {o: p.name for p in command.params for o in p.opts}
    assert opts == {name: param for name, (param, _) in cli_fast._EVAL_OPTIONS.items()}
    flags = {p.name for p in command.params if p.is_flag}
    assert flags == {param for param, kind in cli_fast._EVAL_OPTIONS.values() if kind == "flag"}
    assert {p for p in params if params[p].required} == set(cli_fast._REQUIRED)


def test_evaluate_imports_no_typer_torch_or_scipy(tmp_path):
    gt, pred = CASES[("tusimple", None)][0](tmp_path)
    code = ("import sys; from lanekd.cli_fast import main; "
            f"rc = main(['evaluate', '-b', 'tusimple', '--gt', {str(gt)!r}, '--pred', {str(pred)!r}]); "
            "heavy = [m for m in ('typer', 'click', 'pydantic', 'torch', 'scipy', 'cv2') "
            "if m in sys.modules]; "
            "sys.exit(rc or len(heavy))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_json_text_round_trips_and_writes_deep_tables_one_entry_per_line() -> None:
    import json
    import math

    import numpy as np

    doc = {"benchmark": "culane", "path": Path("a/b"), "overall": {"tp": 3, "f1": 0.5, "nan": math.nan},
           "images": {f"img{i}": {"tp": i, "iou": [[0.25, None], [math.inf, 1.0]]} for i in range(3)},
           "array": np.array([1.5, np.nan]), "ints": {1: "non-str key"}, "empty": {}}
    want = {"benchmark": "culane", "path": "a/b", "overall": {"tp": 3, "f1": 0.5, "nan": None},
            "images": {f"img{i}": {"tp": i, "iou": [[0.25, None], [None, 1.0]]} for i in range(3)},
            "array": [1.5, None], "ints": {"1": "non-str key"}, "empty": {}}
    text = cli_fast.json_text(doc)
    assert json.loads(text) == want  # strict JSON: NaN / inf would not parse as null
    assert "NaN" not in text and "Infinity" not in text
    lines = text.splitlines()
    assert '    "img1": {"tp": 1, "iou": [[0.25, null], [null, 1.0]]},' in lines
    assert '  "benchmark": "culane",' in lines
    clean = {"a": {"b": [1, 2]}, "c": 1.0}
    assert json.loads(cli_fast.json_text(clean)) == clean
