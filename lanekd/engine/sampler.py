"""Deterministic, resumable, sharded batch order.

The order of epoch ``e`` is a permutation drawn from a generator seeded with ``(seed, e)``, so
the position in the data stream is a pure function of the iteration number: resuming at
iteration ``it`` means ``set_position(*divmod(it, batches_per_epoch))`` and nothing else has to
be saved. Each global batch (``batch_size`` indices) is split across processes as
``batch[rank::world_size]``, so N processes with per-process batch B/N see exactly the samples a
single process with batch B sees (the property the distributed test checks). Incomplete last
batches are dropped, so every step has the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from lanekd.errors import ConfigError


class ResumableBatchSampler:
    """Batch sampler for ``DataLoader(batch_sampler=...)``.

    Args:
        num_samples: dataset length.
        batch_size: the global batch (all processes).
        seed: base seed of the shuffling.
        rank, world_size: this process's shard.
        shuffle: False keeps the dataset order (validation, tests).
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        if batch_size % world_size:
            raise ConfigError(f"--batch-size {batch_size} is not divisible by the {world_size} processes")
        if num_samples < batch_size:
            raise ConfigError(
                f"the training set has {num_samples} samples, fewer than --batch-size {batch_size}"
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.batches_per_epoch = num_samples // batch_size
        self.epoch = 0
        self.start = 0

    def set_position(self, epoch: int, batch_in_epoch: int = 0) -> None:
        """Make the next ``iter()`` start at batch ``batch_in_epoch`` of epoch ``epoch``."""
        self.epoch = epoch
        self.start = batch_in_epoch

    def order(self, epoch: int) -> torch.Tensor:
        """The sample order of ``epoch`` (identical on every process)."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_samples, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.order(self.epoch)
        b = self.batch_size
        for i in range(self.start, self.batches_per_epoch):
            yield perm[i * b : (i + 1) * b][self.rank :: self.world_size].tolist()

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start
