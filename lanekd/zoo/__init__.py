"""The model zoo: small pretrained lanekd checkpoints shipped inside the package.

Every entry is trained on lanekd's synthetic road scenes only (nothing is downloaded), by the
recipe declared in :data:`RECIPES` and run with ``lanekd zoo train NAME``. Its weights lie in
``lanekd/zoo/weights/NAME.pt`` beside a card, ``NAME.json``, that records how it was made (the
recipe, the command, seed, data and the scores measured on held-out scenes) and the weights'
SHA-256.

Wherever lanekd takes a checkpoint (``predict``, ``export``, ``visualize``, ``--teacher``,
``--init``) a zoo name may stand for it: :func:`resolve` turns the name into the verified file.
This module is torch-free, so listing the zoo costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lanekd.errors import LaneKDError

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class ZooRecipe:
    """How one zoo entry is trained: data written in a dataset's on-disk layout by the synthetic
    generator, read back through ``lanekd prepare`` (the path a user's own data takes), then the
    training recipe.

    Attributes:
        name: entry name (the file stem).
        model: model name for :func:`lanekd.models.build_model`.
        description: one line for ``lanekd zoo list``.
        layout: on-disk layout the scenes are written in and read back from (``culane`` or
            ``tusimple``); the scenes are seen by that dataset's camera rig.
        size: ``(H, W)`` network input.
        line_width: training label width in pixels at ``size`` (``prepare --line-width``).
        n_train, n_val: scenes per split.
        train_seed, val_seed: generator seeds of the splits.
        iters, batch_size: training length of one run.
        restarts: warm restarts after the first run: each is another run of ``iters`` with the
            same recipe, started from the previous run's selected checkpoint (``--init``) with
            ``restart_warmup`` warm-up iterations (ENet-SAD from scratch only begins to separate
            lanes near the end of its first 800 iterations at 144x400; docs/zoo.md).
        seed: seed of initialisation, data order and augmentation.
        randomize: dashcam-look randomisations of the written scenes, train and validation
            (:class:`lanekd.data.synthetic_domain.DomainRandomization` spec, ``""`` for none).
        init: the zoo entry (or checkpoint) the first run starts from (``--init``); ``None``
            trains from scratch.
        methods: distillation methods (none for a teacher-free entry).
        train_options: further :class:`~lanekd.engine.config.TrainConfig` fields.
    """

    name: str
    model: str
    description: str
    layout: str = "culane"
    size: tuple[int, int] = (144, 400)
    line_width: int = 10
    n_train: int = 800
    n_val: int = 100
    train_seed: int = 100
    val_seed: int = 200
    iters: int = 800
    batch_size: int = 8
    restarts: int = 1
    restart_warmup: int = 50
    seed: int = 0
    randomize: str = ""
    init: str | None = None
    methods: tuple[str, ...] = ()
    train_options: dict[str, Any] = field(default_factory=dict)

    def command(self) -> str:
        """The command that trains this entry."""
        return f"lanekd zoo train {self.name}"


#: Every dashcam randomisation: the scenes of the entries for dashcam video.
DASHCAM_RANDOMIZE = "hood,lens,camera,photo,blur,noise,jpeg,mount"
#: Fine-tuning from another entry: lr 0.1, and the (live) existence branch adapts at the full
#: rate: at the fast recipe's 0.1x it kept predicting no lanes on some genuine frames (docs/zoo.md).
FINE_TUNE_OPTIONS: dict[str, Any] = {"lr": 0.1, "warmup_iters": 20, "exist_lr_scale": 1.0}

def fine_tuned(name: str, init: str, description: str, iters: int, **fields: Any) -> ZooRecipe:
    """An ENet-SAD recipe fine-tuned from entry ``init``: one run of ``iters`` (no restart) with
    :data:`FINE_TUNE_OPTIONS`; ``fields``: the other :class:`ZooRecipe` fields it changes."""
    return ZooRecipe(name=name, model="enet-sad", description=description, init=init, iters=iters, restarts=0,
                     train_options=dict(FINE_TUNE_OPTIONS), **fields)


#: Every zoo entry, by name: the one list ``zoo list``, ``zoo train`` and :func:`resolve` read.
RECIPES: dict[str, ZooRecipe] = {
    r.name: r
    for r in (
        ZooRecipe(
            name="enet-sad-synthetic",
            model="enet-sad",
            description="ENet-SAD, CULane geometry (1640x590 frames) at 144x400, trained on 800 "
            "synthetic scenes, no distillation",
            # the fast recipe as it stands: progressive resizing in the first run, the existence
            # branch at 0.1x the rate (at 1x its hidden layer died and it returned the prior)
        ),
        fine_tuned(
            "enet-sad-dashcam",
            init="enet-sad-synthetic",
            description="ENet-SAD at 144x400, enet-sad-synthetic fine-tuned on 800 synthetic scenes with "
            "every dashcam randomisation (bonnet, lens, camera pose and mounting height, colour, blur, "
            "noise, JPEG)",
            iters=400,
            randomize=DASHCAM_RANDOMIZE,
        ),
        fine_tuned(
            "enet-sad-dashcam-288x800",
            init="enet-sad-dashcam",  # every tensor but the existence head's size-bound layer carries over
            description="ENet-SAD at CULane's full 288x800 input, enet-sad-dashcam fine-tuned at that size "
            "on the same randomised scenes",
            iters=800,
            size=(288, 800),
            line_width=20,  # the 10 px of 144x400 at twice the width (docs/training.md)
            randomize=DASHCAM_RANDOMIZE,
        ),
        fine_tuned(
            "enet-sad-tusimple",
            init="enet-sad-dashcam",  # the output and existence layers start fresh (six slots)
            description="ENet-SAD, TuSimple geometry (1280x720 highway frames, six slots) at 368x640, "
            "enet-sad-dashcam fine-tuned on 800 synthetic scenes seen by TuSimple's camera",
            iters=600,
            layout="tusimple",
            size=(368, 640),
            line_width=16,  # 1/40 of the width, as at 144x400 (docs/training.md)
            # TuSimple's camera shows no bonnet and sits at its own height: no hood, no mount
            randomize="lens,camera,photo,blur,noise,jpeg",
        ),
    )
}


def weights_path(name: str, root: Path | None = None) -> Path:
    """Where entry ``name``'s checkpoint lives (``root``: another zoo folder, for training)."""
    return (root or WEIGHTS_DIR) / f"{name}.pt"


def card_path(name: str, root: Path | None = None) -> Path:
    """Where entry ``name``'s card (JSON) lives."""
    return (root or WEIGHTS_DIR) / f"{name}.json"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_card(name: str, root: Path | None = None) -> dict[str, Any] | None:
    """Entry ``name``'s card, or ``None`` when it has not been trained into ``root``."""
    path = card_path(name, root)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise LaneKDError(f"{path}: unreadable zoo card ({e})") from None


def list_entries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every recipe with its card: ``{"name", "model", "description", "installed", "command",
    "recipe", "scores", ...}``; an entry whose weights are absent has ``installed: False``."""
    out = []
    for name, recipe in RECIPES.items():
        card = read_card(name, root) or {}
        installed = weights_path(name, root).is_file() and bool(card)
        out.append({
            "name": name,
            "model": recipe.model,
            "description": recipe.description,
            "installed": installed,
            "command": recipe.command(),
            "recipe": asdict(recipe),
            **{k: v for k, v in card.items() if k not in ("name", "model", "recipe", "command")},
        })
    return out


def is_zoo_name(value: str | Path) -> bool:
    """``value`` names a zoo entry and no file of that name exists (a file always wins)."""
    return str(value) in RECIPES and not Path(value).exists()


def resolve(value: str | Path, root: Path | None = None) -> Path:
    """A checkpoint path for ``value``: a zoo entry's verified weights, or ``value`` unchanged.

    Raises:
        LaneKDError: ``value`` names an entry whose weights are missing or fail their checksum.
    """
    if not is_zoo_name(value):
        return Path(value)
    name = str(value)
    path, card = weights_path(name, root), read_card(name, root)
    if not path.is_file() or card is None:
        raise LaneKDError(
            f"zoo entry {name!r} is not installed ({path} missing); train it with `{RECIPES[name].command()}`"
        )
    want = card.get("sha256")
    if want != sha256(path):
        raise LaneKDError(f"{path}: checksum does not match its card {card_path(name, root)} (corrupt file?)")
    return path


__all__ = ["RECIPES", "WEIGHTS_DIR", "ZooRecipe", "card_path", "fine_tuned", "is_zoo_name", "list_entries",
           "read_card", "resolve", "sha256", "weights_path"]
