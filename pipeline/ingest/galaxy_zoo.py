"""Ingest a Galaxy Zoo catalog and its images into a stamp store with the labels, plus ``rejects.csv``.

Inputs are the catalog's rows. Each row is joined to its image by the catalog's file column when it has one
(paths relative to ``images_dir``, or absolute), else by id: ``{images_dir}/{id}{ext}`` for ext in
:data:`ID_EXTENSIONS` (the Kaggle images are ``{GalaxyID}.jpg``, 424x424 RGB JPEG). JPEG and PNG images
are read by :mod:`pipeline.io.images` (channels R, G, B, values in [0, 1]); FITS images by
:func:`pipeline.io.fits.read_stamp` (e.g. (3, H, W) cubes with channel names in ``CHNAME1..``).

The store holds, per ingested row: catalog ``object_id`` (the galaxy id as str), ``source`` (the image
path), the survey id column verbatim (``GalaxyID``, ``dr7objid``, ``iauname``...), ``ra``/``dec`` when the
catalog has them; labels ``/labels/gz_answers`` (N, 37) float32 Kaggle cumulative fractions and
``/labels/gz_votes`` (N, 37) float32 vote counts (GZ2 with ``_count`` columns) for the Kaggle tree, or
``/labels/gz_decals_fractions`` and ``/labels/gz_decals_votes`` (N, 34) float32 for GZ DECaLS. Root
attributes name the format, estimate and answer columns.

Rows rejected by the catalog reader (bad labels, duplicate ids...) and rows whose image is missing
(``missing_image``), unreadable or of another size or channel set become rows of ``rejects.csv`` with the
galaxy id as ``source``; ingested + rejected = catalog rows. Images in the folder that no row names are
ignored.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_catalogs.galaxy_zoo_formats import CatalogError, GalaxyZooCatalog, read_catalog
from pipeline.io import (
    RejectLog,
    StampRejected,
    header_pixel_scale,
    is_fits_name,
    is_image_file,
    read_image,
    read_stamp,
)
from pipeline.store import IngestReport, StoreBuilder, sha256_file

log = logging.getLogger(__name__)

#: Extensions tried, in order, when an image is looked up by galaxy id (matched case-insensitively).
ID_EXTENSIONS = (".jpg", ".jpeg", ".png", ".fits", ".fits.gz", ".fit", ".fit.gz", ".fts")


class ImageIndex:
    """Finds each galaxy's image in a folder: by a catalog file entry or by ``{id}{ext}``."""

    def __init__(self, images_dir: str | os.PathLike):
        self.root = Path(images_dir)
        self._by_name: dict[str, Path] = {}
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.is_file():
                    self._by_name.setdefault(entry.name.lower(), Path(entry.path))

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> set[str]:
        """Lower-case file names in the folder (top level)."""
        return set(self._by_name)

    def find(self, object_id: str, file: str | None = None) -> Path:
        """The image path for a row; StampRejected(``missing_image``) naming what was tried."""
        if file:
            given = Path(file)
            tried = [given] if given.is_absolute() else []
            tried += [self.root / given, self.root / given.name]
            for path in tried:
                if path.is_file():
                    return path
            raise StampRejected(
                "missing_image", f"image file {file!r} not found (tried {', '.join(str(p) for p in tried)})"
            )
        for ext in ID_EXTENSIONS:
            path = self._by_name.get(f"{object_id}{ext}".lower())
            if path is not None:
                return path
        raise StampRejected(
            "missing_image",
            f"no image {object_id}{{{','.join(ID_EXTENSIONS)}}} in {self.root}",
        )


