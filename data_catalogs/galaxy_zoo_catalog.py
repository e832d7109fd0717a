"""The canonical Galaxy Zoo label table (:class:`GalaxyZooCatalog`) and how a catalog file becomes one:
table reading, the id/file/position columns found case-insensitively, per-row checks that turn bad rows into
rejects (:class:`Rejector`), and assembling the valid rows. The per-format readers are in
:mod:`data_catalogs.galaxy_zoo_formats`."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalogs import tables
from data_catalogs.galaxy_zoo_schemas import DecalsSchema
from data_catalogs.tables import CatalogError

FORMATS = ("kaggle", "gz2", "decals")

#: File-name endings -> table kind.

#: Column names tried, in order, for the galaxy id (case-insensitive) when the user names none.
ID_CANDIDATES = {
    "kaggle": ("GalaxyID",),
    "gz2": ("dr7objid", "objid", "specobjid", "asset_id", "id_str"),
    "decals": ("iauname", "id_str", "dr8_id", "galaxy_id"),
}

#: Column names tried, in order, for an image file column when the user names none.
FILE_CANDIDATES = ("file_loc", "png_loc", "local_png_loc", "jpg_loc", "file", "filename", "image", "path")

#: Columns carried through to the canonical table when present (case-insensitive).
POSITION_COLUMNS = ("ra", "dec")

REJECT_REASONS = {
    "missing_id": "the row has no galaxy id",
    "duplicate_id": "the galaxy id occurs on more than one row (every such row is rejected)",
    "nan_label": "a label value is NaN or infinite",
    "fraction_out_of_range": "a fraction lies outside [0, 1]",
    "tree_violation": "a question's answers do not sum as the decision tree requires",
    "bad_votes": "a vote count is negative or does not add up to the question's total",
}


# ---------------------------------------------------------------------------------------------------------
# The canonical table.


@dataclass
class GalaxyZooCatalog:
    """Galaxy Zoo labels read from one catalog, valid rows only, plus the rejected rows.

    ``table`` columns: ``object_id`` (str, the galaxy id), the survey id column verbatim (e.g.
    ``GalaxyID``, ``dr7objid``, ``iauname``; absent if it is called ``object_id``), ``file`` (str, image
    path as the catalog gives it) when the catalog has a file column, ``ra``/``dec`` (deg) when present,
    then :attr:`answer_columns` (float64 fractions) and :attr:`vote_columns` (float64 counts) when the
    source has counts.

    Attributes:
        table: the valid rows, in input order.
        source: the catalog path.
        format: ``"kaggle"``, ``"gz2"`` or ``"decals"``.
        estimate: which source estimate became the fractions (``"cumulative"`` for Kaggle).
        id_column: the survey id column name as spelled in the source.
        answer_columns: fraction columns: the 37 Kaggle ``Class1.1`` .. ``Class11.6`` cumulative fractions
            for ``kaggle``/``gz2``; the 34 DECaLS answers (per-question fractions, no suffix) for ``decals``.
        vote_columns: vote-count columns aligned with ``answer_columns`` (``<answer>_votes``); empty if none.
        schema: :data:`DECALS_SCHEMA` for ``decals``, None for the Kaggle tree.
        rejects: one dict (``source``, ``reason``, ``error``) per rejected row.
        n_input: rows in the source table; ``len(table) + len(rejects) == n_input``.
        meta: extra facts (e.g. the DECaLS campaign suffix).
    """

    table: pd.DataFrame
    source: str
    format: str
    estimate: str
    id_column: str
    answer_columns: tuple[str, ...]
    vote_columns: tuple[str, ...] = ()
    schema: DecalsSchema | None = None
    rejects: list[dict[str, str]] = field(default_factory=list)
    n_input: int = 0
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def ids(self) -> list[str]:
        """Galaxy ids (str) of the valid rows."""
        return self.table["object_id"].tolist()

    def fractions(self) -> np.ndarray:
        """``(N, A)`` float32 label fractions (A = 37 for the Kaggle tree, 34 for DECaLS)."""
        return self.table[list(self.answer_columns)].to_numpy(dtype=np.float32)

    def votes(self) -> np.ndarray | None:
        """``(N, A)`` float32 vote counts, or None when the source has none."""
        if not self.vote_columns:
            return None
        return self.table[list(self.vote_columns)].to_numpy(dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------
# Reading tables.


def table_kind(path: str | os.PathLike) -> str:
    """``"csv"``, ``"parquet"`` or ``"fits"`` from the file name; raises :class:`CatalogError` otherwise."""
    try:
        return tables.table_kind(path)
    except tables.TableReadError as err:
        raise CatalogError(path, err.reason, str(err).split(": ", 1)[-1]) from err


def read_table(path: str | os.PathLike, string_columns: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`data_catalogs.tables.read_table`, raising :class:`CatalogError` (reason ``unreadable``...)."""
    try:
        return tables.read_table(path, string_columns)
    except tables.TableReadError as err:
        raise CatalogError(path, err.reason, str(err).split(": ", 1)[-1]) from err


