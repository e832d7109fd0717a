"""Inputs of a report: a scored catalog and the labels of its rows.

Labels come from the stamp store (``/labels/real``, ``/labels/gz_answers``; matched on ``store_row`` and
checked on ``object_id``) or from a CSV/Parquet table joined on an id column (Kaggle's
``training_solutions_rev1.csv`` works as it is: ``GalaxyID`` and ``Class1.1`` .. ``Class11.6``; for
real-bogus a column ``real`` (0/1) or ``label`` (``real``/``bogus``)).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, ANSWER_LABELS
from pipeline.io import read_scored_table
from pipeline.store import open_store

#: Columns tried, in order, to name a stamp and to join a label table.
ID_COLUMNS = ("objectId", "candid", "GalaxyID", "object_id", "store_row")
STORE_SUFFIXES = (".h5", ".hdf5", ".hdf")
#: Task -> the store label it is evaluated on.
STORE_LABELS = {"realbogus": "real", "morphology": "gz_answers"}


def is_store(path: str | os.PathLike) -> bool:
    """Whether a labels path names a stamp store (by suffix)."""
    return Path(path).suffix.lower() in STORE_SUFFIXES


def _lower_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Table meta with lower-case keys (FITS upper-cases short keys); JSON text decoded back."""
    out = {}
    for key, value in meta.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[str(key).lower()] = value
    return out


def task_of(scored: pd.DataFrame, meta: Mapping[str, Any]) -> str:
    """``realbogus`` or ``morphology``: from the catalog meta, else from its columns."""
    if meta.get("task") in STORE_LABELS:
        return str(meta["task"])
    if "rb" in scored.columns:
        return "realbogus"
    if set(ANSWER_LABELS) <= set(scored.columns):
        return "morphology"
    raise ValueError("cannot tell the task of the scored catalog (no meta task, no rb, no answer columns)")


def read_scored(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A scored catalog (Parquet, FITS or CSV) as a DataFrame and its meta (lower-case keys)."""
    table = read_scored_table(path)
    meta = _lower_meta(table.meta)
    return table.to_pandas(), meta


def _truth_from_store(scored: pd.DataFrame, task: str, path: Path) -> np.ndarray:
    if "store_row" not in scored.columns:
        raise ValueError(f"labels from store {path} need the catalog's store_row column")
    rows = scored["store_row"].to_numpy(np.int64)
    with open_store(path) as store:
        if rows.size and (rows.min() < 0 or rows.max() >= store.n):
            raise ValueError(f"store_row values reach {rows.max()}, but {path} holds {store.n} stamps")
        truth = store.labels(STORE_LABELS[task])[:][rows]
        if "object_id" in scored.columns:
            ids = store.catalog(columns=["object_id"])["object_id"].to_numpy().astype(str)[rows]
            bad = np.flatnonzero(ids != scored["object_id"].to_numpy().astype(str))
            if bad.size:
                raise ValueError(
                    f"{path} does not hold the scored stamps: {bad.size} rows differ in object_id, "
                    f"e.g. row {rows[bad[0]]}: {ids[bad[0]]!r} vs {scored['object_id'].iloc[bad[0]]!r}"
                )
    return truth


def _truth_columns(task: str, table: pd.DataFrame) -> list[str]:
    if task == "morphology":
        for names in (list(ANSWER_COLUMNS), list(ANSWER_LABELS)):
            if set(names) <= set(table.columns):
                return names
        raise ValueError("a morphology label table needs the 37 columns Class1.1 .. Class11.6")
    for name in ("real", "label"):
        if name in table.columns:
            return [name]
    raise ValueError("a real-bogus label table needs a column 'real' (0/1) or 'label' (real/bogus)")


def _truth_from_table(scored: pd.DataFrame, task: str, path: Path, on: str | None) -> np.ndarray:
    table = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    key = on or next((c for c in ID_COLUMNS if c in table.columns and c in scored.columns), None)
    if key is None:
        raise ValueError(f"no id column shared by the scored catalog and {path}; give one with on=")
    for name, columns in ((str(path), table.columns), ("the scored catalog", scored.columns)):
        if key not in columns:
            raise ValueError(
                f"join column {key!r}: {name} has no such column (it has {sorted(map(str, columns))})"
            )
    cols = _truth_columns(task, table)
    labels = table[[key, *cols]].assign(_key=table[key].astype(str)).drop(columns=key)
    if labels["_key"].duplicated().any():
        raise ValueError(f"{path} has more than one label row for some {key} values")
    merged = pd.DataFrame({"_key": scored[key].astype(str).to_numpy()}).merge(labels, on="_key", how="left")
    values = merged[cols]
    if values.isna().any(axis=None):
        missing = merged.loc[values.isna().any(axis=1), "_key"]
        raise ValueError(f"{len(missing)} scored rows have no label in {path}, e.g. {list(missing[:5])}")
    if task == "morphology":
        return values.to_numpy(np.float64)
    column = values[cols[0]]
    if cols[0] == "label":
        return (column.astype(str) == "real").to_numpy(np.int64)
    return column.astype(bool).to_numpy(np.int64)


def load_truth(
    scored: pd.DataFrame, task: str, labels: str | os.PathLike, on: str | None = None
) -> np.ndarray:
    """Labels aligned with the scored rows: ``(N,)`` 0/1 for real-bogus, ``(N, 37)`` for morphology.

    Args:
        scored: the scored catalog.
        task: ``realbogus`` or ``morphology``.
        labels: a stamp store (``.h5``; matched on ``store_row``, checked on ``object_id``) or a CSV/Parquet
            table (joined on ``on``, default the first of :data:`ID_COLUMNS` present in both).
        on: join column for a label table.
    """
    path = Path(labels)
    if is_store(path):
        return _truth_from_store(scored, task, path)
    return _truth_from_table(scored, task, path, on)
