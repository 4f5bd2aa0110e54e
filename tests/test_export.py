import json

import numpy as np
import pytest

from tests.helpers_models import SMALL, make_checkpoint

STUDENTS = ("enet", "enet-sad", "erfnet")


def _frame(seed: int = 0) -> np.ndarray:
    from lanekd.data.synthetic import render_scene

    return render_scene(seed, 0, "test").image


@pytest.mark.parametrize("name", STUDENTS)
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_round_trip_matches_pytorch(tmp_path, cli, name, fmt):
    ckpt = make_checkpoint(tmp_path / "m.pt", name)
    out = tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'ts'}"
    code, stdout, err = cli("export", ckpt, "--format", fmt, "--out", out, "--dynamic-batch", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["ok"] and report["max_abs_diff"] <= 1e-4
    assert set(report["checks"]) == {"random", "random_batch3"}
    assert out.is_file() and not list(tmp_path.glob(".*.tmp"))

    # the exported file decodes to the same lanes as the checkpoint, on a real-looking frame
    from lanekd.inference import load_backend
    from lanekd.predict.run import decode_batch

    frame = _frame()
    ref = decode_batch(load_backend(ckpt), [frame], threshold=0.1)[0]
    exp_backend = load_backend(out)
    assert exp_backend.meta.input_size == SMALL and exp_backend.meta.model == name
    got = decode_batch(exp_backend, [frame], threshold=0.1)[0]
    assert sum(len(lane) for lane in ref) > 0, "test model should produce lanes"
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_export_check_image_and_fixed_batch(tmp_path, cli):
    import cv2

    ckpt = make_checkpoint(tmp_path / "m.pt", "enet-sad")
    img = tmp_path / "frame.png"
    cv2.imwrite(str(img), cv2.cvtColor(_frame(1), cv2.COLOR_RGB2BGR))
    out = tmp_path / "fixed.onnx"
    code, stdout, err = cli("export", ckpt, "--out", out, "--check-image", img, "--json")
    assert code == 0, err
    assert set(json.loads(stdout)["checks"]) == {"random", "image0"}

    from lanekd.errors import LaneKDError
    from lanekd.inference import load_backend

    backend = load_backend(out)
    x = np.zeros((3, 3, *SMALL), np.float32)  # batch 3 through a batch-1 graph: chunked
    seg, exist = backend.run(x)
    assert seg.shape == (3, 5, *SMALL) and exist.shape == (3, 4)
    with pytest.raises(LaneKDError, match=r"expects input 64x160, got 32x160"):
        backend.run(np.zeros((1, 3, 32, 160), np.float32))


def test_export_rejects_bad_inputs(tmp_path, cli):
    bogus = tmp_path / "not_a_checkpoint.pt"
    bogus.write_bytes(b"hello")
    code, _, err = cli("export", bogus, "--out", tmp_path / "x.onnx")
    assert code == 1 and "not_a_checkpoint.pt" in err and "Traceback" not in err
    ckpt = make_checkpoint(tmp_path / "m.pt", "enet")
    code, _, err = cli("export", ckpt, "--format", "tflite", "--out", tmp_path / "x.tflite")
    assert code == 2 and "tflite" in err  # a --format outside the choices is a usage error
    code, _, err = cli("export", ckpt, "--out", tmp_path / "x.onnx", "--input-size", "128x320")
    assert code == 2 and "64x160" in err
    assert not (tmp_path / "x.onnx").exists()


def test_export_fails_above_tolerance(tmp_path):
    from lanekd.engine import load_checkpoint_model
    from lanekd.errors import LaneKDError
    from lanekd.export.core import export_model
    from lanekd.inference import meta_from_checkpoint

    ckpt = make_checkpoint(tmp_path / "m.pt", "enet")
    model, meta = load_checkpoint_model(ckpt)
    out = tmp_path / "m.ts"
    with pytest.raises(LaneKDError, match="differs from PyTorch"):
        export_model(model, meta_from_checkpoint(meta, ckpt), out, fmt="torchscript", tolerance=-1.0)
    assert not out.exists()
