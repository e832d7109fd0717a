"""Reader of stamps cut from a large image at the positions of a catalog,
:class:`~pipeline.ingest.sources.CutoutSource`.

Each catalog row is one input: it becomes a stamp (``object_id``, ``source`` = ``image#row``, ``x``/``y``
0-based pixels, ``ra``/``dec`` degrees, plus the catalog's other columns verbatim) or a row of
``rejects.csv`` (``outside_image``, ``no_wcs``, ``bad_position``, ``all_masked``). A row whose position is
not a number (``abc``, empty, ``inf``) or off the sky (``dec = 95``) is its own ``bad_position`` reject: the
other rows are cut as usual. The image is the one input of the run: an image that cannot be read raises
StampRejected from :meth:`CutoutReader.open`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from data_catalogs.tables import CatalogError, read_table
from pipeline.ingest.reader import Item, Reject, SourceReader, Stamp, StorePlan
from pipeline.ingest.registry import ingest_with
from pipeline.ingest.sources import CutoutSource
from pipeline.io import StampRejected, cut_stamp, off_sky, pixel_positions, read_fits_image
from pipeline.store import IngestReport, StoreBuilder

ID_COLUMN_CANDIDATES = ("object_id", "objectId", "id", "ID", "source_id", "GalaxyID")


def _pick_id_column(catalog: pd.DataFrame, id_col: str | None, name: str) -> str | None:
    if id_col is not None:
        if id_col not in catalog.columns:
            raise CatalogError(
                name,
                "missing_columns",
                f"id column {id_col!r} not in catalog columns {list(catalog.columns)}",
                [id_col],
            )
        return id_col
    return next((c for c in ID_COLUMN_CANDIDATES if c in catalog.columns), None)


def _shown(value: Any) -> str:
    """A catalog value for a message: text quoted (so that an empty one shows), numbers as numbers."""
    return repr(value) if isinstance(value, str) else str(value)


def _pixel_scale(wcs: Any) -> float | None:
    """Mean pixel scale of an image's celestial WCS in arcsec (None without a WCS)."""
    if wcs is None:
        return None
    from astropy.wcs.utils import proj_plane_pixel_scales

    return float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)


