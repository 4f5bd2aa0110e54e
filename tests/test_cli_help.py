"""``--help`` of every command reads at 80 columns: full option names, no line over 80 characters,
no value placeholder on flags, no references users cannot follow; flags come from config fields."""

from __future__ import annotations

import dataclasses
import re

import pytest
import typer.main

from lanekd.cli import app

ROOT = typer.main.get_command(app)


def _commands(group, path=()):
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(ROOT))
# text a user cannot act on: a spec they do not have, issue numbers, Rich markup that ate a word
BANNED = re.compile(r"METHODS §|spec/|\bissue \d|#\d+\b|\(needs lanekd\)|<bool>")


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "lanekd" for p, _ in COMMANDS])
def test_help_reads_at_80_columns(cli, monkeypatch, path, command):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = cli(*path, "--help")
    assert code == 0, err
    lines = out.splitlines()
    assert lines, "empty help"
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, too_long
    assert "…" not in out, [line for line in lines if "…" in line]
    assert not BANNED.search(out), BANNED.search(out)
    text = re.sub(r"[│╭╮╰╯─\s]+", " ", out)
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        for opt in param.opts:
            if opt.startswith("--"):
                assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text), f"{opt} not shown in full"


def _flags(name: str) -> set[str]:
    command = ROOT.commands[name]
    return {opt for param in command.params for opt in param.opts + param.secondary_opts}


def test_every_train_config_field_has_a_flag():
    from lanekd.engine.config import TrainConfig

    # fields that are not one flag each: the model is --model/--student, methods is --method, and
    # distill's fields are flags of their own (next test)
    by_hand = {"model": ("--model", "--student"), "methods": ("--method",), "distill": ()}
    flags = _flags("train-teacher") | _flags("distill")
    for f in dataclasses.fields(TrainConfig):
        wanted = by_hand.get(f.name, ("--" + f.name.replace("_", "-"),))
        assert all(w in flags for w in wanted), (f.name, wanted)
    assert "--teacher" not in _flags("train-teacher") and "--label-input" not in _flags("distill")


def test_every_distill_config_field_has_a_flag_with_help():
    from lanekd.distill.config import DistillConfig

    command = ROOT.commands["distill"]
    helps = {opt: param.help for param in command.params for opt in param.opts}
    flags = _flags("distill")
    for f in dataclasses.fields(DistillConfig):
        flag = "--" + f.name.replace("_", "-")
        assert flag in flags and helps[flag], flag
        if f.type in ("bool", "bool | None"):
            assert "--no-" + flag[2:] in flags, flag


def test_bool_flags_toggle_and_values_reach_the_config(monkeypatch):
    """``--x``/``--no-x``, choices, HxW and KEY=VALUE land in the configs with the fields' types."""
    import lanekd.cli as cli_mod

    seen = {}
    monkeypatch.setattr(cli_mod, "_run_training", lambda cfg, title, json_out: seen.setdefault("cfg", cfg))
    code = cli_mod.main(["distill", "--method", "sad", "--no-sad-detach", "--sad-label-mimic", "--alpha",
                         "0.5", "--sad-aggregation", "mean", "--no-augment", "--synthetic-size", "72x200",
                         "--model-options", "pretrained=false", "--optimizer", "adamw", "--sad-blocks",
                         "block2, block3", "--iou-loss"])
    assert code == 0
    cfg = seen["cfg"]
    d = cfg.distill
    assert d.sad_detach is False and d.sad_label_mimic is True and d.intra_kd_alpha == 0.5
    assert d.sad_aggregation == "mean" and d.sad_blocks == ("block2", "block3")
    assert cfg.augment is False and cfg.synthetic_size == (72, 200) and cfg.optimizer == "adamw"
    assert cfg.model_options == {"pretrained": False} and cfg.iou_weight == 0.1 and cfg.iters == 200
    seen.clear()
    assert cli_mod.main(["train-teacher", "--label-input", "--nesterov", "--quiet"]) == 0
    cfg = seen["cfg"]
    assert cfg.label_input is True and cfg.nesterov is True and cfg.augment is True and cfg.quiet is True
    assert cfg.model == "resnet18" and cfg.out.endswith("teacher-resnet18-label") and cfg.lr is None


@pytest.mark.parametrize(
    "args",
    [
        ("distill", "--method", "bogus"),
        ("distill", "--optimizer", "foo"),
        ("train-teacher", "--schedule", "linear"),
        ("train-teacher", "--amp", "fp8"),
        ("distill", "--sad-aggregation", "max"),
        ("train-teacher", "--workers", "-1"),
        ("train-teacher", "--synthetic-size", "72by200"),
        ("export", "missing.pt", "--format", "tflite", "--out", "x.tflite"),
    ],
)
def test_bad_choice_is_a_usage_error(cli, args):
    code, _, err = cli(*args)
    assert code == 2, err
    assert "Traceback" not in err and "Invalid value" in err
