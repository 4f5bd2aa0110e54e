"""``keep_freed_memory``: safe to call (any platform, repeatedly); scoring is unchanged after it."""

from __future__ import annotations

import subprocess
import sys

from lanekd.evaluate._malloc import keep_freed_memory


def test_keep_freed_memory_is_safe_and_idempotent() -> None:
    assert isinstance(keep_freed_memory(), bool)
    assert keep_freed_memory() == keep_freed_memory()


def test_scores_unchanged_in_a_process_that_keeps_freed_memory() -> None:
    code = (
        "import numpy as np\n"
        "from lanekd.evaluate import culane as C\n"
        "from lanekd.evaluate._malloc import keep_freed_memory\n"
        "g = [np.array([[100, 580], [300, 300]], np.float32),\n"
        "     np.array([[900, 580], [700, 300]], np.float32)]\n"
        "p = [v + np.array([8, 0], np.float32) for v in g]\n"
        "a = C.score_image(g, p)\n"
        "keep_freed_memory()\n"
        "assert C.score_image(g, p) == a, a\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
