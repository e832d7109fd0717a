"""Reader of a folder of labelled FITS triplets (FITS files plus ``labels.csv``),
:class:`~pipeline.ingest.sources.LabelledSource`: a stamp store with labels.

The layout is the one ``stampflow simulate transients`` writes (:mod:`pipeline.simulate.transients.dataset`) and
the one a user can give for their own labelled HiTS or ZTF candidates:

- one multi-extension FITS file per candidate, ``<id>.fits.gz`` or ``<id>.fits``, with one image extension
  per channel (``TEMPLATE``, ``SCIENCE``, ``DIFFERENCE`` [, ``SNR``]);
- ``labels.csv`` with a column ``id`` (the file name without its FITS suffix) and one integer column per
  label (default ``real``: 1 real, 0 bogus); other columns listed in ``catalog_columns`` are copied to the
  store catalog when present (``kind``, ``artifact_type``, ``snr``, ``isdiffpos`` for simulated sets).

Each candidate becomes one store row: ``object_id`` = ``id``, ``source`` = the path, ``/labels/<name>`` as
int8. Inputs are the union of the FITS files in the folder and the ids in ``labels.csv``: a file without a
label row (``no_label``), a file whose row holds a label that is not an integer in -127..127 (``bad_label``:
``nan``, ``abc``, ``300``, ``1.5``, blank; the message names the row, id, column and value), a file whose id
is on more than one row (``duplicate_id``), a file name that is not UTF-8 (``bad_name``), a label row
without a file (``unreadable``) and every file that cannot be read are rows of ``rejects.csv``, so
ingested + rejected = inputs; the other rows are ingested. A ``labels.csv`` that cannot be read or lacks
the ``id`` or a label column stops the run with :class:`data_catalogs.tables.CatalogError` (its one reject).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_catalogs.tables import CatalogError
from pipeline.ingest.fits_stamps import first_pixel_scale, read_fits_file
from pipeline.ingest.inputs import check_name, input_name
from pipeline.ingest.reader import Item, Reject, SourceReader, Stamp, StorePlan, rejected
from pipeline.ingest.registry import ingest_with
from pipeline.ingest.sources import LabelledSource
from pipeline.io import StampRejected, fits_stem, is_fits_name
from pipeline.store import IngestReport, StoreBuilder

LABELS_CSV = "labels.csv"
#: Reject reasons added by this reader (see :data:`pipeline.io.rejects.REASONS` for the others).
REASONS = {
    "no_label": "the FITS file has no row in labels.csv",
    "bad_label": "the file's labels.csv row holds a label that is not an integer in -127..127 (blank included)",
}


def _extensions_of(folder: Path) -> list[str] | None:
    """Extension order recorded by the simulator in ``simulation.json`` (None when absent)."""
    meta = folder / "simulation.json"
    if not meta.exists():
        return None
    survey = json.loads(meta.read_text()).get("survey", {})
    return list(survey["extensions"]) if "extensions" in survey else None


def _row_problems(table: pd.DataFrame, labels: Sequence[str], name: str) -> dict[str, tuple[str, str]]:
    """id -> ``(reason, why)`` of every row whose labels cannot be used: ``duplicate_id`` (the id is on
    more than one row: each such row), else ``bad_label`` (the first label value that is not an integer
    in -127..127, blank included). Rows are named 1-based, after the header."""
    problems: dict[str, tuple[str, str]] = {}
    dup = table["id"].duplicated(keep=False).to_numpy()
    for i in np.flatnonzero(dup):
        cid = table["id"].iat[i]
        rows = [int(k) + 1 for k in np.flatnonzero((table["id"] == cid).to_numpy())]
        problems[cid] = ("duplicate_id", f"id {cid!r} is on rows {rows} of {name}")
    for column in labels:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = (values.isna() | (values != values.round()) | (values.abs() > 127)).to_numpy()
        for i in np.flatnonzero(bad & ~dup):
            cid, text = table["id"].iat[i], table[column].iat[i]
            problems.setdefault(
                cid,
                (
                    "bad_label",
                    f"{name} row {i + 1} (id {cid!r}): label {column!r} is {text!r}, "
                    "not an integer in -127..127",
                ),
            )
    return problems


def read_labels(
    path: str | os.PathLike, labels: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """``(table, problems)`` of ``labels.csv``: the rows whose labels can be used, indexed by ``id`` (str),
    label columns int64; and id -> ``(reason, why)`` of every other row (``bad_label``, ``duplicate_id``:
    :func:`_row_problems`), each the reject of its id's file, so that one bad row never costs the others.

    Raises:
        CatalogError: the file cannot be read as CSV (``unreadable``) or lacks the ``id`` or a label
            column (``missing_columns``, the message lists the columns it has).
    """
    try:
        # ids and labels as text (the values are checked row by row), other columns as pandas reads them
        table = pd.read_csv(path, dtype={c: str for c in ("id", *labels)}, keep_default_na=False)
    except Exception as err:  # missing, empty, not CSV: pandas raises many types
        raise CatalogError(
            path, "unreadable", f"cannot read it as CSV ({type(err).__name__}: {err})"
        ) from err
    missing = [c for c in ("id", *labels) if c not in table.columns]
    if missing:
        raise CatalogError(
            path, "missing_columns", f"lacks columns {missing}; it has {list(table.columns)}", missing
        )
    problems = _row_problems(table, labels, Path(path).name)
    table = table[~table["id"].isin(list(problems))].copy()
    for name in labels:
        table[name] = pd.to_numeric(table[name]).astype(np.int64)
    return table.set_index("id", drop=False), problems


class LabelledReader(SourceReader):
    """Reads a :class:`LabelledSource`: the label table first, then each FITS file of the folder."""

    progress = ("ingest labelled triplets", "file")

    def open(self) -> StorePlan:
        source: LabelledSource = self.source
        folder = source.folder
        self.table, self.problems = read_labels(source.labels_csv or folder / LABELS_CSV, source.labels)
        self.extensions = list(source.extensions) if source.extensions else _extensions_of(folder)
        # a link whose target is gone or loops is an input too (a reject), never silently left out; a
        # name that is not UTF-8 is keyed by its printable name (its read is its bad_name reject)
        self.by_id = {
            fits_stem(input_name(p)): p
            for p in sorted(folder.iterdir())
            if (p.is_file() or p.is_symlink()) and is_fits_name(p)
        }
        self.copied = [
            c for c in source.catalog_columns if c in self.table.columns and c not in ("id", *source.labels)
        ]
        listed = sorted({*self.table.index, *self.problems})
        missing = [
            Reject(
                str(folder / cid), "unreadable", f"{cid}: listed in labels.csv but no FITS file in {folder}"
            )
            for cid in listed
            if cid not in self.by_id
        ]
        attrs = {"ingest": "labelled_triplets", "extensions": list(self.extensions or [])}
        return StorePlan(
            catalog_columns=["object_id", *self.copied],
            attrs={**attrs, "labels": list(source.labels)},
            rejects=missing,
        )

    def __len__(self) -> int:
        return len(self.by_id)

    def units(self) -> list[tuple[str, Path]]:
        return list(self.by_id.items())

    def unit_source(self, unit: tuple[str, Path]) -> str:
        return input_name(unit[1])

    def read(self, unit: tuple[str, Path], store: StoreBuilder) -> Iterator[Item]:
        cid, path = unit
        try:
            name = check_name(path)
            if cid in self.problems:
                reason, why = self.problems[cid]
                raise StampRejected(reason, f"{name}: {why}")
            if cid not in self.table.index:
                raise StampRejected("no_label", f"{name}: id {cid!r} has no row in labels.csv")
            stamp, sha256 = read_fits_file(self.inputs, path, self.extensions)
            scale = first_pixel_scale(stamp, store)
        except StampRejected as err:
            yield rejected(path, err)
            return
        row = self.table.loc[cid]
        catalog: dict[str, Any] = {"object_id": cid, **{c: row[c] for c in self.copied}}
        values = {name: np.int8(row[name]) for name in self.source.labels}
        yield Stamp(str(path), stamp.pixels, stamp.mask, stamp.channels, catalog, values, sha256, scale)


def ingest_labelled_triplets(
    folder: str | os.PathLike, out: str | os.PathLike, **options: Any
) -> IngestReport:
    """Ingest labelled triplets: :class:`LabelledSource` ``(folder=folder, **options)`` into the store
    ``out`` with ``/labels/<name>`` (``options``: the source's fields and the driver's keywords)."""
    return ingest_with("labelled", out, {"folder": folder, **options})
