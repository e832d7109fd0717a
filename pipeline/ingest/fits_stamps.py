"""Ingest FITS stamp files (one stamp per file) into a stamp store, with rejects.

Each file becomes one row: ``object_id`` (header ``OBJECTID``, else ``OBJECT``, else the file name without
its FITS suffix), ``source`` (the path), ``ra``/``dec`` in degrees (header ``RA``/``DEC``, else the WCS at the
stamp centre, else NaN), and any header keys asked for with ``header_keys`` (copied verbatim as strings,
empty when absent). A file that cannot be ingested becomes a row of ``rejects.csv``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

from pipeline.io import (
    FitsStamp,
    StampRejected,
    fits_stem,
    header_pixel_scale,
    header_sky_position,
    is_fits_name,
    read_stamp,
)
from pipeline.store import IngestReport, StoreBuilder


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files to ingest: each file as given, each folder's FITS files (recursively, sorted by path).

    A path that does not exist is kept, so that it is reported as a reject rather than lost.
    """
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_fits_name(p)))
        else:
            out.append(path)
    return out


def read_fits_input(
    path: Path, builder: StoreBuilder, extensions: Sequence[str] | None = None
) -> tuple[FitsStamp, bytes] | None:
    """Read one FITS stamp file for ``builder``: ``(stamp, file bytes)``, or None after recording the reject.

    The first stamp read also sets the builder's pixel scale when none was given (``PIXSCALE`` or WCS).
    """
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        builder.reject(source, "unreadable", f"{source}: cannot read file ({err.strerror or err})")
        return None
    try:
        stamp = read_stamp(data, name=source, extensions=extensions)
    except StampRejected as err:
        builder.reject(source, err.reason, err)
        return None
    if builder.pixel_scale_arcsec is None and builder.n_ingested == 0:
        builder.pixel_scale_arcsec = header_pixel_scale(stamp)
    return stamp, data


def _object_id(stamp, path: Path) -> str:
    for key in ("OBJECTID", "OBJECT"):
        value = stamp.header.get(key)
        if value not in (None, ""):
            return str(value).strip()
    return fits_stem(path)


def ingest_fits(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    extensions: Sequence[str] | None = None,
    stamp_shape: tuple[int, int] | None = None,
    size_policy: str = "reject",
    header_keys: Sequence[str] = (),
    pixel_scale_arcsec: float | None = None,
    rejects_path: str | os.PathLike | None = None,
    compression: str = "lzf",
    chunk_rows: int = 512,
    config_hash: str = "",
    progress: bool = False,
) -> IngestReport:
    """Read FITS stamps from files and folders and write them to one stamp store.

    Args:
        paths: FITS files and/or folders (searched recursively for ``*.fits[.gz]``, ``*.fit``, ``*.fts``).
        out: store path; ``rejects.csv`` is written beside it unless ``rejects_path`` is given.
        extensions: EXTNAMEs to read as channels (see :func:`pipeline.io.fits.read_stamp`).
        stamp_shape: ``(H, W)`` of the store; None: the first readable stamp's.
        size_policy: ``"reject"`` stamps of another size or ``"pad"`` smaller ones (centred, masked).
        header_keys: header keys copied into catalog columns of the same name (lower-cased).
        pixel_scale_arcsec: store pixel scale; None: from the first stamp's ``PIXSCALE`` or WCS.
        progress: show a progress bar.

    Returns:
        The :class:`IngestReport` (ingested + rejected = number of input files).
    """
    files = expand_inputs(paths)
    columns = ["object_id", "ra", "dec", *[k.lower() for k in header_keys]]
    builder = StoreBuilder(
        out,
        catalog_columns=columns,
        stamp_shape=stamp_shape,
        size_policy=size_policy,
        rejects_path=rejects_path,
        pixel_scale_arcsec=pixel_scale_arcsec,
        config_hash=config_hash,
        chunk_rows=chunk_rows,
        compression=compression,
        attrs={"ingest": "fits", "extensions": list(extensions or [])},
    )
    try:
        for path in tqdm(files, desc="ingest FITS", unit="file", disable=not progress):
            read = read_fits_input(path, builder, extensions)
            if read is None:
                continue
            stamp, data = read
            ra, dec = header_sky_position(stamp)
            row = {"object_id": _object_id(stamp, path), "ra": ra, "dec": dec}
            for key in header_keys:
                value = stamp.header.get(key)
                row[key.lower()] = "" if value is None else str(value)
            if builder.add(str(path), stamp.pixels, stamp.mask, stamp.channels, row):
                builder.add_source_digest(hashlib.sha256(data).hexdigest())
    except BaseException:
        builder.abort()
        raise
    return builder.finish()
