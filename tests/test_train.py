"""train-teacher / distill end to end on tiny prepared data: every method runs a few iterations
with the real models, decoder and evaluator; checkpoints load; flags map onto DistillConfig."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from tests.engine_data import make_tiny_h5

SIZE = (64, 160)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny")
    return {
        "train": make_tiny_h5(d / "train.h5", 8, seed=0),
        "val": make_tiny_h5(d / "val.h5", 3, seed=1, split="val"),
    }


@pytest.fixture(scope="module")
def teachers(tiny, tmp_path_factory) -> dict[str, Path]:
    from lanekd.engine import TrainConfig, train

    d = tmp_path_factory.mktemp("teachers")
    common = dict(data=str(tiny["train"]), iters=2, batch_size=4, workers=0, quiet=True)
    rgb = train(TrainConfig(model="enet", out=str(d / "rgb"), **common))
    lab = train(TrainConfig(model="enet-sad", label_input=True, out=str(d / "label"), **common))
    return {"rgb": Path(rgb.last_checkpoint), "label": Path(lab.last_checkpoint)}


def test_train_teacher_cli_and_checkpoint_loads(cli, tiny, tmp_path):
    out = tmp_path / "t"
    code, stdout, err = cli(
        "train-teacher",
        "--model",
        "enet",
        "--data",
        tiny["train"],
        "--val",
        tiny["val"],
        "--iters",
        "3",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    res = json.loads(stdout)
    assert res["iterations"] == 3 and res["metric"] == "culane_f1" and 0.0 <= res["final_value"] <= 1.0
    from lanekd.engine import load_checkpoint_model

    model, meta = load_checkpoint_model(out / "best.pt")
    assert not model.training and meta["model_args"]["name"] == "enet"
    assert meta["data_attrs"]["size"] == list(SIZE) and meta["data_attrs"]["num_slots"] == 4
    assert meta["data_attrs"]["profile"] == "culane" and len(meta["data_attrs"]["mean"]) == 3
    assert meta["metrics"]["metric"] == "culane_f1"
    out_t = model(torch.zeros(1, 3, *SIZE))
    assert out_t.seg.shape == (1, 5, *SIZE)
    rec = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rec[-1]["type"] == "val" and "categories" in rec[-1]


def test_label_input_teacher_takes_onehot(teachers):
    from lanekd.engine import load_checkpoint_model

    model, meta = load_checkpoint_model(teachers["label"])
    assert meta["model_args"]["in_channels"] == 5 and meta["config"]["label_input"] is True
    assert model(torch.zeros(1, 5, *SIZE)).seg.shape == (1, 5, *SIZE)


@pytest.mark.parametrize(
    "method,teacher",
    [
        ("none", None),
        ("sad", None),
        ("intra-kd", "rgb"),
        ("kd", "rgb"),
        ("at", "rgb"),
        ("lgad", "label"),
        ("sad,kd", "rgb"),
    ],
)
def test_every_method_runs(cli, tiny, teachers, tmp_path, method, teacher):
    out = tmp_path / "s"
    args = [
        "distill",
        "--method",
        method,
        "--student",
        "enet-sad",
        "--data",
        tiny["train"],
        "--iters",
        "3",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--out",
        out,
        "--sad-start",
        "1",
        "--json",
    ]
    if teacher:
        args += ["--teacher", teachers[teacher]]
    code, stdout, err = cli(*args)
    assert code == 0, err
    res = json.loads(stdout)
    rec = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last = rec[-1]
    for m in method.split(","):
        if m != "none":
            key = "loss_" + m.replace("-", "_")
            assert key in res["losses"], res["losses"]
            assert last[key] > 0, (key, last)
    assert last["loss_total"] == pytest.approx(
        sum(v for k, v in last.items() if k.startswith("loss_") and k != "loss_total"), rel=1e-5
    )


def test_cache_teacher(cli, tiny, teachers, tmp_path):
    out = tmp_path / "c"
    args = [
        "distill",
        "--method",
        "intra-kd",
        "--data",
        tiny["train"],
        "--iters",
        "2",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--out",
        out,
        "--teacher",
        teachers["rgb"],
        "--cache-teacher",
        "--json",
    ]
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert (out / "teacher_cache.h5").is_file()
    assert json.loads(stdout)["losses"]["loss_intra_kd"] > 0
    assert json.loads((out / "config.json").read_text())["cache_teacher"] is True


def test_errors_are_one_line(cli, tiny, tmp_path):
    code, _, err = cli(
        "distill", "--method", "intra-kd", "--data", tiny["train"], "--iters", "1", "--out", tmp_path / "x"
    )
    assert code == 1 and "needs --teacher" in err and "Traceback" not in err
    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    code, _, err = cli(
        "distill",
        "--method",
        "kd",
        "--teacher",
        bad,
        "--data",
        tiny["train"],
        "--iters",
        "1",
        "--out",
        tmp_path / "y",
    )
    assert code == 1 and "not a lanekd checkpoint" in err
    code, _, err = cli("distill", "--method", "bogus", "--data", tiny["train"], "--iters", "1")
    assert code == 2 and "unknown distillation method" in err  # a bad choice is a usage error
    code, _, err = cli("train-teacher", "--data", tmp_path / "missing.h5", "--iters", "1")
    assert code == 1 and "missing.h5" in err


def test_every_distill_config_field_has_a_flag():
    import typer.main

    from lanekd.cli import app
    from lanekd.distill import DistillConfig

    command = typer.main.get_command(app).commands["distill"]
    flags = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    helps = {opt: param.help for param in command.params for opt in param.opts}
    renamed = {"intra_kd_alpha": "--alpha"}
    for f in dataclasses.fields(DistillConfig):
        flag = renamed.get(f.name, "--" + f.name.replace("_", "-"))
        assert flag in flags, flag
        assert helps[flag], f"{flag} has no help text"


def test_scaled_lr_is_announced(cli, tiny, tmp_path):
    code, _, err = cli(
        "train-teacher",
        "--model",
        "enet",
        "--data",
        tiny["train"],
        "--iters",
        "1",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--out",
        tmp_path / "l",
        "--scale-lr",
    )
    assert code == 0 and "scaled linearly" in err


def test_progressive_resize_cli_trains_small_then_full(cli, tiny, tmp_path):
    """ENet-SAD with SAD, first 3 of 4 iterations at 32x80 (its existence head built for 64x160)."""
    out = tmp_path / "prog"
    code, stdout, err = cli(
        "distill", "--method", "sad", "--data", tiny["train"], "--val", tiny["val"], "--iters", "4",
        "--batch-size", "4", "--workers", "0", "--progressive-width", "80", "--out", out, "--json",
    )
    assert code == 0, err
    res = json.loads(stdout)
    assert res["iterations"] == 4 and 0.0 <= res["final_value"] <= 1.0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["progressive_width"] == 80 and cfg["progressive_fraction"] == 0.75
    code, _, err = cli(
        "distill", "--method", "kd", "--teacher", out / "last.pt", "--data", tiny["train"], "--iters", "1",
        "--progressive-width", "80", "--out", tmp_path / "kd",
    )
    assert code == 1 and "--progressive-width trains without a teacher; kd needs one" in err
    assert "Traceback" not in err


def test_bench_recipe_script_smoke(tmp_path, capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_recipe.py"
    spec = importlib.util.spec_from_file_location("bench_recipe", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        rows = bench.main(["--iters", "8", "--seeds", "0", "--n-train", "8", "--n-val", "2", "--work",
                           str(tmp_path), "--threads", str(threads)])
    finally:
        torch.set_num_threads(threads)
    assert [r["name"] for r in rows] == ["full-s0", "progressive-s0"]
    assert all(0.0 <= r["final_f1"] <= 1.0 and len(r["curve"]) == 8 for r in rows)
    configs = [json.loads((tmp_path / "runs" / n / "config.json").read_text())
               for n in ("full-s0", "progressive-s0")]
    assert [c["progressive_width"] for c in configs] == [0, 256]
    assert "progressive / full-size: wall x" in capsys.readouterr().out
