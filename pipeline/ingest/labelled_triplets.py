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
label row (``no_label``), a label row without a file (``unreadable``) and every file that cannot be read
are rows of ``rejects.csv``, so ingested + rejected = inputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.ingest.fits_stamps import first_pixel_scale, read_fits_file
from pipeline.ingest.inputs import input_name
from pipeline.ingest.reader import Item, Reject, SourceReader, Stamp, StorePlan, rejected
from pipeline.ingest.registry import ingest_with
from pipeline.ingest.sources import LabelledSource
from pipeline.io import StampRejected, fits_stem, is_fits_name
from pipeline.store import IngestReport, StoreBuilder

LABELS_CSV = "labels.csv"


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


class LabelledReader(SourceReader):
    """Reads a :class:`LabelledSource`: the label table first, then each FITS file of the folder."""

    progress = ("ingest labelled triplets", "file")

    def open(self) -> StorePlan:
        source: LabelledSource = self.source
        folder = source.folder
        self.table = read_labels(source.labels_csv or folder / LABELS_CSV, source.labels)
        self.extensions = list(source.extensions) if source.extensions else _extensions_of(folder)
        # a link whose target is gone or loops is an input too (a reject), never silently left out
        self.by_id = {
            fits_stem(p): p
            for p in sorted(folder.iterdir())
            if (p.is_file() or p.is_symlink()) and is_fits_name(p)
        }
        self.copied = [
            c for c in source.catalog_columns if c in self.table.columns and c not in ("id", *source.labels)
        ]
        missing = [
            Reject(
                str(folder / cid), "unreadable", f"{cid}: listed in labels.csv but no FITS file in {folder}"
            )
            for cid in self.table.index.difference(list(self.by_id))
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
        if cid not in self.table.index:
            yield Reject(str(path), "no_label", f"{path}: id {cid!r} has no row in labels.csv")
            return
        try:
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
