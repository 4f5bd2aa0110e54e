import json
import os
import subprocess
import sys
from pathlib import Path

import lanekd

REPO = Path(__file__).resolve().parents[1]


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0
    assert out.strip() == f"lanekd {lanekd.__version__}"


def test_help_lists_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for name in ("prepare", "train-teacher", "distill", "evaluate", "export", "info"):
        assert name in out


def test_cli_import_does_not_import_torch():
    code = "import sys, lanekd.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unknown_option_is_usage_error(cli):
    code, _, err = cli("info", "--no-such-option")
    assert code == 2
    assert "no-such-option" in err.lower() or "no such option" in err.lower()


TOUR = REPO / "examples" / "tour.sh"
MARKER = "# --- Tour ---\n"


def _readme_tour() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Tour\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("```\n", 1)[0]


def test_readme_tour_is_the_script():
    assert _readme_tour() == TOUR.read_text().split(MARKER, 1)[1]


def test_tour_runs_as_written(tmp_path):
    """Every Tour line, in order, on tiny synthetic data (the script stops at the first failure)."""
    env = {**os.environ, "N": "8", "ITERS": "2", "SIZE": "64x160", "TOUR_DIR": str(tmp_path),
           "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(TOUR)], env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("runs/label-teacher/best.pt", "runs/lgad/best.pt", "enet_sad.onnx", "attention.png",
                 "pred/driver_synth/test/000000.lines.txt"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "lanes.json").read_text().splitlines()[0])


def test_best_checkpoint_without_validation_is_the_final_weights(cli, tmp_path):
    from lanekd.engine import read_checkpoint
    from tests.engine_data import make_tiny_h5

    data = make_tiny_h5(tmp_path / "t.h5", 4, seed=0)
    code, out, err = cli("train-teacher", "--model", "enet", "--data", data, "--iters", "2",
                         "--batch-size", "2", "--workers", "0", "--out", tmp_path / "r", "--json")
    assert code == 0, err
    assert json.loads(out)["best_checkpoint"] == str(tmp_path / "r" / "best.pt")
    best, last = read_checkpoint(tmp_path / "r" / "best.pt"), read_checkpoint(tmp_path / "r" / "last.pt")
    assert best["iteration"] == last["iteration"] == 2
