"""Teacher-target cache: cached losses equal online-teacher losses; staleness checks; bad files."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
import torch
from torch.utils.data import Dataset

from lanekd.distill import DistillConfig, TeacherCache, build_distillers, teacher_forward
from lanekd.distill.cache import teacher_fingerprint
from lanekd.errors import ConfigError, DataError
from tests.test_distill_common import TinyLaneNet


class _Samples(Dataset):
    """Un-augmented samples as LaneDataset(train=False) yields them."""

    def __init__(self, n: int = 5, h: int = 24, w: int = 32) -> None:
        g = torch.Generator().manual_seed(7)
        self.images = torch.randn(n, 3, h, w, generator=g)
        self.labels = torch.zeros(n, h, w, dtype=torch.long)
        for i in range(n):  # a few vertical "lanes" and an ignored band
            for slot in range(1, 1 + i % 4 + 1):
                self.labels[i, :, 6 * slot: 6 * slot + 2] = slot
            self.labels[i, :2] = 255

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "label": self.labels[i], "index": torch.tensor(i)}


def _batch(ds: _Samples, indices: list[int]) -> dict[str, torch.Tensor]:
    items = [ds[i] for i in indices]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _losses(distillers, student, batch, teacher_out) -> list[float]:
    out = student(batch["image"], return_features=True)
    return [d(out, batch, teacher_out, 0, 1).item() for d in distillers]


@pytest.mark.parametrize("dtype, rel", [("float32", 1e-5), ("float16", 2e-3)])
def test_cached_losses_equal_online(tmp_path: Path, dtype: str, rel: float) -> None:
    ds = _Samples()
    student, teacher = TinyLaneNet(seed=1), TinyLaneNet(width=8, seed=2)
    distillers = build_distillers(["intra-kd,kd,at"], DistillConfig(), student, teacher)
    cache = TeacherCache.build(teacher, ds, distillers, tmp_path / "c.h5", batch_size=2, dtype=dtype)
    assert len(cache) == 5 and set(cache.keys) == {"intra-kd:graphs", "kd:logits", "at:block2", "at:block3",
                                                   "at:block4"}
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # atomic: no temporary left
    indices = [3, 0, 3, 4]  # unsorted, repeated
    batch = _batch(ds, indices)
    online = _losses(distillers, student, batch, teacher_forward(teacher, batch, distillers))
    cached_out = cache.targets(torch.tensor(indices))
    assert cached_out.features["intra-kd:graphs"].shape == (4, 3, 5, 5)
    assert cached_out.features["kd:logits"].dtype == getattr(torch, dtype)
    assert cached_out.features["intra-kd:graphs"].dtype == torch.float32
    cached = _losses(distillers, student, batch, cached_out)
    assert all(v > 0 for v in online)
    assert cached == pytest.approx(online, rel=rel)


def test_cached_lgad_equals_online(tmp_path: Path) -> None:
    ds = _Samples()
    student, teacher = TinyLaneNet(seed=1), TinyLaneNet(in_channels=5, seed=3)
    distillers = build_distillers(["lgad"], DistillConfig(), student, teacher)
    cache = TeacherCache.build(teacher, ds, distillers, tmp_path / "l.h5", batch_size=3, dtype="float32")
    assert cache.teacher_input == "onehot" and not cache.augmented
    batch = _batch(ds, [1, 2])
    online = _losses(distillers, student, batch, teacher_forward(teacher, batch, distillers))
    assert _losses(distillers, student, batch, cache.targets([1, 2])) == pytest.approx(online, rel=1e-6)


def test_cache_check_detects_stale_caches(tmp_path: Path) -> None:
    ds = _Samples()
    student, teacher = TinyLaneNet(seed=1), TinyLaneNet(seed=2)
    distillers = build_distillers(["intra-kd"], DistillConfig(), student, teacher)
    cache = TeacherCache.build(teacher, ds, distillers, tmp_path / "c.h5")
    cache.check(distillers, teacher=teacher, length=5)  # matches
    other_kernel = build_distillers(["intra-kd"], DistillConfig(intra_kd_kernel=5), student, teacher)
    with pytest.raises(ConfigError, match="options"):
        cache.check(other_kernel)
    with pytest.raises(ConfigError, match="lacks"):
        cache.check(build_distillers(["kd"], DistillConfig(), student, teacher))
    with pytest.raises(ConfigError, match="other teacher weights"):
        cache.check(distillers, teacher=TinyLaneNet(seed=9))
    with pytest.raises(ConfigError, match="5 samples"):
        cache.check(distillers, length=6)
    with pytest.raises(IndexError):
        cache.targets([5])


def test_cache_needs_a_teacher_method(tmp_path: Path) -> None:
    student = TinyLaneNet()
    with pytest.raises(ConfigError, match="uses a teacher"):
        sad = build_distillers(["sad"], None, student)
        TeacherCache.build(TinyLaneNet(), _Samples(), sad, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_teacher_fingerprint_tracks_weights_and_buffers() -> None:
    teacher = TinyLaneNet(seed=2)
    before = teacher_fingerprint(teacher)
    assert teacher_fingerprint(TinyLaneNet(seed=2)) == before
    with torch.no_grad():
        teacher.bn1.running_mean[0] += 1.0
    assert teacher_fingerprint(teacher) != before


def test_bad_cache_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such teacher cache"):
        TeacherCache(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(DataError, match="junk.h5: not a lanekd teacher cache"):
        TeacherCache(junk)
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(DataError, match="not a lanekd teacher cache"):
        TeacherCache(tmp_path / "empty.h5")


def test_estimate_bytes(tmp_path: Path) -> None:
    ds = _Samples()
    student, teacher = TinyLaneNet(), TinyLaneNet(seed=2)
    distillers = build_distillers(["intra-kd,kd"], None, student, teacher)
    batch = _batch(ds, [0, 1])
    out = teacher_forward(teacher, batch, distillers)
    per_sample = 3 * 5 * 5 * 4 + 5 * 24 * 32 * 2  # graphs (float32) + logits (float16)
    assert TeacherCache.estimate_bytes(out, batch, distillers, 10) == 10 * per_sample
