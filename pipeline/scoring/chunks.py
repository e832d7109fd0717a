"""Score a stamp store in row ranges, one catalog part per range, and join the parts into one catalog.

Scoring a large store in independent row ranges lets the ranges run in parallel (threads, processes, a Dask
cluster) and be cached one by one. Each part is what :func:`pipeline.scoring.scorer.score_store` writes for
its ``start``/``stop`` rows (same columns, ``store_row`` numbering the stamp in the whole store, same table
meta), so the joined catalog equals a single pass whenever the batches are the same. Scoring ranges on
threads is safe: :mod:`pipeline.scoring.fast_inference` exports one model at a time and caches it per process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from astropy.table import Table

from pipeline.io import ParquetTableWriter, output_format, publish_catalog, staging_parquet_path


def row_ranges(n: int, chunk_rows: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in ranges of at most ``chunk_rows`` (one empty range
    when ``n`` is 0, so that an empty store still gives a catalog)."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return [(s, min(s + chunk_rows, n)) for s in range(0, n, chunk_rows)] or [(0, 0)]


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
    parquet_path = staging_parquet_path(out, fmt)
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
    publish_catalog(parquet_path, out, fmt)
    return {"catalog": str(out), "n_rows": n, "n_flagged_masked": n_flagged}