class CutoutReader(SourceReader):
    """Reads a :class:`CutoutSource`: the image and the catalog first, then one cutout per catalog row.

    Positions are pixel ``(x_col, y_col)`` (0-based) when both are given, else sky ``(ra_col, dec_col)`` in
    degrees through the image's celestial WCS. ``table``: the catalog already in memory (the source's
    ``catalog`` then only names it).

    :meth:`open` raises :class:`data_catalogs.tables.CatalogError` (a ValueError naming the catalog, with a
    ``reason``: ``missing_columns`` when it lacks the position or id columns, the message listing the
    columns it has; ``unreadable``, ``unknown_table_format`` from :func:`data_catalogs.tables.read_table`)
    and StampRejected when the image itself cannot be read.
    """

    progress = ("cutouts", "stamp")

    def __init__(self, *args: Any, table: pd.DataFrame | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.given_table = table
        self.problems: dict[int, str] = {}  # catalog row -> why its position cannot be cut

    def open(self) -> StorePlan:
        source: CutoutSource = self.source
        table = self.given_table if self.given_table is not None else read_table(source.catalog)
        use_pixels = source.x_col is not None and source.y_col is not None
        needed = [source.x_col, source.y_col] if use_pixels else [source.ra_col, source.dec_col]
        missing = [c for c in needed if c is None or c not in table.columns]
        if missing:  # e.g. a CSV cut inside its header
            raise CatalogError(
                source.catalog,
                "missing_columns",
                f"the catalog lacks position columns {missing}; it has {list(table.columns)}",
                [str(c) for c in missing],
            )
        id_column = _pick_id_column(table, source.id_col, str(source.catalog))
        self.image = read_fits_image(source.image, hdu=source.hdu)
        self.table, self.ids = table, [str(v) for v in (table[id_column] if id_column else table.index)]
        self.extra = [c for c in table.columns if c not in ("object_id", "source", "x", "y", "ra", "dec")]
        plan = StorePlan(
            catalog_columns=["object_id", "x", "y", "ra", "dec", *self.extra],
            attrs={"ingest": "cutouts", "image": str(source.image)},
            channels=self.image.channels,
            stamp_shape=(source.size, source.size),
            pixel_scale_arcsec=_pixel_scale(self.image.wcs),
        )
        try:
            self.xs, self.ys = self._positions(use_pixels)
        except StampRejected as err:  # no position can be cut: every row is rejected, nothing read
            plan.rejects = [Reject(self._source_of(i), err.reason, str(err)) for i in range(len(self.ids))]
            self.ids = []
            return plan
        plan.source_digests.append(self.inputs.sha256(source.image))
        if self.given_table is None:
            plan.source_digests.append(self.inputs.sha256(source.catalog))
        return plan

    def _positions(self, use_pixels: bool) -> tuple[np.ndarray, np.ndarray]:
        """Pixel ``(x, y)`` of every row; rows whose position is not a number (or, for sky positions, off
        the sky) are NaN and named in :attr:`problems`, so that each is its own ``bad_position`` reject."""
        source, table = self.source, self.table
        names = [source.x_col, source.y_col] if use_pixels else [source.ra_col, source.dec_col]
        a, b = (pd.to_numeric(table[c], errors="coerce").to_numpy(float, na_value=np.nan) for c in names)
        bad = ~(np.isfinite(a) & np.isfinite(b)) if use_pixels else off_sky(a, b)
        what = "a pixel position" if use_pixels else "a sky position (finite, |dec| <= 90)"
        self.problems = {
            int(i): f"{names[0]} = {_shown(table[names[0]].iloc[i])}, {names[1]} = "
            f"{_shown(table[names[1]].iloc[i])} is not {what}"
            for i in np.flatnonzero(bad)
        }
        if use_pixels:
            return np.where(bad, np.nan, a), np.where(bad, np.nan, b)
        return pixel_positions(self.image, a, b)

    def _source_of(self, i: int) -> str:
        return f"{self.source.image}#{i}:{self.ids[i]}"

    def unit_source(self, i: int) -> str:
        return self._source_of(i)

    def __len__(self) -> int:
        return len(self.ids)

    def units(self) -> range:
        return range(len(self.ids))

    def read(self, i: int, store: StoreBuilder) -> Iterator[Item]:
        source = self._source_of(i)
        if i in self.problems:
            yield Reject(source, "bad_position", f"{source}: {self.problems[i]}")
            return
        try:
            cut = cut_stamp(self.image, self.xs[i], self.ys[i], self.source.size)
            if cut.mask.all():
                raise StampRejected("all_masked", f"{source}: every pixel of the cutout is masked")
        except StampRejected as err:
            yield Reject(source, err.reason, str(err))
            return
        row = {"object_id": self.ids[i], "x": cut.x, "y": cut.y, "ra": cut.ra, "dec": cut.dec}
        row.update({c: self.table[c].iloc[i] for c in self.extra})
        yield Stamp(source, cut.pixels, cut.mask, self.image.channels, row)


def ingest_cutouts(
    image_path: str | os.PathLike,
    catalog: str | os.PathLike | pd.DataFrame,
    out: str | os.PathLike,
    **options: Any,
) -> IngestReport:
    """Cut stamps: :class:`CutoutSource` ``(image=image_path, catalog=catalog, **options)`` into the store
    ``out`` (``options``: the source's fields and the driver's keywords); ``catalog`` may be a DataFrame."""
    table = catalog if isinstance(catalog, pd.DataFrame) else None
    named = {"image": image_path, "catalog": "<DataFrame>" if table is not None else catalog}
    return ingest_with("cutouts", out, {**named, **options}, table=table)
