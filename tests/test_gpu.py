"""CUDA paths: AMP (bf16, fp16 + GradScaler), channels_last, CUDA inference and export checks.

Skipped without a GPU (CI has none); run on a GPU machine with ``pytest -m gpu``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.engine_data import make_tiny_h5
from tests.helpers_models import make_checkpoint

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpu")
    return make_tiny_h5(d / "train.h5", 8, seed=0), make_tiny_h5(d / "val.h5", 3, seed=1, split="val")


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_distill_on_cuda_with_amp_and_channels_last(cli, tiny, tmp_path, amp):
    train, val = tiny
    out = tmp_path / amp
    code, stdout, err = cli("distill", "--method", "sad", "--sad-start", "0", "--data", train, "--val", val,
                            "--iters", "4", "--batch-size", "4", "--workers", "0", "--device", "cuda",
                            "--amp", amp, "--channels-last", "--out", out, "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["iterations"] == 4
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["type"] == "train"]
    assert train_records and all(np.isfinite(r["loss_total"]) for r in train_records)
    assert any(r["loss_sad"] > 0 for r in train_records)
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    if amp == "fp16":
        assert ckpt.get("scaler"), "fp16 runs save the GradScaler state"
    from lanekd.engine import load_checkpoint_model

    model, _ = load_checkpoint_model(out / "last.pt", device="cpu")  # a CUDA run loads on CPU
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_cuda_inference_matches_cpu(tmp_path):
    from lanekd.inference import load_backend

    ckpt = make_checkpoint(tmp_path / "m.pt", "enet-sad")
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 160)).astype(np.float32)
    seg_cpu, ex_cpu = load_backend(ckpt, "cpu").run(x)
    seg_gpu, ex_gpu = load_backend(ckpt, "cuda").run(x)
    np.testing.assert_allclose(seg_gpu, seg_cpu, atol=1e-3)
    np.testing.assert_allclose(ex_gpu, ex_cpu, atol=1e-3)


def test_bench_on_cuda(cli):
    code, stdout, err = cli("bench", "enet-sad", "--input-size", "64x160", "--device", "cuda", "--runs", "3",
                            "--warmup", "1", "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["device"] == "cuda" and res["model_only"]["median_ms"] > 0
