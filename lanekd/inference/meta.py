"""Model metadata: what pre-processing and decoding need, stored inside exported models (so
``predict`` needs nothing but the file) and derived from a training checkpoint's ``data_attrs``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lanekd import __version__
from lanekd.errors import LaneKDError

#: Key under which the JSON metadata is stored (ONNX metadata_props / TorchScript extra file).
META_KEY = "lanekd"


@dataclass
class ModelMeta:
    """Everything needed to pre-process inputs and decode outputs of a lane model.

    Attributes:
        model: registry name of the network (``enet-sad``...).
        input_size: ``(H, W)`` network input size.
        source_size: ``(H, W)`` of the frames the model was trained on (decoder geometry).
        crop_top: rows cut from the top of the source frame before resizing.
        mean, std: RGB normalisation in [0, 1] units: ``(rgb / 255 - mean) / std``.
        num_slots: number of lane slots (existence outputs).
        num_classes: segmentation classes (``num_slots + 1`` for lane datasets).
        profile: decoder profile name (``lanekd.decode.get_profile``).
        dataset: dataset the model was trained on.
        dynamic_batch: whether the exported graph accepts any batch size.
    """

    model: str
    input_size: tuple[int, int]
    source_size: tuple[int, int]
    crop_top: int = 0
    mean: tuple[float, float, float] = (0.3598, 0.3653, 0.3662)
    std: tuple[float, float, float] = (0.2573, 0.2663, 0.2756)
    num_slots: int = 4
    num_classes: int = 5
    profile: str = "culane"
    dataset: str = "synthetic"
    dynamic_batch: bool = True
    lanekd_version: str = field(default=__version__)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "model") -> ModelMeta:
        try:
            raw: dict[str, Any] = json.loads(text)
            for key in ("input_size", "source_size", "mean", "std"):
                raw[key] = tuple(raw[key])
            known = {f for f in cls.__dataclass_fields__}
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (ValueError, KeyError, TypeError) as e:
            raise LaneKDError(f"{where}: unreadable lanekd metadata ({e})") from None


def meta_from_checkpoint(ckpt_meta: dict, path: str | Path) -> ModelMeta:
    """Build :class:`ModelMeta` from the metadata stored in a lanekd training checkpoint.

    Raises:
        LaneKDError: the metadata lacks the model's name or input size.
    """
    from lanekd.data.formats.info import decode_profile_name

    try:
        args = ckpt_meta["model_args"]
        data = ckpt_meta.get("data_attrs", {})
        input_size = tuple(args.get("input_size") or data["size"])
        source_size = tuple(data.get("source_size") or input_size)
        num_classes = int(args.get("num_classes", 5))
        num_slots = int(data.get("num_slots", args.get("num_lanes", num_classes - 1)))
        dataset = str(data.get("dataset", "synthetic"))
        return ModelMeta(
            model=str(args["name"]), input_size=(int(input_size[0]), int(input_size[1])),
            source_size=(int(source_size[0]), int(source_size[1])), crop_top=int(data.get("crop_top", 0)),
            mean=tuple(float(v) for v in data.get("mean", ModelMeta.mean)),
            std=tuple(float(v) for v in data.get("std", ModelMeta.std)),
            num_slots=num_slots, num_classes=num_classes,
            profile=decode_profile_name(data),
            dataset=dataset,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise LaneKDError(f"{path}: checkpoint metadata is incomplete ({e})") from None