def _column_map(columns: Sequence[str]) -> dict[str, str]:
    """lower-case name -> actual name (an exact-case name wins over a later case-insensitive twin)."""
    out: dict[str, str] = {}
    for col in columns:
        out.setdefault(str(col).lower(), str(col))
    return out


def _find(columns: dict[str, str], name: str) -> str | None:
    return columns.get(name.lower())


def pick_id_column(df: pd.DataFrame, source: str, fmt: str, id_column: str | None) -> str:
    cmap = _column_map(df.columns)
    candidates = (id_column,) if id_column else ID_CANDIDATES[fmt]
    for name in candidates:
        found = _find(cmap, name)
        if found is not None:
            return found
    raise CatalogError(
        source,
        "missing_columns",
        f"no galaxy id column: looked for {list(candidates)} (case-insensitive); pass id_column",
        missing=list(candidates[:1]),
    )


def pick_file_column(df: pd.DataFrame, source: str, file_column: str | None) -> str | None:
    cmap = _column_map(df.columns)
    if file_column:
        found = _find(cmap, file_column)
        if found is None:
            raise CatalogError(
                source, "missing_columns", f"file column {file_column!r} is missing", [file_column]
            )
        return found
    for name in FILE_CANDIDATES:
        found = _find(cmap, name)
        if found is not None:
            return found
    return None


def require_columns(df: pd.DataFrame, source: str, wanted: Sequence[str], what: str) -> list[str]:
    """Actual column names for ``wanted`` (case-insensitive); CatalogError listing every missing one."""
    cmap = _column_map(df.columns)
    found = [_find(cmap, w) for w in wanted]
    missing = [w for w, f in zip(wanted, found, strict=True) if f is None]
    if missing:
        shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        raise CatalogError(
            source, "missing_columns", f"{len(missing)} {what} column(s) missing: {shown}", missing
        )
    return [f for f in found if f is not None]


def optional_column(df: pd.DataFrame, wanted: Sequence[str]) -> list[str] | None:
    cmap = _column_map(df.columns)
    found = [_find(cmap, w) for w in wanted]
    return None if any(f is None for f in found) else [f for f in found if f is not None]


#: An integral number written as a float (``900001.0``, ``900001.``), as a pandas round trip writes ids.
_INTEGRAL_FLOAT_TEXT = re.compile(r"([+-]?\d+)\.0*")


def id_strings(values: pd.Series) -> list[str | None]:
    """Ids as strings: integral floats lose their ``.0`` (numbers, and text such as ``"900001.0"`` that a
    pandas round trip of the Kaggle file writes), bytes are decoded, missing -> None."""
    out: list[str | None] = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out.append(None)
            continue
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        text = str(v).strip()
        integral = _INTEGRAL_FLOAT_TEXT.fullmatch(text)
        out.append((integral.group(1) if integral else text) or None)
    return out


