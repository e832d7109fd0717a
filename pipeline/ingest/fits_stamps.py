"""Reader of FITS stamp files (one stamp per file), :class:`~pipeline.ingest.sources.FitsSource`.

Each file becomes one row: ``object_id`` (header ``OBJECTID``, else ``OBJECT``, else the file name without
its FITS suffix), ``source`` (the path), ``ra``/``dec`` in degrees (header ``RA``/``DEC``, else the WCS at the
stamp centre, else NaN), and any header keys asked for with ``header_keys`` (copied verbatim as strings,
empty when absent). A file that cannot be ingested becomes a row of ``rejects.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.ingest.inputs import InputFiles, expand_paths
from pipeline.ingest.reader import Item, SourceReader, Stamp, StorePlan, rejected
from pipeline.ingest.registry import ingest_with
from pipeline.io import (
    FitsStamp,
    StampRejected,
    fits_stem,
    header_pixel_scale,
    header_sky_position,
    header_value,
    is_fits_name,
    read_stamp,
)
from pipeline.store import IngestReport, StoreBuilder


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files to ingest: each file as given, each folder's FITS files (recursively, sorted by path); a path
    that does not exist is kept, so that it is reported as a reject rather than lost."""
    return expand_paths(paths, is_fits_name)


def read_fits_file(
    inputs: InputFiles, path: Path, extensions: Sequence[str] | None = None
) -> tuple[FitsStamp, str]:
    """``(stamp, sha256 of the file)`` of one FITS stamp file; StampRejected naming the file otherwise."""
    data, sha256 = inputs.read(path)
    return read_stamp(data, name=str(path), extensions=extensions), sha256


def first_pixel_scale(stamp: FitsStamp, store: StoreBuilder) -> float | None:
    """The scale a stamp offers the store (``PIXSCALE`` or WCS), while nothing is ingested yet."""
    return header_pixel_scale(stamp) if store.n_ingested == 0 else None


def _object_id(stamp: FitsStamp, path: Path) -> str:
    for key in ("OBJECTID", "OBJECT"):
        value = header_value(stamp.header, key, stamp.source)
        if value not in (None, ""):
            return str(value).strip()
    return fits_stem(path)


def _row(stamp: FitsStamp, path: Path, header_keys: Sequence[str]) -> dict[str, Any]:
    """The catalog row of a stamp file; StampRejected (``bad_header``, ``bad_position``) naming the file."""
    ra, dec = header_sky_position(stamp)
    row: dict[str, Any] = {"object_id": _object_id(stamp, path), "ra": ra, "dec": dec}
    for key in header_keys:
        value = header_value(stamp.header, key, stamp.source)
        row[key.lower()] = "" if value is None else str(value)
    return row


class FitsReader(SourceReader):
    """Reads a :class:`FitsSource` file by file (chunked: the flow hands each chunk its ``files``)."""

    progress = ("ingest FITS", "file")
    chunked = True
    sources_are_files = True
    wanted = staticmethod(is_fits_name)

    def open(self) -> StorePlan:
        source = self.source
        return StorePlan(
            catalog_columns=["object_id", "ra", "dec", *[k.lower() for k in source.header_keys]],
            attrs={"ingest": "fits", "extensions": list(source.extensions or [])},
            stamp_shape=source.stamp_shape,
            size_policy=source.size_policy,
            pixel_scale_arcsec=source.pixel_scale_arcsec,
        )

    def read(self, path: Path, store: StoreBuilder) -> Iterator[Item]:
        try:  # everything taken from the file's headers is checked here, as this file's reject
            stamp, sha256 = read_fits_file(self.inputs, path, self.source.extensions)
            row = _row(stamp, path, self.source.header_keys)
            scale = first_pixel_scale(stamp, store)
        except StampRejected as err:
            yield rejected(path, err)
            return
        yield Stamp(
            str(path), stamp.pixels, stamp.mask, stamp.channels, row, sha256=sha256, pixel_scale_arcsec=scale
        )


def ingest_fits(paths: Sequence[str | os.PathLike], out: str | os.PathLike, **options: Any) -> IngestReport:
    """Ingest FITS stamps: :class:`FitsSource` ``(inputs=paths, **options)`` into the store ``out``
    (``options``: the source's fields and the driver's keywords, :func:`pipeline.ingest.driver.ingest`)."""
    return ingest_with("fits", out, {"inputs": paths, **options})
