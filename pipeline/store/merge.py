"""Merge the stores and rejects of an ingest done in chunks into one stamp store and one ``rejects.csv``.

An ingest split into chunks of input files (so that chunks run in parallel, on several machines, and are
cached one by one) writes one part store and one rejects file per chunk. :func:`merge_stores` reads the
parts in order and feeds every row through :class:`pipeline.store.builder.StoreBuilder`, the one
accept/reject path of every ingest: a part whose channels or stamp size differ from the first part's is
padded or rejected row by row with the usual reasons (``wrong_channels``, ``wrong_shape``), exactly as a
single pass over all inputs would. The chunks' own rejects are carried over in order, so ingested +
rejected = inputs still holds for the whole ingest, and rows and rejects come out in input order.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.store.builder import IngestReport, StoreBuilder
from pipeline.store.pixels import PIXEL_DIVISOR_ATTR, PIXEL_DTYPE_ATTR, UINT8_DIVISOR
from pipeline.store.stamp_store import open_store

#: Root attributes every store writer sets itself (not copied from the parts).
WRITER_ATTRS = (
    "schema_version",
    "channels",
    "stamp_shape",
    "pixel_scale_arcsec",
    "created_by",
    "config_hash",
    "complete",
    "source_sha256",
    "n_stamps",
    PIXEL_DTYPE_ATTR,
    PIXEL_DIVISOR_ATTR,
)


def read_rejects(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a ``rejects.csv`` (``source``, ``reason``, ``error``), in file order."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def merge_stores(
    parts: Sequence[str | os.PathLike | None],
    rejects: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    rejects_path: str | os.PathLike | None = None,
    digests: Mapping[str, str] | None = None,
    stamp_shape: tuple[int, int] | None = None,
    size_policy: str = "reject",
    compression: str = "lzf",
    chunk_rows: int = 512,
    config_hash: str = "",
    read_rows: int = 1024,
) -> IngestReport:
    """Concatenate part stores (in order) into ``out`` and their rejects into ``rejects.csv``.

    Args:
        parts: part store paths, one per chunk; None for a chunk that ingested nothing.
        rejects: the chunks' rejects CSVs, same order.
        out: the merged store; ``rejects.csv`` is written beside it unless ``rejects_path`` is given.
        digests: input source (the catalog ``source`` column) -> sha256 of its file; the merged store's
            ``source_sha256`` then combines the digests of the accepted inputs, as a single-pass ingest
            would. Without it the parts' own ``source_sha256`` values are combined.
        stamp_shape: ``(H, W)`` of the merged store (default: the first part's).
        size_policy: ``"reject"`` or ``"pad"`` rows of parts with another stamp size.
        compression, chunk_rows, config_hash: passed to the store writer.
        read_rows: rows read from a part at a time.

    Returns:
        The merged :class:`IngestReport`: inputs = rows of all parts + all rejects rows.
    """
    if len(parts) != len(rejects):
        raise ValueError(f"{len(parts)} part stores but {len(rejects)} rejects files")
    layout = _first_part_layout(parts, stamp_shape)
    options = {"compression": compression, "chunk_rows": chunk_rows, "config_hash": config_hash}
    with StoreBuilder(
        out, size_policy=size_policy, rejects_path=rejects_path, **layout, **options
    ) as builder:
        for part, part_rejects in zip(parts, rejects, strict=True):
            for row in read_rejects(part_rejects):
                builder.reject(row["source"], row["reason"], row["error"])
            if part is not None:
                _add_part(builder, part, digests, read_rows)
    return builder.report


def _first_part_layout(
    parts: Sequence[str | os.PathLike | None], stamp_shape: tuple[int, int] | None
) -> dict[str, Any]:
    """StoreBuilder arguments taken from the first part: catalog columns, channels, size, scale, pixel
    dtype (a uint8 part makes a uint8 store), attrs."""
    first = next((p for p in parts if p is not None), None)
    if first is None:
        return {"stamp_shape": stamp_shape}
    with open_store(first) as store:
        return {
            "catalog_columns": store.catalog_columns,
            "channels": store.channels,
            "stamp_shape": stamp_shape or store.stamp_shape,
            "pixel_scale_arcsec": store.pixel_scale_arcsec,
            "pixel_dtype": "uint8" if store.divisor == UINT8_DIVISOR else "float32",
            "attrs": {k: v for k, v in store.attrs.items() if k not in WRITER_ATTRS},
        }


def _add_part(
    builder: StoreBuilder, part: str | os.PathLike, digests: Mapping[str, str] | None, read_rows: int
) -> None:
    """Feed every row of one part store through ``builder`` (accepted or rejected like any stamp)."""
    with open_store(part) as store:
        if digests is None:
            builder.add_source_digest(str(store.attrs.get("source_sha256", "")))
        names = store.label_names
        for sel, stamps, mask in store.iter_chunks(read_rows):
            catalog = store.catalog(sel).to_dict("records")
            labels = {name: store.labels(name, sel) for name in names}
            for i, row in enumerate(catalog):
                source = str(row["source"])
                accepted = builder.add(
                    source,
                    stamps[i],
                    mask[i],
                    store.channels,
                    {k: v for k, v in row.items() if k != "source"},
                    {name: values[i] for name, values in labels.items()},
                    eight_bit=store.divisor == UINT8_DIVISOR,
                )
                if accepted and digests is not None and source in digests:
                    builder.add_source_digest(digests[source])
