"""The one ingest driver: a source reader's stamps and rejects into a stamp store plus ``rejects.csv``.

:func:`ingest` owns what every source shares: the :class:`~pipeline.store.builder.StoreBuilder` (size and
channel checks, padding, buffering), the rejects, the progress bar, the counts (ingested + rejected =
inputs) and the commit: the store appears under its final name only when the whole ingest succeeded
(``with`` the builder, :class:`~pipeline.io.atomic.CommitOnSuccess`). The readers
(:mod:`pipeline.ingest.registry`) only read; an error a reader lets out while reading one unit becomes
that unit's reject (:func:`read_unit`), so one bad input never ends the run.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.ingest.reader import Item, Reader, Reject, StorePlan
from pipeline.io import RejectLog
from pipeline.store import IngestReport, StoreBuilder

log = logging.getLogger(__name__)


def _open(reader: Reader, rejects_path: Path) -> StorePlan:
    """The reader's plan; a source that cannot be used at all and names itself (an error with ``source``
    and ``reason``, e.g. a Galaxy Zoo ``CatalogError``) is written as the one row of ``rejects.csv``
    before the error is raised again."""
    try:
        return reader.open()
    except Exception as err:
        if hasattr(err, "source") and hasattr(err, "reason"):
            log.error("%s", err)
            failed = RejectLog()
            failed.add(err.source, err.reason, err)
            failed.write(rejects_path)
        raise


def read_unit(reader: Reader, unit: Any, store: StoreBuilder, decoded: Future | None = None) -> list[Item]:
    """The items of one unit, or, when reading it raises anything but a reject the reader names, one
    ``unexpected_error`` reject of that unit (:meth:`~pipeline.ingest.reader.Reader.unit_source`), so
    that one input the readers' checks do not foresee costs that input, never the run. The unit is read
    whole before anything of it is stored: it is counted once either way. ``decoded``: the unit's
    ``reader.decode`` run in a thread (:func:`decoded_units`); what it raised is raised here."""
    try:
        if decoded is not None:
            return list(reader.read(unit, store, decoded.result()))
        return list(reader.read(unit, store))
    except Exception as err:  # the last guard of an input: its reject, with the error named
        source = reader.unit_source(unit)
        log.warning("%s: unexpected error while reading it", source, exc_info=True)
        return [
            Reject(source, "unexpected_error", f"{source}: reading it failed ({type(err).__name__}: {err})")
        ]


def decoded_units(reader: Reader, units: Iterable[Any]) -> Iterator[tuple[Any, Future | None]]:
    """``(unit, future of reader.decode(unit))`` in unit order, decoded by ``reader.workers`` threads at
    most ``4 x workers`` units ahead (so memory stays bounded); ``(unit, None)`` for a reader without
    ``decode`` or with one worker. Pillow and numpy release the GIL while they decode and convert."""
    decode, workers = getattr(reader, "decode", None), int(getattr(reader, "workers", 1) or 1)
    if decode is None or workers <= 1:
        yield from ((unit, None) for unit in units)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="ingest-decode")
    window: deque[tuple[Any, Future]] = deque()
    try:
        for unit in units:
            window.append((unit, pool.submit(decode, unit)))
            if len(window) >= 4 * workers:
                yield window.popleft()
        while window:
            yield window.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _feed(builder: StoreBuilder, item: Item) -> None:
    if isinstance(item, Reject):
        builder.reject(item.source, item.reason, item.error)
        return
    if builder.pixel_scale_arcsec is None and item.pixel_scale_arcsec is not None:
        builder.pixel_scale_arcsec = item.pixel_scale_arcsec
    accepted = builder.add(
        item.source, item.pixels, item.mask, item.channels, item.row, item.labels, item.eight_bit
    )
    if accepted and item.sha256:
        builder.add_source_digest(item.sha256)


def ingest(
    reader: Reader,
    out: str | os.PathLike,
    *,
    rejects_path: str | os.PathLike | None = None,
    compression: str = "lzf",
    chunk_rows: int = 512,
    config_hash: str = "",
    progress: bool = False,
) -> IngestReport:
    """Read every unit of ``reader`` into the stamp store ``out`` and write ``rejects.csv``.

    Args:
        reader: a source reader (:func:`pipeline.ingest.registry.open_reader`).
        out: store path; ``rejects.csv`` is written beside it unless ``rejects_path`` is given.
        compression: HDF5 compression of the store (``lzf``, ``gzip``, ``none``).
        chunk_rows: stamps buffered per append (HDF5 chunks are bounded by bytes by the writer).
        config_hash: recorded in the store.
        progress: show a progress bar (over the reader's units: files or catalog rows).

    Returns:
        The :class:`IngestReport` (ingested + rejected = inputs; no store when nothing was ingested).

    Raises:
        Exception: whatever the reader's ``open`` raises when the source cannot be used at all (nothing
            is written under ``out``).
    """
    rejects_path = Path(rejects_path) if rejects_path else Path(out).with_name("rejects.csv")
    plan = _open(reader, rejects_path)
    builder = StoreBuilder(
        out,
        catalog_columns=plan.catalog_columns,
        channels=plan.channels,
        stamp_shape=plan.stamp_shape,
        size_policy=plan.size_policy,
        rejects_path=rejects_path,
        pixel_scale_arcsec=plan.pixel_scale_arcsec,
        config_hash=config_hash,
        chunk_rows=chunk_rows,
        compression=compression,
        attrs=plan.attrs,
        pixel_dtype=plan.pixel_dtype,
    )
    description, unit = reader.progress
    with builder:
        for reject in plan.rejects:
            builder.reject(reject.source, reject.reason, reject.error)
        for digest in plan.source_digests:
            builder.add_source_digest(digest)
        units = tqdm(reader.units(), total=len(reader), desc=description, unit=unit, disable=not progress)
        for item, decoded in decoded_units(reader, units):
            for read in read_unit(reader, item, builder, decoded):
                _feed(builder, read)
    log.info("%s: %s", description, builder.report.summary())
    return builder.report
