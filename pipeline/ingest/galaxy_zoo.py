"""Reader of a Galaxy Zoo catalog and its images, :class:`~pipeline.ingest.sources.GalaxyZooSource`: a stamp
store with the labels, plus ``rejects.csv``.

Inputs are the catalog's rows. Each row is joined to its image by the catalog's file column when it has one
(paths relative to ``images_dir``, or absolute), else by id: ``{images_dir}/{id}{ext}`` for ext in
:data:`pipeline.ingest.galaxy_images.ID_EXTENSIONS` (the Kaggle images are ``{GalaxyID}.jpg``, 424x424
RGB JPEG). JPEG and PNG images are read by :mod:`pipeline.io.images` (values in [0, 1]; the R, G, B planes
named after the bands they show, ``bands``: i, r, g for Kaggle and GZ2, z, r, g for DECaLS); FITS images by
:func:`pipeline.io.fits.read_stamp` (e.g. (3, H, W) cubes with channel names in ``CHNAME1..``).

With ``frame_crop``/``frame_size`` every image is framed before it is stored
(:class:`pipeline.prep.frame.IngestFrame`: centre crop, area-averaged; the store's root attribute
``frame`` records it, and an image smaller than the crop is a ``smaller_than_frame`` reject). 8-bit
JPEG/PNG pixels are stored as uint8 by default (``pixel_dtype``, :mod:`pipeline.store.pixels`). Images
are decoded by ``workers`` threads ahead of the store (:func:`pipeline.ingest.driver.decoded_units`); the
store is the same as a one-thread ingest's.

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

from data_catalogs.galaxy_zoo_catalog import GalaxyZooCatalog
from data_catalogs.galaxy_zoo_formats import read_catalog
from pipeline.cpus import usable_cpus
from pipeline.ingest.galaxy_images import (
    DEFAULT_BANDS,
    GalaxyImage,
    ImageIndex,
    frame_image,
    read_galaxy_image,
)
from pipeline.ingest.reader import Item, Reject, SourceReader, Stamp, StorePlan
from pipeline.ingest.registry import ingest_with
from pipeline.ingest.sources import GalaxyZooSource
from pipeline.io import StampRejected
from pipeline.prep.frame import FRAME_ATTR, IngestFrame
from pipeline.store import IngestReport, StoreBuilder


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


def source_frame(source: GalaxyZooSource) -> IngestFrame | None:
    """The ingest frame the source asks for (None: images as read)."""
    if source.frame_crop is None or source.frame_size is None:
        return None
    return IngestFrame(crop=source.frame_crop, size=source.frame_size)


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
        self.ids = catalog.ids
        self.row_files = catalog.table["file"].tolist() if "file" in catalog.table else [None] * len(catalog)
        self.label_name, self.vote_name = _label_names(catalog)
        self.votes, self.fractions = catalog.votes(), catalog.fractions()
        self.id_cols = [catalog.id_column] if catalog.id_column != "object_id" else []
        self.extra = [c for c in ("ra", "dec") if c in catalog.table and c not in self.id_cols]
        self.columns = {c: catalog.table[c].tolist() for c in self.id_cols + self.extra}
        self.bands = list(source.bands or DEFAULT_BANDS[catalog.format])
        self.frame = source_frame(source)
        self.workers = source.workers or usable_cpus()
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
                **({FRAME_ATTR: self.frame.to_attr()} if self.frame is not None else {}),
            },
            stamp_shape=source.stamp_shape,
            size_policy=source.size_policy,
            source_digests=[self.inputs.sha256(source.catalog)],
            rejects=[Reject(r["source"], r["reason"], r["error"]) for r in catalog.rejects],
            pixel_dtype=source.pixel_dtype,
        )

    def __len__(self) -> int:
        return len(self.row_files)

    def units(self) -> range:
        return range(len(self.row_files))

    def unit_source(self, i: int) -> str:
        return self.ids[i]

    def _reject(self, i: int, err: StampRejected) -> Reject:
        return Reject(self.ids[i], err.reason, f"{self.catalog.id_column} {self.ids[i]}: {err}")

    def decode(self, i: int) -> GalaxyImage | Reject:
        """Row ``i``'s image found, read, decoded and framed, or its reject (thread-safe: no store)."""
        try:
            path = self.index.find(self.ids[i], self.row_files[i])
            if self.frame is None:
                return read_galaxy_image(self.inputs, path, self.bands)
            image = read_galaxy_image(self.inputs, path, self.bands, self.frame.crop)
            return frame_image(image, self.frame)
        except StampRejected as err:
            return self._reject(i, err)

    def read(
        self, i: int, store: StoreBuilder, decoded: GalaxyImage | Reject | None = None
    ) -> Iterator[Item]:
        image = self.decode(i) if decoded is None else decoded
        if isinstance(image, Reject):
            yield image
            return
        try:
            pixels, mask = store.check(
                str(image.path), image.pixels, image.mask, image.channels, image.eight_bit
            )
        except StampRejected as err:
            yield self._reject(i, err)
            return
        record = {"object_id": self.ids[i], **{c: values[i] for c, values in self.columns.items()}}
        labels = {self.label_name: self.fractions[i]}
        if self.votes is not None:
            labels[self.vote_name] = self.votes[i]
        yield Stamp(
            str(image.path),
            pixels,
            mask,
            image.channels,
            record,
            labels,
            image.sha256,
            image.pixel_scale_arcsec,
            image.eight_bit,
        )


def ingest_galaxy_zoo(
    catalog_path: str | os.PathLike, images_dir: str | os.PathLike, out: str | os.PathLike, **options: Any
) -> IngestReport:
    """Ingest a Galaxy Zoo catalog and its images: :class:`GalaxyZooSource` ``(catalog=catalog_path,
    images_dir=images_dir, **options)`` into the store ``out`` (``options``: the source's fields and the
    driver's keywords). Raises as :class:`GalaxyZooReader` does (inputs = catalog rows = ingested +
    rejected otherwise)."""
    return ingest_with("galaxy_zoo", out, {"catalog": catalog_path, "images_dir": images_dir, **options})
