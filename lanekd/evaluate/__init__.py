"""Benchmark evaluators, one module per benchmark (import the one you need; nothing heavy here).

* :mod:`lanekd.evaluate.culane` - CULane F1, bit-exact with the official C++ tool;
* :mod:`lanekd.evaluate.tusimple` - TuSimple accuracy/FP/FN (official lane.py);
* :mod:`lanekd.evaluate.llamas` - LLAMAS CULane-style F1 and segmentation AP;
* :mod:`lanekd.evaluate.bdd100k` - BDD100K lane accuracy/IoU (SAD protocol) and the toolkit's F1_pix;
* :mod:`lanekd.evaluate.apolloscape` - ApolloScape lane-marking mIoU.

:mod:`lanekd.evaluate.registry` gives each one the same small interface (:class:`Benchmark`:
evaluate from paths, a one-line summary, a table) for ``lanekd evaluate``.
"""

from lanekd.evaluate.registry import BENCHMARKS, REGISTRY, Benchmark, EvalOptions, get_benchmark

__all__ = ["BENCHMARKS", "REGISTRY", "Benchmark", "EvalOptions", "get_benchmark"]
