"""Ingest a folder of labelled FITS triplets (FITS files plus ``labels.csv``) into a stamp store with labels.

The layout is the one ``stampflow simulate transients`` writes (:mod:`pipeline.simulate.transients`) and
the one a user can give for their own labelled HiTS or ZTF candidates:

- one multi-extension FITS file per candidate, ``<id>.fits.gz`` or ``<id>.fits``, with one image extension
  per channel (``TEMPLATE``, ``SCIENCE``, ``DIFFERENCE`` [, ``SNR``]);
- ``labels.csv`` with a column ``id`` (the file name without its FITS suffix) and one integer column per
  label (default ``real``: 1 real, 0 bogus); other columns listed in ``catalog_columns`` are copied to the
  store catalog when present (``kind``, ``artifact_type``, ``snr``, ``isdiffpos`` for simulated sets).

Each candidate becomes one store row: ``object_id`` = ``id``, ``source`` = the path, ``/labels/<name>`` as
int8. Inputs are the union of the FITS files in the folder and the ids in ``labels.csv``: a file without a
label row (``no_label``), a label row without a file (``unreadable``) and every file that cannot be read
are rows of ``rejects.csv``, so ingested + rejected = inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.ingest.fits_stamps import read_fits_input
from pipeline.io import fits_stem, is_fits_name
from pipeline.store import IngestReport, StoreBuilder

LABELS_CSV = "labels.csv"
#: Catalog columns copied from ``labels.csv`` when present.
DEFAULT_CATALOG_COLUMNS = ("kind", "artifact_type", "snr", "isdiffpos")


def _extensions_of(folder: Path) -> list[str] | None:
    """Extension order recorded by the simulator in ``simulation.json`` (None when absent)."""
    meta = folder / "simulation.json"
    if not meta.exists():
        return None
    survey = json.loads(meta.read_text()).get("survey", {})
    return list(survey["extensions"]) if "extensions" in survey else None


def read_labels(path: str | os.PathLike, labels: Sequence[str]) -> pd.DataFrame:
    """``labels.csv`` indexed by ``id`` (str); raises ValueError naming a missing column or a bad value.

    Every label column must hold integers (no blanks); duplicate ids are refused.
    """
    table = pd.read_csv(path, dtype={"id": str}, keep_default_na=False, na_values={c: [""] for c in labels})
    missing = [c for c in ("id", *labels) if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; it has {list(table.columns)}")
    if table["id"].duplicated().any():
        raise ValueError(
            f"{path} lists ids more than once, e.g. {table['id'][table['id'].duplicated()].iloc[0]}"
        )
    for name in labels:
        values = pd.to_numeric(table[name], errors="coerce")
        if values.isna().any() or (values != values.round()).any() or values.abs().max() > 127:
            raise ValueError(f"{path}: label column {name!r} must hold integers in -127..127 in every row")
        table[name] = values.astype(np.int64)
    return table.set_index("id", drop=False)


def ingest_labelled_triplets(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    extensions: Sequence[str] | None = None,
    labels: Sequence[str] = ("real",),
    catalog_columns: Sequence[str] = DEFAULT_CATALOG_COLUMNS,
    labels_csv: str | os.PathLike | None = None,
    rejects_path: str | os.PathLike | None = None,
    compression: str = "lzf",
    chunk_rows: int = 512,
    progress: bool = False,
) -> IngestReport:
    """Write the labelled FITS triplets of ``folder`` to the stamp store ``out`` with ``/labels/<name>``.

    Args:
        folder: folder of ``<id>.fits[.gz]`` files (not searched recursively) and ``labels.csv``.
        out: store path; ``rejects.csv`` beside it unless ``rejects_path`` is given.
        extensions: EXTNAMEs to read as channels, in this order; None: the order in ``simulation.json``
            when the folder has one, else every image extension in file order.
        labels: integer columns of ``labels.csv`` stored as ``/labels/<name>`` (int8).
        catalog_columns: further ``labels.csv`` columns copied to the catalog when present.
        labels_csv: the label table (default ``folder/labels.csv``).
        compression, chunk_rows: passed to the store writer.
        progress: show a progress bar.

    Returns:
        The :class:`IngestReport` (ingested + rejected = FITS files + label rows without a file).
    """
    folder = Path(folder)
    table = read_labels(labels_csv or folder / LABELS_CSV, labels)
    extensions = list(extensions) if extensions else _extensions_of(folder)
    files = {fits_stem(p): p for p in sorted(folder.iterdir()) if p.is_file() and is_fits_name(p)}
    copied = [c for c in catalog_columns if c in table.columns and c not in ("id", *labels)]
    builder = StoreBuilder(
        out,
        catalog_columns=["object_id", *copied],
        rejects_path=rejects_path,
        chunk_rows=chunk_rows,
        compression=compression,
        attrs={"ingest": "labelled_triplets", "extensions": list(extensions or []), "labels": list(labels)},
    )
    try:
        for cid in table.index.difference(list(files)):
            builder.reject(
                folder / cid, "unreadable", f"{cid}: listed in labels.csv but no FITS file in {folder}"
            )
        for cid, path in tqdm(
            files.items(), desc="ingest labelled triplets", unit="file", disable=not progress
        ):
            source = str(path)
            if cid not in table.index:
                builder.reject(source, "no_label", f"{source}: id {cid!r} has no row in labels.csv")
                continue
            read = read_fits_input(path, builder, extensions)
            if read is None:
                continue
            stamp, data = read
            row = table.loc[cid]
            catalog = {"object_id": cid, **{c: row[c] for c in copied}}
            values = {name: np.int8(row[name]) for name in labels}
            if builder.add(source, stamp.pixels, stamp.mask, stamp.channels, catalog, values):
                builder.add_source_digest(hashlib.sha256(data).hexdigest())
    except BaseException:
        builder.abort()
        raise
    return builder.finish()
