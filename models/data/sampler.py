"""Batches of sorted stamp indices drawn chunk-wise from HDF5 stores (:class:`BlockBatchSampler`).

The sampler shuffles at two levels: the order of HDF5 chunks (blocks of the store's ``chunk_rows`` rows),
and the stamps within a window of ``shuffle_window`` stamps made of whole chunks. Each batch is a sorted
index array, which :class:`models.data.dataset.StoreBatchDataset` reads with one slice read per chunk. The
shuffling of epoch ``e`` depends only on ``(seed, e)``.

Under DDP each of ``num_replicas`` ranks takes every ``num_replicas``-th batch of the same global order
(batch ``b`` goes to rank ``b % num_replicas``), so the ranks see distinct shards of one epoch and the
batches (and their augmentation, keyed by the global batch number) are those of a one-process run.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class BlockBatchSampler(Sampler):
    """Batches of sorted indices drawn chunk-wise, for fast reads from chunked HDF5.

    Yields ``(epoch, batch_number, indices)`` with ``indices`` a sorted int64 array. With ``shuffle``, the
    blocks (a block = the indices sharing one HDF5 chunk) are put in a random order each epoch and taken
    in turn into a window until it holds at least ``window`` indices; the window is shuffled and cut into
    batches, after the remainder of the previous window. Without ``shuffle``, batches are consecutive. A larger
    window mixes more of the file per batch (important when a store is ordered by class) and needs a
    larger chunk cache to read each chunk only once per epoch.

    Args:
        indices: ``(M,)`` global indices to draw from.
        blocks: ``(M,)`` block id of each index (e.g. ``store * 10**12 + row // chunk_rows``).
        batch_size: stamps per batch.
        shuffle: shuffle (training) or keep the order (evaluation).
        window: stamps shuffled together (at least one block).
        seed: base seed; epoch ``e`` uses ``(seed, e)``.
        drop_last: drop the last, smaller batch.
        num_replicas: DDP ranks sharing the epoch (1: one process). Every rank must take the same number
            of optimiser steps, so the last ``n_batches % num_replicas`` batches of an epoch are left out.
        rank: this process's rank, ``0 <= rank < num_replicas``.
    """

    def __init__(
        self,
        indices: np.ndarray,
        blocks: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        window: int = 2048,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
        order = np.argsort(indices, kind="stable")
        self.indices = np.asarray(indices, dtype=np.int64)[order]
        self.blocks = np.asarray(blocks)[order]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.window = max(1, int(window))
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        _, starts = np.unique(self.blocks, return_index=True)
        self._block_slices = np.split(np.arange(len(self.indices)), np.sort(starts)[1:])

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch; without it each ``iter`` moves to the next epoch."""
        self.epoch = int(epoch)

    def _global_len(self) -> int:
        """Batches of one epoch over all ranks."""
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __len__(self) -> int:
        """Batches of one epoch for this rank."""
        return self._global_len() // self.num_replicas

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        epoch = self.epoch
        self.epoch += 1
        stop = len(self) * self.num_replicas  # the same number of batches on every rank
        for number, batch in enumerate(self._batches(epoch)):
            if number >= stop:
                return
            if number % self.num_replicas == self.rank:
                yield epoch, number, batch

    def _batches(self, epoch: int) -> Iterator[np.ndarray]:
        bs = self.batch_size
        if not self.shuffle:
            for start in range(0, len(self.indices), bs):
                batch = self.indices[start : start + bs]
                if len(batch) == bs or not self.drop_last:
                    yield batch
            return
        rng = np.random.default_rng([self.seed, epoch])
        block_order = rng.permutation(len(self._block_slices))
        carry = np.empty(0, dtype=np.int64)
        taken: list[np.ndarray] = []
        n_taken = 0
        for i, block in enumerate(block_order):
            taken.append(self._block_slices[block])
            n_taken += len(taken[-1])
            if n_taken < self.window and i < len(block_order) - 1:
                continue
            # The previous remainder goes first, so no index waits more than one window.
            pool = np.concatenate([carry, rng.permutation(self.indices[np.concatenate(taken)])])
            n_full = len(pool) // bs
            for j in range(n_full):
                yield np.sort(pool[j * bs : (j + 1) * bs])
            carry = pool[n_full * bs :]
            taken, n_taken = [], 0
        if len(carry) and not self.drop_last:
            yield np.sort(carry)
