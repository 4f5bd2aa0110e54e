"""Shared pytest fixtures: paths to ../shared (skipped when absent) and CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LANEKD_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (real dataset samples, golden vectors); skips the test when absent."""
    if not (SHARED / "realdata").is_dir():
        pytest.skip("../shared is absent (only the developers' checkout has it)")
    return SHARED


@pytest.fixture(scope="session")
def realdata(shared_dir: Path) -> Path:
    return shared_dir / "realdata"


@pytest.fixture(scope="session")
def golden(shared_dir: Path) -> Path:
    return shared_dir / "golden"


@pytest.fixture
def cli(capsys):
    """Run ``lanekd`` in-process: ``code, out, err = cli("info", "x.h5")``."""
    from lanekd.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
