"""The output type every lane network returns (contract shared by models, distill, engine, export).

``features`` holds named intermediate maps and is filled only when the forward is called with
``return_features=True`` (inference pays nothing). Naming convention, for every model:

* ``block1`` .. ``block4``: the four encoder stages, shallow to deep (ENet-SAD E1..E4; ResNet
  layer1..layer4; ERFNet as documented in its module). SAD pairs default to
  ``model.sad_blocks`` (e.g. ``("block2", "block3", "block4")``) and LGAD/AT use the same names.
* ``encoder``: the 1/8-resolution encoder output fed to the decoder/head (IntRA-KD feature).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class LaneOutput(NamedTuple):
    """Network outputs.

    Attributes:
        seg: ``(B, C, H, W)`` class logits at input resolution (C = num_lanes + 1, or the
            dataset's class count).
        exist: ``(B, L)`` lane-existence logits, or ``None`` for models built without the branch.
        features: dict of named ``(B, C_i, H_i, W_i)`` maps; empty unless requested.
    """

    seg: torch.Tensor
    exist: torch.Tensor | None
    features: dict[str, torch.Tensor]
