"""Data of the real-galaxy morphology benchmark (benchmarks/morphology_real.py): the dev set, its split by
galaxy id, the stores each model trains and is tested on, and the checks that the test galaxies never reach
training.

- :func:`read_dev_catalog`: the dev set's label rows (``training_solutions_rev1.csv``), verbatim lines by id.
- :func:`split_dev`: a seeded split by GalaxyID into ``n_test`` test galaxies and the training part, whose
  order is fixed too, so that the first ``n`` training galaxies of a learning curve are nested
  (:meth:`DevSplit.training`: the fit and validation ids of ``n`` training galaxies, the validation ids
  carved from those ``n`` only).
- :class:`StoreCache`: one store per (subset, ingest frame), ingested once through
  :func:`pipeline.ingest.ingest_galaxy_zoo` from a catalog holding only that subset's rows, so a training
  store physically holds no test galaxy (and the test store no training galaxy).
- :func:`write_splits` / :func:`check_no_leak`: the ``splits.csv`` a training run uses (fit -> ``train``,
  validation -> ``val``; no ``test`` rows: the test galaxies are in another store) and the assertion that
  no test id is in a training store or its splits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.data.splits import save_splits
from models.frame_fit import KAGGLE_SIDE, preset_ingest_frame
from pipeline.prep import IngestFrame
from pipeline.store import open_store

#: The 1,014 real Kaggle galaxies (images/{GalaxyID}.jpg + training_solutions_rev1.csv; see its SOURCE.md).
DEV_SET = Path("/work/shared/galaxy_zoo/kaggle_real_dev")
CATALOG_NAME = "training_solutions_rev1.csv"


@dataclass(frozen=True)
class DevCatalog:
    """The dev set's catalog: its header line and each galaxy's row as written (by GalaxyID as str)."""

    images: Path
    header: str
    rows: dict[str, str]

    @property
    def ids(self) -> list[str]:
        return sorted(self.rows)

    def write_subset(self, ids: Sequence[str], path: Path) -> Path:
        """A Kaggle catalog with only the rows of ``ids`` (verbatim lines, sorted by id)."""
        missing = sorted(set(ids) - set(self.rows))
        if missing:
            raise ValueError(f"galaxies {missing[:5]} are not in the dev catalog ({len(missing)} missing)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([self.header, *(self.rows[i] for i in sorted(ids))]) + "\n")
        return path

    def answers(self, ids: Sequence[str]) -> np.ndarray:
        """``(len(ids), 37)`` float64 vote fractions of ``ids`` in that order."""
        return np.array([[float(v) for v in self.rows[i].split(",")[1:]] for i in ids])


def read_dev_catalog(dev: Path = DEV_SET) -> DevCatalog:
    """The rows of ``dev/training_solutions_rev1.csv`` by GalaxyID; ``dev/images`` holds the JPEGs."""
    lines = [line for line in (dev / CATALOG_NAME).read_text().splitlines() if line.strip()]
    header, body = lines[0], lines[1:]
    if not header.startswith("GalaxyID,"):
        raise ValueError(f"{dev / CATALOG_NAME} is not a Kaggle catalog (header {header[:40]!r})")
    rows = {line.split(",", 1)[0].strip(): line for line in body}
    if len(rows) != len(body):
        raise ValueError(f"{dev / CATALOG_NAME} lists a GalaxyID more than once")
    return DevCatalog(dev / "images", header, rows)


@dataclass(frozen=True)
class DevSplit:
    """Test ids and the training part in its seeded order (the first ``n`` are a learning-curve point)."""

    test: tuple[str, ...]
    train_order: tuple[str, ...]
    val_fraction: float
    seed: int

    def training(self, n: int | None = None) -> tuple[list[str], list[str]]:
        """Fit and validation ids of the first ``n`` training galaxies (all by default); the validation ids
        (``round(n * val_fraction)``, at least 1 when the fraction is > 0) are carved from those ``n``."""
        n = len(self.train_order) if n is None else n
        if not 0 < n <= len(self.train_order):
            raise ValueError(f"{n} training galaxies asked, the training part has {len(self.train_order)}")
        part = list(self.train_order[:n])
        n_val = max(1, round(n * self.val_fraction)) if self.val_fraction > 0 else 0
        return sorted(part[n_val:]), sorted(part[:n_val])

    def to_dict(self) -> dict[str, Any]:
        """Sizes (test, training part, its fit and validation galaxies), seed and validation fraction."""
        fit, val = self.training()
        return {"n_test": len(self.test), "n_train": len(self.train_order), "fit": len(fit), "val": len(val),
                "seed": self.seed, "val_fraction": self.val_fraction}  # fmt: skip


def split_dev(ids: Sequence[str], n_test: int, seed: int, val_fraction: float = 0.1) -> DevSplit:
    """Seeded split by id: a permutation of the sorted ids; its first ``n_test`` are the test galaxies."""
    unique = sorted(set(ids))
    if len(unique) != len(ids):
        raise ValueError("galaxy ids repeat: the split is by id")
    if not 0 < n_test < len(unique):
        raise ValueError(f"n_test must be in 1..{len(unique) - 1}, got {n_test}")
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    return DevSplit(tuple(sorted(order[:n_test])), tuple(order[n_test:]), val_fraction, seed)


def model_ingest_frame(preset: str, overrides: dict[str, Any], side: int = KAGGLE_SIDE) -> IngestFrame:
    """The ingest frame that gives a model its own frame from raw images of ``side`` px: the centre crop
    its :class:`models.components.dieleman.DielemanFrame` takes of such an image, area-averaged to its frame."""
    return preset_ingest_frame(preset, side, **overrides)


def ingest_options(frame: IngestFrame | None) -> dict[str, Any]:
    """Options of :func:`pipeline.ingest.ingest_galaxy_zoo` for ``frame``: framed at ingest when the source
    takes a frame (``frame_crop``/``frame_size``), else the raw images (the model frames them itself)."""
    from pipeline.ingest import GalaxyZooSource

    if frame is None or "frame_crop" not in GalaxyZooSource.model_fields:
        return {}
    return {"frame_crop": frame.crop, "frame_size": frame.size, "workers": 1}


@dataclass
class StoreCache:
    """Stores of subsets of the dev set, one per (name, frame), ingested once into ``workdir``."""

    catalog: DevCatalog
    workdir: Path
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    def store(self, name: str, ids: Sequence[str], frame: IngestFrame | None) -> Path:
        """The store of the galaxies ``ids`` (``name`` says which subset) with ``frame``."""
        from pipeline.ingest import ingest_galaxy_zoo

        options = ingest_options(frame)
        tag = f"{name}_{frame.crop}to{frame.size}" if options else f"{name}_raw"
        out = self.workdir / "stores" / f"{tag}.h5"
        if tag in self.reports:
            return out
        csv = self.catalog.write_subset(ids, self.workdir / "catalogs" / f"{name}.csv")
        t0 = time.perf_counter()
        report = ingest_galaxy_zoo(csv, self.catalog.images, out, format="kaggle", **options)
        if report.n_ingested != len(ids):
            raise RuntimeError(f"ingest of {name} kept {report.n_ingested} of {len(ids)}: {report.summary()}")
        self.reports[tag] = {"galaxies": len(ids), "seconds": round(time.perf_counter() - t0, 1), **options}
        return out


def store_ids(store: Path) -> list[str]:
    """The ``object_id`` of every stamp of a store."""
    with open_store(store) as s:
        return s.catalog(columns=["object_id"])["object_id"].astype(str).tolist()


def write_splits(store: Path, fit: Sequence[str], val: Sequence[str], path: Path) -> Path:
    """``splits.csv`` for a training store: ``fit`` ids -> ``train``, ``val`` ids -> ``val``; raises when
    the store holds any other galaxy."""
    ids = store_ids(store)
    split = {**dict.fromkeys(fit, "train"), **dict.fromkeys(val, "val")}
    other = sorted(set(ids) - set(split))
    if other:
        raise ValueError(f"{store} holds galaxies outside its fit and validation ids: {other[:5]}")
    return save_splits(path, ids, [split[i] for i in ids])


def check_no_leak(test_ids: Sequence[str], training_stores: Sequence[Path], splits: Sequence[Path]) -> None:
    """Assert that no test galaxy is in a training store or in a ``splits.csv`` (so none can reach the
    fit, the validation or anything chosen on them)."""
    test = set(test_ids)
    for store in training_stores:
        leaked = test & set(store_ids(store))
        assert not leaked, f"test galaxies {sorted(leaked)[:5]} are in the training store {store}"
    for path in splits:
        listed = set(pd.read_csv(path, dtype={"object_id": str})["object_id"])
        leaked = test & listed
        assert not leaked, f"test galaxies {sorted(leaked)[:5]} are in {path}"
