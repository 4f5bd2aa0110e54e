"""lanekd: lane-detection knowledge distillation (SAD, IntRA-KD, LGAD, KD, AT).

Importing ``lanekd`` is cheap: it does not import torch. Sub-packages that need torch
(``lanekd.models``, ``lanekd.distill``, ``lanekd.engine``, ``lanekd.export``) import it themselves.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
