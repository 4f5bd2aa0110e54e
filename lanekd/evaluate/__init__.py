"""Benchmark evaluators, one module per benchmark (import the one you need; nothing heavy here).

* :mod:`lanekd.evaluate.culane` - CULane F1, bit-exact with the official C++ tool;
* :mod:`lanekd.evaluate.tusimple` - TuSimple accuracy/FP/FN (official lane.py);
* :mod:`lanekd.evaluate.llamas` - LLAMAS CULane-style F1 and segmentation AP;
* :mod:`lanekd.evaluate.bdd100k` - BDD100K lane accuracy/IoU (SAD protocol) and the toolkit's F1_pix;
* :mod:`lanekd.evaluate.apolloscape` - ApolloScape lane-marking mIoU.
"""

BENCHMARKS = ("culane", "tusimple", "llamas", "bdd100k", "apolloscape")
