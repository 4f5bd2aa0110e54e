"""Lane networks: ENet, ENet-SAD, ERFNet, dilated ResNets, SCNN (see docs/models.md).

``build_model(name, num_classes=5, num_lanes=4, input_size=(288, 800), **options)`` builds any of
:func:`list_models`; every model returns a :class:`LaneOutput`.
"""

from lanekd.models.flops import count_flops, count_parameters
from lanekd.models.output import LaneOutput
from lanekd.models.registry import MODELS, STUDENTS, build_model, list_models, model_options

__all__ = ["MODELS", "STUDENTS", "LaneOutput", "build_model", "count_flops", "count_parameters",
           "list_models", "model_options"]
