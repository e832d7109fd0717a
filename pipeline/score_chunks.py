"""Score a stamp store in row ranges, one catalog part per range, and join the parts into one catalog.

Scoring a large store in independent row ranges lets the ranges run in parallel (threads, processes, a Dask
cluster) and be cached one by one. Each part is exactly what :func:`pipeline.scoring.score_store` writes for
those rows (same columns, ``store_row`` numbering the stamp in the whole store, same table meta), so the
joined catalog equals a single pass whenever the batches are the same.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from astropy.table import Table
from torch import nn

from pipeline.catalog_io import ParquetTableWriter, output_format, parquet_to_csv, parquet_to_fits
from pipeline.scoring import (
    DEFAULT_BATCH_SIZE,
    LEADING_COLUMNS,
    Scorer,
    ScoreResult,
    StampBatch,
    check_inputs,
    score_batches,
)
from pipeline.stamp_store import StampStore, open_store


def row_ranges(n: int, chunk_rows: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in ranges of at most ``chunk_rows`` (one empty range
    when ``n`` is 0, so that an empty store still gives a catalog)."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return [(s, min(s + chunk_rows, n)) for s in range(0, n, chunk_rows)] or [(0, 0)]


def iter_row_batches(
    store: StampStore, start: int, stop: int, batch_size: int, columns: Sequence[str] | None = None
) -> Iterator[StampBatch]:
    """Batches of rows ``[start, stop)`` of an open store (one empty batch for an empty range)."""
    if columns is None:
        first = [c for c in LEADING_COLUMNS if c in store.catalog_columns]
        columns = first + [c for c in store.catalog_columns if c not in first]
    missing = sorted(set(columns) - set(store.catalog_columns))
    if missing:
        raise KeyError(f"{store.path} has no catalog columns {missing}; it has {store.catalog_columns}")
    if not 0 <= start <= stop <= store.n:
        raise ValueError(f"rows [{start}, {stop}) are outside {store.path} ({store.n} stamps)")
    bounds = [(s, min(s + batch_size, stop)) for s in range(start, stop, batch_size)] or [(start, start)]
    for a, b in bounds:
        sel = slice(a, b)
        rows = np.arange(a, b, dtype=np.int64)
        yield StampBatch(store.stamps(sel), store.mask(sel), store.catalog(sel, list(columns)), rows)


def score_rows(
    module: nn.Module,
    card: Mapping[str, Any],
    store: str | os.PathLike,
    out: str | os.PathLike,
    *,
    start: int = 0,
    stop: int | None = None,
    fmt: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    columns: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    backend: str = "auto",
) -> ScoreResult:
    """Score rows ``[start, stop)`` of a store into a catalog (Parquet, or FITS/CSV by suffix or ``fmt``).

    Same columns and meta as :func:`pipeline.scoring.score_store` (which is this for all rows).

    Args:
        module, card: the loaded model and its model card.
        store: the stamp store.
        out: the catalog part to write.
        start, stop: the row range (``stop`` None: to the end).
        batch_size: stamps per model call.
        columns: store catalog columns to carry (default all).
        device: torch device.
        backend: how the model runs (:class:`pipeline.scoring.Scorer`).

    Raises:
        pipeline.scoring.ModelInputMismatch: the card does not fit the store.
    """
    t0 = time.perf_counter()
    out = Path(out)
    fmt = output_format(out, fmt)
    with open_store(store) as opened:
        check_inputs(card, opened.channels, opened.stamp_shape, f"store {store}")
        stop = opened.n if stop is None else stop
        # Thread-safe: pipeline.fast_inference exports one model at a time and caches it per process.
        scorer = Scorer(module, card, device, backend=backend)
        scorer.prepare((len(opened.channels), *opened.stamp_shape))
        attrs = opened.attrs
        meta = {
            **scorer.meta,
            "input": str(store),
            "input_sha256": str(attrs.get("source_sha256", "")),
            "config_hash": str(attrs.get("config_hash", "")),
            "input_channels": list(opened.channels),
            "n_input": opened.n,
        }
        parquet_path = out if fmt == "parquet" else out.with_name(f".{out.name}.{os.getpid()}.parquet")
        n_flagged = 0
        with ParquetTableWriter(parquet_path, scorer.units, scorer.descriptions, meta) as writer:
            for cols in score_batches(scorer, iter_row_batches(opened, start, stop, batch_size, columns)):
                writer.write(cols)
                n_flagged += int(cols["flag_masked"].sum())
        n = writer.n_rows
    _convert(parquet_path, out, fmt)
    seconds = time.perf_counter() - t0
    return ScoreResult(
        catalog=str(out),
        task=scorer.task,
        model_name=scorer.model_name,
        model_version=scorer.model_version,
        n_scored=n,
        n_flagged_masked=n_flagged,
        seconds=round(seconds, 3),
        stamps_per_s=round(n / seconds, 1) if seconds > 0 else float("nan"),
        inference_backend=scorer.inference["inference_backend"],
    )


def _convert(parquet_path: Path, out: Path, fmt: str) -> None:
    if fmt == "parquet":
        return
    try:
        (parquet_to_fits if fmt == "fits" else parquet_to_csv)(parquet_path, out)
    finally:
        parquet_path.unlink(missing_ok=True)


def join_parts(
    parts: Sequence[str | os.PathLike], out: str | os.PathLike, *, fmt: str | None = None
) -> dict[str, Any]:
    """Join Parquet catalog parts (in order) into one catalog with the first part's units, descriptions
    and meta; written in constant memory (one row group at a time).

    Returns:
        ``{"catalog": path, "n_rows": int, "n_flagged_masked": int}``.
    """
    if not parts:
        raise ValueError("no catalog parts to join")
    out = Path(out)
    fmt = output_format(out, fmt)
    template = Table.read(parts[0], format="parquet", schema_only=True)
    units = {n: str(template[n].unit) for n in template.colnames if template[n].unit is not None}
    descriptions = {n: template[n].description for n in template.colnames if template[n].description}
    parquet_path = out if fmt == "parquet" else out.with_name(f".{out.name}.{os.getpid()}.parquet")
    n_flagged = 0
    with ParquetTableWriter(parquet_path, units, descriptions, dict(template.meta)) as writer:
        for part in parts:
            parquet = pq.ParquetFile(part)
            if parquet.metadata.num_rows == 0:
                empty = parquet.read()
                writer.write({n: empty.column(n).to_numpy(zero_copy_only=False) for n in template.colnames})
                continue
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group)
                cols = {n: table.column(n).to_numpy(zero_copy_only=False) for n in template.colnames}
                writer.write(cols)
                if "flag_masked" in cols:
                    n_flagged += int(np.sum(cols["flag_masked"]))
        n = writer.n_rows
    _convert(parquet_path, out, fmt)
    return {"catalog": str(out), "n_rows": n, "n_flagged_masked": n_flagged}