def read_galaxy_image(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], bytes, float | None]:
    """Read a JPEG/PNG/FITS image: ``(pixels (C,H,W) float32, mask (C,H,W) bool, channels, bytes,
    pixel scale arcsec or None)``; raises StampRejected naming the file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StampRejected("unreadable", f"{path}: cannot read the file ({err.strerror or err})") from err
    if is_image_file(path):
        img = read_image(data, name=str(path))
        return img.pixels, img.mask, img.channels, data, None
    if is_fits_name(path):
        stamp = read_stamp(data, name=str(path))
        return stamp.pixels, stamp.mask, stamp.channels, data, header_pixel_scale(stamp)
    raise StampRejected("not_image", f"{path}: unsupported image type (use JPEG, PNG or FITS)")


def _label_names(catalog: GalaxyZooCatalog) -> tuple[str, str]:
    if catalog.format == "decals":
        return "gz_decals_fractions", "gz_decals_votes"
    return "gz_answers", "gz_votes"


def ingest_galaxy_zoo(
    catalog_path: str | os.PathLike,
    images_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str = "kaggle",
    estimate: str | None = None,
    id_column: str | None = None,
    file_column: str | None = None,
    tol: float | None = None,
    stamp_shape: tuple[int, int] | None = None,
    size_policy: str = "reject",
    rejects_path: str | os.PathLike | None = None,
    compression: str = "lzf",
    chunk_rows: int = 512,
    config_hash: str = "",
    progress: bool = False,
) -> IngestReport:
    """Read a Galaxy Zoo catalog, join each valid row to its image, and write a stamp store and rejects.

    Args:
        catalog_path: CSV, Parquet or FITS table in ``format``.
        images_dir: folder of ``{id}.jpg|.jpeg|.png|.fits|.fits.gz`` images, or the base of a file column.
        out: store path; ``rejects.csv`` is written beside it unless ``rejects_path`` is given.
        format: ``"kaggle"``, ``"gz2"`` or ``"decals"``.
        estimate: GZ2 ``fraction``/``weighted``/``debiased`` or DECaLS ``fraction``/``debiased`` (reader
            default when None; ignored for Kaggle).
        id_column: the catalog's id column (default: per format, see
            :data:`data_catalogs.galaxy_zoo_formats.ID_CANDIDATES`).
        file_column: the catalog's image file column (default: a known name when present, else by id).
        tol: tree tolerance on cumulative fractions (reader default 1e-6 when None; Kaggle and GZ2).
        stamp_shape: ``(H, W)`` of the store; None: the first readable image's.
        size_policy: ``"reject"`` images of another size, or ``"pad"`` smaller ones (centred, masked).
        compression: HDF5 compression of the store.
        chunk_rows: stamps buffered per append (HDF5 chunks are bounded by bytes by the writer).
        progress: show a tqdm progress bar.

    Returns:
        the :class:`~pipeline.store.builder.IngestReport` (inputs = catalog rows = ingested + rejected).

    Raises:
        CatalogError: the catalog cannot be used at all (unreadable, missing columns: all listed); a
            ``rejects.csv`` with one row naming the catalog is written first.
        FileNotFoundError: ``images_dir`` is not a folder.
    """
    out = Path(out)
    rejects_file = Path(rejects_path) if rejects_path else out.with_name("rejects.csv")
    options: dict[str, object] = {}
    if id_column:
        options["id_column"] = id_column
    if file_column:
        options["file_column"] = file_column
    if estimate and format != "kaggle":
        options["estimate"] = estimate
    if tol is not None and format in ("kaggle", "gz2"):
        options["tol"] = tol
    try:
        catalog = read_catalog(catalog_path, format, **options)
    except CatalogError as err:
        log.error("%s", err)
        failed = RejectLog()
        failed.add(err.source, err.reason, err)
        failed.write(rejects_file)
        raise
    if not Path(images_dir).is_dir():
        raise FileNotFoundError(f"images folder {images_dir} does not exist or is not a folder")
    index = ImageIndex(images_dir)
    files: list[str | None] = (
        catalog.table["file"].tolist() if "file" in catalog.table else [None] * len(catalog)
    )

    label_name, vote_name = _label_names(catalog)
    votes = catalog.votes()
    fractions = catalog.fractions()
    id_cols = [catalog.id_column] if catalog.id_column != "object_id" else []
    extra = [c for c in ("ra", "dec") if c in catalog.table and c not in id_cols]
    builder = StoreBuilder(
        out,
        catalog_columns=["object_id", *id_cols, *extra],
        stamp_shape=stamp_shape,
        size_policy=size_policy,
        rejects_path=rejects_file,
        config_hash=config_hash,
        chunk_rows=chunk_rows,
        compression=compression,
        attrs={
            "ingest": "galaxy_zoo",
            "gz_format": catalog.format,
            "gz_estimate": catalog.estimate,
            "gz_id_column": catalog.id_column,
            "gz_answer_columns": list(catalog.answer_columns),
            "gz_labels": [label_name] + ([vote_name] if votes is not None else []),
            "gz_catalog": str(catalog_path),
        },
    )
    try:
        builder.add_source_digest(sha256_file(catalog_path))
        for row in catalog.rejects:
            builder.reject(row["source"], row["reason"], row["error"])
        table = catalog.table
        ids = catalog.ids
        for i in tqdm(range(len(table)), desc="ingest Galaxy Zoo", unit="galaxy", disable=not progress):
            object_id = ids[i]
            try:
                path = index.find(object_id, files[i])
                pixels, mask, channels, data, scale = read_galaxy_image(path)
                pixels, mask = builder.check(str(path), pixels, mask, channels)
            except StampRejected as err:
                builder.reject(object_id, err.reason, f"{catalog.id_column} {object_id}: {err}")
                continue
            if builder.pixel_scale_arcsec is None and scale is not None:
                builder.pixel_scale_arcsec = scale
            record = {"object_id": object_id, **{c: table[c].iat[i] for c in id_cols + extra}}
            labels = {label_name: fractions[i]}
            if votes is not None:
                labels[vote_name] = votes[i]
            builder.add(str(path), pixels, mask, channels, record, labels)
            builder.add_source_digest(hashlib.sha256(data).hexdigest())
    except BaseException:
        builder.abort()
        raise
    report = builder.finish()
    log.info("Galaxy Zoo %s ingest of %s: %s", catalog.format, catalog_path, report.summary())
    return report
