"""Cut stamps from a large image at the positions of a catalog and write them to a stamp store.

Each catalog row is one input: it becomes a stamp (``object_id``, ``source`` = ``image#row``, ``x``/``y``
0-based pixels, ``ra``/``dec`` degrees, plus the catalog's other columns verbatim) or a row of
``rejects.csv`` (``outside_image``, ``no_wcs``, ``bad_position``, ``all_masked``).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from tqdm import tqdm

from data_catalogs.tables import read_table
from pipeline.io import StampRejected, cut_stamp, pixel_positions, read_fits_image
from pipeline.store import IngestReport, StoreBuilder, sha256_file

ID_COLUMN_CANDIDATES = ("object_id", "objectId", "id", "ID", "source_id", "GalaxyID")


def _pick_id_column(catalog: pd.DataFrame, id_col: str | None) -> str | None:
    if id_col is not None:
        if id_col not in catalog.columns:
            raise ValueError(f"id column {id_col!r} not in catalog columns {list(catalog.columns)}")
        return id_col
    return next((c for c in ID_COLUMN_CANDIDATES if c in catalog.columns), None)


def ingest_cutouts(
    image_path: str | os.PathLike,
    catalog: str | os.PathLike | pd.DataFrame,
    out: str | os.PathLike,
    *,
    size: int,
    ra_col: str | None = "ra",
    dec_col: str | None = "dec",
    x_col: str | None = None,
    y_col: str | None = None,
    id_col: str | None = None,
    hdu: int | str | None = None,
    rejects_path: str | os.PathLike | None = None,
    compression: str = "lzf",
    config_hash: str = "",
    progress: bool = False,
) -> IngestReport:
    """Cut ``size x size`` stamps at catalog positions and write a store plus ``rejects.csv``.

    Positions are pixel ``(x_col, y_col)`` (0-based) when both are given, else sky ``(ra_col, dec_col)`` in
    degrees through the image's celestial WCS.

    Raises:
        ValueError: the catalog lacks the position or id columns (the message lists the columns it has).
        StampRejected: the image itself cannot be read (nothing can be cut from it).
    """
    table = catalog if isinstance(catalog, pd.DataFrame) else read_table(catalog)
    use_pixels = x_col is not None and y_col is not None
    needed = [x_col, y_col] if use_pixels else [ra_col, dec_col]
    missing = [c for c in needed if c is None or c not in table.columns]
    if missing:
        raise ValueError(f"catalog lacks position columns {missing}; it has {list(table.columns)}")
    id_column = _pick_id_column(table, id_col)
    image = read_fits_image(image_path, hdu=hdu)
    pixel_scale = None
    if image.wcs is not None:
        from astropy.wcs.utils import proj_plane_pixel_scales

        pixel_scale = float(np.mean(proj_plane_pixel_scales(image.wcs)) * 3600.0)
    extra = [c for c in table.columns if c not in ("object_id", "source", "x", "y", "ra", "dec")]
    builder = StoreBuilder(
        out,
        catalog_columns=["object_id", "x", "y", "ra", "dec", *extra],
        channels=image.channels,
        stamp_shape=(size, size),
        rejects_path=rejects_path,
        pixel_scale_arcsec=pixel_scale,
        config_hash=config_hash,
        compression=compression,
        attrs={"ingest": "cutouts", "image": str(image_path)},
    )
    labels = [str(v) for v in (table[id_column] if id_column else table.index)]
    try:
        if use_pixels:
            xs, ys = table[x_col].to_numpy(float), table[y_col].to_numpy(float)
        else:
            ra = table[ra_col].to_numpy(float)
            try:
                xs, ys = pixel_positions(image, ra, table[dec_col].to_numpy(float))
            except StampRejected as err:
                for i, label in enumerate(labels):
                    builder.reject(f"{image_path}#{i}:{label}", err.reason, err)
                return builder.finish()
        for i in tqdm(range(len(table)), desc="cutouts", unit="stamp", disable=not progress):
            source = f"{image_path}#{i}:{labels[i]}"
            try:
                cut = cut_stamp(image, xs[i], ys[i], size)
                if cut.mask.all():
                    raise StampRejected("all_masked", f"{source}: every pixel of the cutout is masked")
            except StampRejected as err:
                builder.reject(source, err.reason, err)
                continue
            row = {"object_id": labels[i], "x": cut.x, "y": cut.y, "ra": cut.ra, "dec": cut.dec}
            row.update({c: table[c].iloc[i] for c in extra})
            builder.add(source, cut.pixels, cut.mask, image.channels, row)
        builder.add_source_digest(sha256_file(image_path))
        if not isinstance(catalog, pd.DataFrame):
            builder.add_source_digest(sha256_file(catalog))
    except BaseException:
        builder.abort()
        raise
    return builder.finish()
