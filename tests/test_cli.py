import subprocess
import sys

import lanekd


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
