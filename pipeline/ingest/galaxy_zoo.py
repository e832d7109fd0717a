"""Reader of a Galaxy Zoo catalog and its images, :class:`~pipeline.ingest.sources.GalaxyZooSource`: a stamp
store with the labels, plus ``rejects.csv``.

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

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from data_catalogs.galaxy_zoo_catalog import GalaxyZooCatalog
from data_catalogs.galaxy_zoo_formats import read_catalog
from pipeline.ingest.inputs import InputFiles
from pipeline.ingest.reader import Item, Reject, SourceReader, Stamp, StorePlan
from pipeline.ingest.registry import ingest_with
from pipeline.ingest.sources import GalaxyZooSource
from pipeline.io import StampRejected, header_pixel_scale, is_fits_name, is_image_file, read_image, read_stamp
from pipeline.store import IngestReport, StoreBuilder

#: Extensions tried, in order, when an image is looked up by galaxy id (matched case-insensitively).
ID_EXTENSIONS = (".jpg", ".jpeg", ".png", ".fits", ".fits.gz", ".fit", ".fit.gz", ".fts")


class ImageIndex:
    """Finds each galaxy's image in a folder: by a catalog file entry or by ``{id}{ext}``."""

    def __init__(self, images_dir: str | os.PathLike):
        self.root = Path(images_dir)
        self._by_name: dict[str, Path] = {}
        with os.scandir(self.root) as entries:
            for entry in entries:
                # a link that loops or whose target is gone is listed too: its row's read names the problem
                # (``unreadable``), where is_file() would raise (ELOOP) or hide the image as missing
                if entry.is_symlink() or entry.is_file():
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


def read_galaxy_image(
    inputs: InputFiles, path: Path
) -> tuple[np.ndarray, np.ndarray, list[str], str, float | None]:
    """Read a JPEG/PNG/FITS image: ``(pixels (C,H,W) float32, mask (C,H,W) bool, channels, sha256 of the
    file, pixel scale arcsec or None)``; raises StampRejected naming the file."""
    data, sha256 = inputs.read(path)
    if is_image_file(path):
        img = read_image(data, name=str(path))
        return img.pixels, img.mask, img.channels, sha256, None
    if is_fits_name(path):
        stamp = read_stamp(data, name=str(path))
        return stamp.pixels, stamp.mask, stamp.channels, sha256, header_pixel_scale(stamp)
    raise StampRejected("not_image", f"{path}: unsupported image type (use JPEG, PNG or FITS)")


def _label_names(catalog: GalaxyZooCatalog) -> tuple[str, str]:
    if catalog.format == "decals":
        return "gz_decals_fractions", "gz_decals_votes"
    return "gz_answers", "gz_votes"


def _catalog_options(source: GalaxyZooSource) -> dict[str, Any]:
    """The reader options of :func:`data_catalogs.galaxy_zoo_formats.read_catalog` the source sets."""
    options: dict[str, Any] = {}
    if source.id_column:
        options["id_column"] = source.id_column
    if source.file_column:
        options["file_column"] = source.file_column
    if source.estimate and source.format != "kaggle":
        options["estimate"] = source.estimate
    if source.tol is not None and source.format in ("kaggle", "gz2"):
        options["tol"] = source.tol
    return options


class GalaxyZooReader(SourceReader):
    """Reads a :class:`GalaxyZooSource`: the catalog first (its bad rows are rejects), then each row's image.

    :meth:`open` raises ``CatalogError`` when the catalog cannot be used at all (unreadable, missing
    columns: all listed; the driver writes it as the one row of ``rejects.csv``) and FileNotFoundError
    when ``images_dir`` is not a folder.
    """

    progress = ("ingest Galaxy Zoo", "galaxy")

    def open(self) -> StorePlan:
        source: GalaxyZooSource = self.source
        catalog = read_catalog(source.catalog, source.format, **_catalog_options(source))
        if not Path(source.images_dir).is_dir():
            raise FileNotFoundError(f"images folder {source.images_dir} does not exist or is not a folder")
        self.catalog, self.index = catalog, ImageIndex(source.images_dir)
        self.row_files = catalog.table["file"].tolist() if "file" in catalog.table else [None] * len(catalog)
        self.label_name, self.vote_name = _label_names(catalog)
        self.votes, self.fractions = catalog.votes(), catalog.fractions()
        self.id_cols = [catalog.id_column] if catalog.id_column != "object_id" else []
        self.extra = [c for c in ("ra", "dec") if c in catalog.table and c not in self.id_cols]
        return StorePlan(
            catalog_columns=["object_id", *self.id_cols, *self.extra],
            attrs={
                "ingest": "galaxy_zoo",
                "gz_format": catalog.format,
                "gz_estimate": catalog.estimate,
                "gz_id_column": catalog.id_column,
                "gz_answer_columns": list(catalog.answer_columns),
                "gz_labels": [self.label_name] + ([self.vote_name] if self.votes is not None else []),
                "gz_catalog": str(source.catalog),
            },
            stamp_shape=source.stamp_shape,
            size_policy=source.size_policy,
            source_digests=[self.inputs.sha256(source.catalog)],
            rejects=[Reject(r["source"], r["reason"], r["error"]) for r in catalog.rejects],
        )

    def __len__(self) -> int:
        return len(self.row_files)

    def units(self) -> range:
        return range(len(self.row_files))

    def unit_source(self, i: int) -> str:
        return self.catalog.ids[i]

    def read(self, i: int, store: StoreBuilder) -> Iterator[Item]:
        object_id = self.catalog.ids[i]
        try:
            path = self.index.find(object_id, self.row_files[i])
            pixels, mask, channels, sha256, scale = read_galaxy_image(self.inputs, path)
            pixels, mask = store.check(str(path), pixels, mask, channels)
        except StampRejected as err:
            yield Reject(object_id, err.reason, f"{self.catalog.id_column} {object_id}: {err}")
            return
        table = self.catalog.table
        record = {"object_id": object_id, **{c: table[c].iat[i] for c in self.id_cols + self.extra}}
        labels = {self.label_name: self.fractions[i]}
        if self.votes is not None:
            labels[self.vote_name] = self.votes[i]
        yield Stamp(str(path), pixels, mask, channels, record, labels, sha256, scale)


def ingest_galaxy_zoo(
    catalog_path: str | os.PathLike, images_dir: str | os.PathLike, out: str | os.PathLike, **options: Any
) -> IngestReport:
    """Ingest a Galaxy Zoo catalog and its images: :class:`GalaxyZooSource` ``(catalog=catalog_path,
    images_dir=images_dir, **options)`` into the store ``out`` (``options``: the source's fields and the
    driver's keywords). Raises as :class:`GalaxyZooReader` does (inputs = catalog rows = ingested +
    rejected otherwise)."""
    return ingest_with("galaxy_zoo", out, {"catalog": catalog_path, "images_dir": images_dir, **options})
