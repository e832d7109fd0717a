"""What is scored: batches of stamps (:class:`StampBatch`) read from a stamp store (checked against the model
card, and fitted to it, by :mod:`pipeline.scoring.model_inputs`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.store import StampStore

#: Stamps per batch read, prepared and scored at once. On 2 CPU cores the ONNX Runtime path scores the
#: ``ztf`` preset as fast at 256 as at 1024 and ``hits`` up to 1.3x faster at 1024 (``python -m
#: benchmarks.suite_scoring``), and a batch of 1024 raises the peak memory by about 400 MB.
DEFAULT_BATCH_SIZE = 256
#: Catalog columns put first in the scored catalog, when the store has them.
LEADING_COLUMNS = ("object_id", "source", "ra", "dec")


@dataclass
class StampBatch:
    """One batch of stamps to score.

    Attributes:
        stamps: ``(B, C, H, W)`` float32 raw stamps, in store units.
        mask: ``(B, C, H, W)`` bool (True = pixel not valid), or None when nothing is masked.
        catalog: ``B`` rows of catalog columns carried verbatim into the scored catalog.
        rows: ``(B,)`` int64 index of each stamp in its store (None: numbered in the order scored).
    """

    stamps: np.ndarray
    mask: np.ndarray | None = None
    catalog: pd.DataFrame = field(default_factory=pd.DataFrame)
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.stamps.shape[0])


def iter_store_batches(
    store: StampStore,
    batch_size: int = DEFAULT_BATCH_SIZE,
    columns: Sequence[str] | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[StampBatch]:
    """Contiguous batches of rows ``[start, stop)`` of an open store, stamps with mask and catalog rows; one
    empty batch for an empty range (so that an empty store still gives a catalog with its columns).

    Args:
        store: an open :class:`pipeline.store.stamp_store.StampStore`.
        batch_size: stamps per batch (round it to the store's chunk rows for the fastest reads).
        columns: catalog columns to carry (default: all, identifiers and positions first).
        start, stop: the row range (``stop`` None: to the end).
    """
    if columns is None:  # identifiers and positions first, the rest as stored (alphabetical)
        first = [c for c in LEADING_COLUMNS if c in store.catalog_columns]
        columns = first + [c for c in store.catalog_columns if c not in first]
    cols = list(columns)
    missing = sorted(set(cols) - set(store.catalog_columns))
    if missing:
        raise KeyError(f"{store.path} has no catalog columns {missing}; it has {store.catalog_columns}")
    stop = store.n if stop is None else stop
    if not 0 <= start <= stop <= store.n:
        raise ValueError(f"rows [{start}, {stop}) are outside {store.path} ({store.n} stamps)")
    bounds = [(a, min(a + batch_size, stop)) for a in range(start, stop, batch_size)] or [(start, start)]
    for a, b in bounds:
        sel = slice(a, b)
        yield StampBatch(
            store.stamps(sel), store.mask(sel), store.catalog(sel, cols), np.arange(a, b, dtype=np.int64)
        )