def _verbatim_ids(values: pd.Series, ids: list[str | None]) -> pd.Series | np.ndarray:
    """The survey id column with its natural type: integer ids (also when read as text) become Int64 without
    passing through float, so 19-digit ``dr7objid`` values keep every digit; anything else stays as read."""
    if pd.api.types.is_string_dtype(values) or values.dtype == object or values.dtype.kind == "f":
        present = [i for i in ids if i is not None]
        if present and all(i.lstrip("-").isdigit() for i in present):
            return pd.array([None if i is None else int(i) for i in ids], dtype="Int64")
        return np.array(ids, dtype=object)
    return values.to_numpy()


def as_float(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``(N, len(columns))`` float64; text that is not a number becomes NaN."""
    if not len(df):
        return np.zeros((0, len(columns)))
    cols = [
        pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) for c in columns
    ]
    return np.column_stack(cols)


# ---------------------------------------------------------------------------------------------------------
# Row validation shared by the readers.


class Rejector:
    """Collects every problem per row; a row is rejected once, under its first reason, all reasons in the message
    (rows are counted from 1, the header not included)."""

    def __init__(self, source: str, id_column: str, ids: list[str | None]):
        self.source = source
        self.name = Path(source).name
        self.id_column = id_column
        self.ids = ids
        self.problems: dict[int, list[tuple[str, str]]] = {}

    def add(self, row: int, reason: str, message: str) -> None:
        self.problems.setdefault(row, []).append((reason, message))

    def add_many(self, row: int, problems: list[tuple[str, str]]) -> None:
        for reason, message in problems:
            self.add(row, reason, message)

    def rejected(self, n: int) -> np.ndarray:
        bad = np.zeros(n, bool)
        bad[list(self.problems)] = True
        return bad

    def rows(self) -> list[dict[str, str]]:
        out = []
        for row in sorted(self.problems):
            problems = self.problems[row]
            gid = self.ids[row]
            where = f"{self.name} row {row + 1}" + (f" ({self.id_column} {gid})" if gid is not None else "")
            detail = "; ".join(msg for _, msg in problems)
            out.append(
                {
                    "source": gid if gid is not None else where,
                    "reason": problems[0][0],
                    "error": f"{where}: {detail}",
                }
            )
        return out


def check_ids(rej: Rejector) -> None:
    ids = rej.ids
    counts = pd.Series([i for i in ids if i is not None], dtype=object).value_counts()
    dup = set(counts[counts > 1].index)
    for row, gid in enumerate(ids):
        if gid is None:
            rej.add(row, "missing_id", f"{rej.id_column} is empty")
        elif gid in dup:
            rej.add(row, "duplicate_id", f"{rej.id_column} {gid} occurs {counts[gid]} times")


def check_fraction_values(
    rej: Rejector,
    values: np.ndarray,
    names: Sequence[str],
    skip: np.ndarray | None = None,
    tol: float = 1e-6,
) -> None:
    """NaN/inf and out-of-[0, 1] values; ``skip`` (same shape) marks entries allowed to be NaN."""
    finite = np.isfinite(values)
    bad_nan = ~finite if skip is None else (~finite & ~skip)
    with np.errstate(invalid="ignore"):
        out = finite & ((values < -tol) | (values > 1 + tol))
    for row in np.flatnonzero(bad_nan.any(axis=1) | out.any(axis=1)):
        for j in np.flatnonzero(bad_nan[row]):
            rej.add(row, "nan_label", f"{names[j]} is {values[row, j]}")
        for j in np.flatnonzero(out[row]):
            rej.add(row, "fraction_out_of_range", f"{names[j]} = {values[row, j]:.6g} is outside [0, 1]")


def check_votes(rej: Rejector, votes: np.ndarray, names: Sequence[str]) -> None:
    finite = np.isfinite(votes)
    for row in np.flatnonzero((~finite).any(axis=1) | (finite & (votes < 0)).any(axis=1)):
        for j in np.flatnonzero(~finite[row]):
            rej.add(row, "nan_label", f"vote count {names[j]} is {votes[row, j]}")
        for j in np.flatnonzero(finite[row] & (votes[row] < 0)):
            rej.add(row, "bad_votes", f"vote count {names[j]} = {votes[row, j]:g} is negative")


def unanswered_questions(
    frac: np.ndarray, sizes: Sequence[int], votes: np.ndarray | None = None, totals: np.ndarray | None = None
) -> np.ndarray:
    """``(N, A)`` bool: answers of questions nobody answered: total votes 0; without totals, answer votes
    adding to 0; without votes, every fraction of the question empty. Their empty fractions are not NaN
    labels (they become 0)."""
    n, starts = len(frac), np.cumsum((0, *sizes[:-1]))
    if not n:
        return np.zeros(frac.shape, bool)
    if totals is not None:
        none_q = np.nan_to_num(totals, nan=0.0) <= 0
    elif votes is not None:
        none_q = np.add.reduceat(np.nan_to_num(votes), starts, axis=1) <= 0
    else:
        none_q = np.logical_and.reduceat(np.isnan(frac), starts, axis=1)
    return np.repeat(none_q, sizes, axis=1)


def check_question_sums(rej: Rejector, sums: np.ndarray, qnames: Sequence[str], tol: float) -> None:
    """Raw per-question fraction sums must be 1 (answered) or 0 (not reached), within ``tol``."""
    with np.errstate(invalid="ignore"):
        ok = (np.abs(sums - 1) <= tol) | (np.abs(sums) <= tol) | ~np.isfinite(sums)
    for row in np.flatnonzero(~ok.all(axis=1)):
        for k in np.flatnonzero(~ok[row]):
            rej.add(
                row, "tree_violation", f"{qnames[k]} fractions sum to {sums[row, k]:.6g}, not 1 (tol {tol:g})"
            )


def _base_table(df: pd.DataFrame, id_col: str, ids: list[str | None], file_col: str | None) -> pd.DataFrame:
    out = pd.DataFrame({"object_id": pd.Series(ids, dtype=object)})
    if id_col != "object_id":
        out[id_col] = _verbatim_ids(df[id_col], ids)
    if file_col is not None:
        out["file"] = [None if v is None else str(v) for v in id_strings(df[file_col])]
    cmap = _column_map(df.columns)
    for name in POSITION_COLUMNS:
        found = _find(cmap, name)
        if found is not None and found not in (id_col, file_col):
            out[name] = pd.to_numeric(df[found], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def finish_catalog(
    df: pd.DataFrame,
    source: str,
    fmt: str,
    estimate: str,
    id_col: str,
    file_col: str | None,
    rej: Rejector,
    answer_columns: Sequence[str],
    fractions: np.ndarray,
    vote_columns: Sequence[str] = (),
    votes: np.ndarray | None = None,
    schema: DecalsSchema | None = None,
    meta: dict[str, str] | None = None,
) -> GalaxyZooCatalog:
    table = _base_table(df, id_col, rej.ids, file_col)
    labels = pd.DataFrame(fractions, columns=list(answer_columns))
    parts = [table, labels]
    if votes is not None:
        parts.append(pd.DataFrame(votes, columns=list(vote_columns)))
    table = pd.concat(parts, axis=1)
    keep = ~rej.rejected(len(df))
    return GalaxyZooCatalog(
        table=table.loc[keep].reset_index(drop=True),
        source=source,
        format=fmt,
        estimate=estimate,
        id_column=id_col,
        answer_columns=tuple(answer_columns),
        vote_columns=tuple(vote_columns) if votes is not None else (),
        schema=schema,
        rejects=rej.rows(),
        n_input=len(df),
        meta=meta or {},
    )
