"""Lightning data module over one or more stamp stores: splits by object, chunked HDF5 reads, augmentation.

- **Splits** (:mod:`models.data.splits`): by ``object_id``, so all stamps of one object (several epochs or
  alerts, or the same object in two stores) land in one split; classification targets stratified. Fixed
  seed; the assignment is saved and loaded as a CSV ``object_id,split`` (``splits_csv``).
- **Reading**: :class:`models.data.sampler.BlockBatchSampler` shuffles at two levels: the order of HDF5
  chunks (blocks of the store's ``chunk_rows`` rows), and the stamps within a window of ``shuffle_window``
  stamps made of whole chunks. Each batch is a sorted index array, which
  :class:`models.data.dataset.StoreBatchDataset` reads with one slice read per HDF5 chunk it touches (h5py
  fancy indexing is 80x slower), through a chunk cache that holds the window, so every chunk is
  decompressed about once per epoch. Files are opened lazily in each process (``num_workers`` >= 0).
- **Batches**: ``(x, y)`` with ``x`` ``(B, C, H, W)`` float32 and ``y`` the target: integer labels
  (``real``) as ``(B,)`` int64, float labels (``gz_answers``) as ``(B, 37)`` float32. Per batch: fill masked
  pixels, preprocess (:mod:`pipeline.prep.preprocess`), append mask channels if asked, augment (training only).
- **Reproducibility**: the shuffling of epoch ``e`` and the augmentation of batch ``b`` depend only on
  ``(seed, e, b)``, not on the number of workers or on what ran before: the same config and seed give the
  same batches.
- **DDP**: every rank computes the same seeded split (or loads ``splits_csv``); only rank 0 writes the CSV,
  atomically, so a rank reads either no file or the whole one. Each rank trains on its own shard of the
  training batches (:class:`BlockBatchSampler` ``num_replicas``/``rank``, from the attached trainer), and
  evaluates the whole validation and test splits, so metrics, calibration and thresholds are those of one
  process. The trainer must not wrap the sampler (``use_distributed_sampler=False``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch import Tensor
from torch.utils.data import DataLoader

from models.data.dataset import StoreBatchDataset, StoreInfo
from models.data.sampler import BlockBatchSampler
from models.data.splits import SPLITS, assign_splits, load_splits, save_splits
from pipeline.prep import AugmentConfig, Augmenter, BatchPrep, fit_color_pca, make_augmenter
from pipeline.store import open_store

#: Upper bound of the HDF5 chunk cache per dataset and process.
MAX_CACHE_BYTES = 512 * 1024**2
#: Default bound of the prepared stamps kept in memory (``memory_bytes``).
MEMORY_BYTES = 2 * 1024**3


class StampDataModule(L.LightningDataModule):
    """Train/val/test batches from one or more stamp stores (same channels and stamp size).

    Args:
        stores: one path or a list of paths to stamp stores.
        target: label name, e.g. ``"real"`` (-> ``(B,)`` int64) or ``"gz_answers"`` (-> ``(B, 37)`` float32).
        batch_size: stamps per batch.
        fractions: train, val, test fractions (of objects; see :func:`assign_splits`).
        seed: seed of the split, the shuffling and the augmentation.
        stratify: stratify the split on the target; None: when the target is integer (classification).
        splits_csv: a CSV ``object_id,split``: loaded when it exists, else the split is computed and saved.
        preprocess: a name of :data:`pipeline.prep.preprocess.PREPROCESSORS` (``dieleman``, ``deep_hits``,
            ``ztf``), a callable ``(N, C, H, W) -> (N, C', H', W')`` tensor function, or None.
        preprocess_kwargs: keyword arguments for a named preprocessing.
        augment: an :class:`AugmentConfig`, a preset name (``morphology``, ``realbogus``), a dict, or None;
            applied to the training batches only. A colour perturbation without a fitted PCA gets one fitted
            on up to ``pca_sample`` training stamps at :meth:`setup`.
        fill: how masked pixels are filled (:func:`pipeline.prep.preprocess.fill_masked`).
        keep_mask: ``none``, ``any`` or ``each``: append mask channels after preprocessing.
        shuffle_window: training stamps shuffled together, drawn as whole HDF5 chunks
            (:class:`BlockBatchSampler`); the chunk cache is sized to hold them (at most 512 MiB).
        num_workers: DataLoader workers (0 is fastest for small stamps on few cores).
        memory_bytes: when every stamp of the stores, prepared, takes at most this many bytes (float32),
            they are read and prepared once and batches are gathered from memory (the same batches, with
            no HDF5 read or preparation per batch); 0: always read the stores.
        drop_last: drop the last incomplete training batch.
    """

    def __init__(
        self,
        stores: str | os.PathLike | Sequence[str | os.PathLike],
        target: str,
        batch_size: int = 64,
        fractions: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        stratify: bool | None = None,
        splits_csv: str | os.PathLike | None = None,
        preprocess: str | Callable[[Tensor], Tensor] | None = None,
        preprocess_kwargs: dict[str, Any] | None = None,
        augment: AugmentConfig | str | dict | None = None,
        fill: str | float = "zero",
        keep_mask: str = "none",
        shuffle_window: int = 2048,
        num_workers: int = 0,
        drop_last: bool = False,
        pca_sample: int = 2048,
        memory_bytes: int = MEMORY_BYTES,
    ):
        super().__init__()
        paths = [stores] if isinstance(stores, (str, os.PathLike)) else list(stores)
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("give at least one stamp store")
        self.target = target
        self.batch_size = int(batch_size)
        self.fractions = tuple(float(f) for f in fractions)
        self.seed = int(seed)
        self.stratify = stratify
        self.splits_csv = Path(splits_csv) if splits_csv is not None else None
        self.prep = BatchPrep.from_config(
            {
                "preprocess": preprocess,
                "preprocess_kwargs": preprocess_kwargs,
                "fill": fill,
                "keep_mask": keep_mask,
            }
        )
        self.preprocess = self.prep.preprocess
        self.augment_config = self._config(augment)
        self.fill = fill
        self.keep_mask = keep_mask
        self.shuffle_window = int(shuffle_window)
        self.num_workers = int(num_workers)
        self.drop_last = drop_last
        self.pca_sample = int(pca_sample)
        self.memory_bytes = int(memory_bytes)
        self.stores: list[StoreInfo] = []
        self.offsets = np.zeros(1, dtype=np.int64)
        self.object_ids: np.ndarray | None = None
        self.split: np.ndarray | None = None
        self.targets: np.ndarray | None = None
        self._datasets: dict[bool, StoreBatchDataset] = {}

    @staticmethod
    def _config(augment: AugmentConfig | str | dict | None) -> AugmentConfig | None:
        augmenter = make_augmenter(augment)
        return None if augmenter is None else augmenter.config

    # ------------------------------------------------------------------------------------------ setup
    def setup(self, stage: str | None = None) -> None:
        """Read the stores' metadata, object ids and targets; compute or load the split (idempotent)."""
        if self.split is not None:
            return
        ids, targets = [], []
        for path in self.paths:
            with open_store(path) as store:
                dset = store.h5["stamps"]
                chunk_rows = dset.chunks[0] if dset.chunks else 256
                info = StoreInfo(
                    path=path,
                    n=store.n,
                    channels=store.channels,
                    stamp_shape=store.stamp_shape,
                    chunk_rows=int(chunk_rows),
                    chunk_bytes=int(np.prod(dset.chunks or dset.shape[1:]) * dset.dtype.itemsize),
                    divisor=store.divisor,
                )
                first = self.stores[0] if self.stores else info
                if (info.channels, info.stamp_shape) != (first.channels, first.stamp_shape):
                    raise ValueError(
                        f"{path} has channels {info.channels} and stamps {info.stamp_shape}; "
                        f"{first.path} has {first.channels} and {first.stamp_shape}"
                    )
                ids.append(store.catalog(columns=["object_id"])["object_id"].to_numpy().astype(str))
                targets.append(store.labels(self.target))
            self.stores.append(info)
        self.offsets = np.cumsum([0] + [s.n for s in self.stores])
        self.object_ids = np.concatenate(ids)
        self.targets = np.concatenate(targets)
        if self.splits_csv is not None and self.splits_csv.exists():
            self.split = load_splits(self.splits_csv, self.object_ids)
        else:
            is_class = self.targets.ndim == 1 and self.targets.dtype.kind in "iub"
            stratify = self.stratify if self.stratify is not None else is_class
            strata = self.targets if stratify else None
            if strata is not None and strata.ndim > 1:
                raise ValueError(f"cannot stratify on target {self.target!r} of shape {strata.shape}")
            self.split = assign_splits(self.object_ids, self.fractions, self.seed, strata)
            if self.splits_csv is not None and self._ranks()[1] == 0:  # written once, by rank 0
                self.save_splits(self.splits_csv)
        cfg = self.augment_config
        if cfg is not None and cfg.color_pca_sigma > 0 and cfg.color_pca_eigvals is None:
            sample = self._pca_sample()
            self.augment_config = cfg.with_color_pca(*fit_color_pca(sample))

    def _pca_sample(self) -> Tensor:
        """Up to ``pca_sample`` preprocessed training stamps (sorted random rows, fixed seed)."""
        train = self.indices("train")
        rng = np.random.default_rng([self.seed, 1])
        take = np.sort(rng.choice(train, size=min(self.pca_sample, len(train)), replace=False))
        dataset = self._dataset(augment=False)
        x = dataset.transform(*dataset.read(take))
        return x[:, : x.shape[1] - self.prep.n_aux(len(self.stores[0].channels))]

    def save_splits(self, path: str | os.PathLike) -> Path:
        """Write the split as CSV ``object_id,split`` (after :meth:`setup`)."""
        self._require_setup()
        return save_splits(path, self.object_ids, self.split)

    def _require_setup(self) -> None:
        if self.split is None:
            raise RuntimeError("call setup() first")

    # ----------------------------------------------------------------------------------------- access
    def indices(self, split: str) -> np.ndarray:
        """Sorted global indices (stores concatenated in order) of one split."""
        self._require_setup()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return np.flatnonzero(self.split == split)

    @property
    def split_counts(self) -> dict[str, int]:
        self._require_setup()
        return {name: int(np.sum(self.split == name)) for name in SPLITS}

    @property
    def channels(self) -> list[str]:
        self._require_setup()
        return list(self.stores[0].channels)

    def _dataset(self, augment: bool) -> StoreBatchDataset:
        if augment not in self._datasets:
            # A shuffled batch touches every chunk of its window and of the previous one (the remainder):
            # hold two windows, a window being shuffle_window training rows spread over rows / f_train.
            f_train = max(len(self.indices("train")) / max(len(self.split), 1), 1e-3)
            per_window = [-(-self.shuffle_window // (f_train * s.chunk_rows)) + 2 for s in self.stores]
            cache = max(int(2 * k * s.chunk_bytes) for k, s in zip(per_window, self.stores, strict=True))
            cache = min(MAX_CACHE_BYTES, cache)
            augmenter = Augmenter(self.augment_config, self.seed) if augment and self.augment_config else None
            dataset = StoreBatchDataset(self.stores, self.targets, self.prep, augmenter, self.seed, cache)
            dataset.keep_in_memory(self._prepared_rows(dataset))
            self._datasets[augment] = dataset
        return self._datasets[augment]

    def _prepared_rows(self, dataset: StoreBatchDataset) -> Tensor | None:
        """Every row prepared, shared by the training and evaluation datasets, when it fits in
        ``memory_bytes`` (one stamp is prepared to learn its prepared size); else None."""
        if not self.memory_bytes or not len(dataset):
            return None
        built = next((d.memory_rows for d in self._datasets.values() if d.memory_rows is not None), None)
        if built is not None:
            return built
        one = dataset.transform(*dataset.read(np.zeros(1, dtype=np.int64)))
        if one.element_size() * one.numel() * len(dataset) > self.memory_bytes:
            return None
        return dataset.prepared_rows()

    def _ranks(self) -> tuple[int, int]:
        """``(world_size, global_rank)`` of the attached trainer; ``(1, 0)`` without one."""
        trainer = self.trainer
        return (1, 0) if trainer is None else (int(trainer.world_size), int(trainer.global_rank))

    def sampler(self, split: str, shuffle: bool) -> BlockBatchSampler:
        """The batch sampler of one split; blocks are the HDF5 chunks of each store. Training batches
        (``shuffle``) are sharded over the trainer's DDP ranks; evaluation batches are not."""
        index = self.indices(split)
        store_of = np.searchsorted(self.offsets, index, side="right") - 1
        chunk_rows = np.array([s.chunk_rows for s in self.stores])[store_of]
        blocks = store_of.astype(np.int64) * (1 << 40) + (index - self.offsets[store_of]) // chunk_rows
        return BlockBatchSampler(
            index,
            blocks,
            self.batch_size,
            shuffle=shuffle,
            window=self.shuffle_window,
            seed=self.seed,
            drop_last=self.drop_last and shuffle,
            **(dict(zip(("num_replicas", "rank"), self._ranks(), strict=True)) if shuffle else {}),
        )

    def dataloader(self, split: str, train: bool = False) -> DataLoader:
        """A DataLoader of ``(x, y)`` batches of ``split``; ``train`` shuffles and augments."""
        return DataLoader(
            self._dataset(augment=train),
            sampler=self.sampler(split, shuffle=train),
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")

    def teardown(self, stage: str | None = None) -> None:
        for dataset in self._datasets.values():
            dataset.close()

    def state_dict(self) -> dict[str, Any]:
        """Settings recorded in checkpoints (stores, target, split fractions, seed, augmentation)."""
        return {
            "stores": [str(p) for p in self.paths],
            "target": self.target,
            "fractions": list(self.fractions),
            "seed": self.seed,
            "augment": None if self.augment_config is None else self.augment_config.to_dict(),
        }
