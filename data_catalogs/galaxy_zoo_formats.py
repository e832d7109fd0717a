"""Readers for the public Galaxy Zoo label formats, each returning one canonical table with per-row rejects.

Formats:

- ``kaggle``: the Kaggle "Galaxy Zoo - The Galaxy Challenge" ``training_solutions_rev1.csv``: ``GalaxyID``
  (matched case-insensitively, ``GalaxyId`` also occurs) and the 37 cumulative fractions ``Class1.1`` ..
  ``Class11.6``. No vote counts.
- ``gz2``: Galaxy Zoo 2 tables (Willett et al. 2013; Hart et al. 2016) with per-answer columns
  ``t01_smooth_or_features_a01_smooth_{count,fraction,weighted_fraction,debiased}`` ... The chosen estimate
  (``fraction``, ``weighted`` or ``debiased``) holds per-question fractions; they become Kaggle cumulative
  fractions through the tree. The ``_count`` columns, when all 37 are there, become vote counts.
- ``decals``: Galaxy Zoo DECaLS volunteer tables (Walmsley et al. 2022): ``{question}_{answer}`` (vote
  count), ``{question}_{answer}_fraction``, ``{question}_{answer}_debiased``, ``{question}_total-votes``,
  with question names optionally suffixed ``-dr5`` (or ``-dr8``). Its tree (:data:`DECALS_SCHEMA`, 10
  questions, 34 answers) differs from the Kaggle one and is kept as it is.

Tables are CSV (``.csv``, ``.csv.gz``), Parquet (``.parquet``, ``.pq``) or FITS binary tables (``.fits``,
``.fit``, ``.fits.gz``). Column names match case-insensitively.

Per-row problems become rejects (dicts with ``source``, ``reason``, ``error``, the row's galaxy id as
``source``); reasons: ``missing_id``, ``duplicate_id``, ``nan_label``, ``fraction_out_of_range``,
``tree_violation``, ``bad_votes``. A problem with the whole table (unreadable, unknown suffix, missing
columns) raises :class:`CatalogError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalogs import tables
from data_catalogs.galaxy_zoo import (
    ANSWER_COLUMNS,
    QUESTION_SIZES,
    cumulative_from_conditional,
    tree_problems,
)
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
# GZ2 column names (Willett et al. 2013, Table 5; Hart et al. 2016), in Kaggle answer order.

#: GZ2 tasks and their answers, in Kaggle question and answer order (note a38 dust lane and no a35).
GZ2_TASKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("t01_smooth_or_features", ("a01_smooth", "a02_features_or_disk", "a03_star_or_artifact")),
    ("t02_edgeon", ("a04_yes", "a05_no")),
    ("t03_bar", ("a06_bar", "a07_no_bar")),
    ("t04_spiral", ("a08_spiral", "a09_no_spiral")),
    ("t05_bulge_prominence", ("a10_no_bulge", "a11_just_noticeable", "a12_obvious", "a13_dominant")),
    ("t06_odd", ("a14_yes", "a15_no")),
    ("t07_rounded", ("a16_completely_round", "a17_in_between", "a18_cigar_shaped")),
    (
        "t08_odd_feature",
        ("a19_ring", "a20_lens_or_arc", "a21_disturbed", "a22_irregular", "a23_other", "a24_merger",
         "a38_dust_lane"),
    ),
    ("t09_bulge_shape", ("a25_rounded", "a26_boxy", "a27_no_bulge")),
    ("t10_arms_winding", ("a28_tight", "a29_medium", "a30_loose")),
    ("t11_arms_number", ("a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell")),
)  # fmt: skip

#: The 37 GZ2 answer stems aligned with :data:`~data_catalogs.galaxy_zoo.ANSWER_COLUMNS`,
#: e.g. ``"t01_smooth_or_features_a01_smooth"``.
GZ2_ANSWER_STEMS: tuple[str, ...] = tuple(
    f"{task}_{answer}" for task, answers in GZ2_TASKS for answer in answers
)

#: GZ2 estimate name -> column-name suffix.
GZ2_ESTIMATES = {"fraction": "_fraction", "weighted": "_weighted_fraction", "debiased": "_debiased"}

#: Default tolerance on each question's raw fraction sum (1 when answered, 0 when not), per GZ2 estimate;
#: published fractions are rounded to 3 decimals. None: not checked (debiased fractions need not sum to 1).
GZ2_SUM_TOL: dict[str, float | None] = {"fraction": 0.01, "weighted": 0.01, "debiased": None}


# ---------------------------------------------------------------------------------------------------------
# GZ DECaLS schema (Walmsley et al. 2022, DR5 decision tree).


@dataclass(frozen=True)
class DecalsQuestion:
    """One question of the GZ DECaLS tree.

    Attributes:
        name: question name without campaign suffix, e.g. ``"smooth-or-featured"``.
        answers: answer names, e.g. ``("smooth", "featured-or-disk", "artifact")``.
        parent: the answer column that leads here, e.g. ``"smooth-or-featured_featured-or-disk"``; None
            when always asked.
    """

    name: str
    answers: tuple[str, ...]
    parent: str | None

    @property
    def columns(self) -> tuple[str, ...]:
        """Answer columns without suffix, e.g. ``("smooth-or-featured_smooth", ...)``."""
        return tuple(f"{self.name}_{a}" for a in self.answers)


@dataclass(frozen=True)
class DecalsSchema:
    """The GZ DECaLS decision tree and how its columns are named.

    Attributes:
        name: schema name.
        questions: questions in a parent-before-child order.
    """

    name: str
    questions: tuple[DecalsQuestion, ...]

    @property
    def answer_columns(self) -> tuple[str, ...]:
        """All answer columns without campaign suffix (34 for DR5), question by question."""
        return tuple(c for q in self.questions for c in q.columns)

    @property
    def question_sizes(self) -> tuple[int, ...]:
        return tuple(len(q.answers) for q in self.questions)

    @property
    def question_slices(self) -> dict[str, slice]:
        """Question name -> slice of its answers in :attr:`answer_columns`."""
        out, start = {}, 0
        for q in self.questions:
            out[q.name] = slice(start, start + len(q.answers))
            start += len(q.answers)
        return out

    def count_column(self, question: DecalsQuestion, answer: str, suffix: str = "") -> str:
        """Source column of the vote count, e.g. ``smooth-or-featured-dr5_smooth``."""
        return f"{question.name}{suffix}_{answer}"

    def estimate_column(self, question: DecalsQuestion, answer: str, estimate: str, suffix: str = "") -> str:
        """Source column of a fraction estimate, e.g. ``smooth-or-featured-dr5_smooth_fraction``."""
        return f"{question.name}{suffix}_{answer}_{estimate}"

    def total_column(self, question: DecalsQuestion, suffix: str = "") -> str:
        """Source column of the question's total votes, e.g. ``smooth-or-featured_total-votes``."""
        return f"{question.name}{suffix}_total-votes"

    def question_sums(self, arr: np.ndarray) -> np.ndarray:
        """``(N, A)`` answers -> ``(N, Q)`` per-question sums (NaN propagates)."""
        starts = np.cumsum((0, *self.question_sizes[:-1]))
        return np.add.reduceat(np.atleast_2d(np.asarray(arr, dtype=np.float64)), starts, axis=1)


#: The GZ DECaLS DR5 (and DR8) tree: 10 questions, 34 answers.
DECALS_SCHEMA = DecalsSchema(
    name="gz_decals_dr5",
    questions=(
        DecalsQuestion("smooth-or-featured", ("smooth", "featured-or-disk", "artifact"), None),
        DecalsQuestion("disk-edge-on", ("yes", "no"), "smooth-or-featured_featured-or-disk"),
        DecalsQuestion("has-spiral-arms", ("yes", "no"), "disk-edge-on_no"),
        DecalsQuestion("bar", ("strong", "weak", "no"), "disk-edge-on_no"),
        DecalsQuestion("bulge-size", ("dominant", "large", "moderate", "small", "none"), "disk-edge-on_no"),
        DecalsQuestion("how-rounded", ("round", "in-between", "cigar-shaped"), "smooth-or-featured_smooth"),
        DecalsQuestion("edge-on-bulge", ("boxy", "none", "rounded"), "disk-edge-on_yes"),
        DecalsQuestion("spiral-winding", ("tight", "medium", "loose"), "has-spiral-arms_yes"),
        DecalsQuestion(
            "spiral-arm-count", ("1", "2", "3", "4", "more-than-4", "cant-tell"), "has-spiral-arms_yes"
        ),
        DecalsQuestion("merging", ("none", "minor-disturbance", "major-disturbance", "merger"), None),
    ),
)

DECALS_SUFFIXES = ("", "-dr5", "-dr8")
DECALS_ESTIMATES = ("fraction", "debiased")


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


def _pick_id_column(df: pd.DataFrame, source: str, fmt: str, id_column: str | None) -> str:
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


def _pick_file_column(df: pd.DataFrame, source: str, file_column: str | None) -> str | None:
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


def _require(df: pd.DataFrame, source: str, wanted: Sequence[str], what: str) -> list[str]:
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


def _optional(df: pd.DataFrame, wanted: Sequence[str]) -> list[str] | None:
    cmap = _column_map(df.columns)
    found = [_find(cmap, w) for w in wanted]
    return None if any(f is None for f in found) else [f for f in found if f is not None]


#: An integral number written as a float (``900001.0``, ``900001.``), as a pandas round trip writes ids.
_INTEGRAL_FLOAT_TEXT = re.compile(r"([+-]?\d+)\.0*")


def _id_strings(values: pd.Series) -> list[str | None]:
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


def _as_float(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``(N, len(columns))`` float64; text that is not a number becomes NaN."""
    if not len(df):
        return np.zeros((0, len(columns)))
    cols = [
        pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) for c in columns
    ]
    return np.column_stack(cols)


# ---------------------------------------------------------------------------------------------------------
# Row validation shared by the readers.


class _Rejector:
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


def _check_ids(rej: _Rejector) -> None:
    ids = rej.ids
    counts = pd.Series([i for i in ids if i is not None], dtype=object).value_counts()
    dup = set(counts[counts > 1].index)
    for row, gid in enumerate(ids):
        if gid is None:
            rej.add(row, "missing_id", f"{rej.id_column} is empty")
        elif gid in dup:
            rej.add(row, "duplicate_id", f"{rej.id_column} {gid} occurs {counts[gid]} times")


def _check_fraction_values(
    rej: _Rejector,
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


def _check_votes(rej: _Rejector, votes: np.ndarray, names: Sequence[str]) -> None:
    finite = np.isfinite(votes)
    for row in np.flatnonzero((~finite).any(axis=1) | (finite & (votes < 0)).any(axis=1)):
        for j in np.flatnonzero(~finite[row]):
            rej.add(row, "nan_label", f"vote count {names[j]} is {votes[row, j]}")
        for j in np.flatnonzero(finite[row] & (votes[row] < 0)):
            rej.add(row, "bad_votes", f"vote count {names[j]} = {votes[row, j]:g} is negative")


def _unanswered(
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


def _check_question_sums(rej: _Rejector, sums: np.ndarray, qnames: Sequence[str], tol: float) -> None:
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
        out["file"] = [None if v is None else str(v) for v in _id_strings(df[file_col])]
    cmap = _column_map(df.columns)
    for name in POSITION_COLUMNS:
        found = _find(cmap, name)
        if found is not None and found not in (id_col, file_col):
            out[name] = pd.to_numeric(df[found], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _finish(
    df: pd.DataFrame,
    source: str,
    fmt: str,
    estimate: str,
    id_col: str,
    file_col: str | None,
    rej: _Rejector,
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


def _load(path: str | os.PathLike, fmt: str, id_column: str | None) -> tuple[pd.DataFrame, str, str]:
    source = str(path)
    kind = table_kind(path)
    string_cols = (id_column,) if id_column else ID_CANDIDATES[fmt]
    df = read_table(path, string_columns=[*string_cols, *FILE_CANDIDATES] if kind == "csv" else ())
    df = df.reset_index(drop=True)
    id_col = _pick_id_column(df, source, fmt, id_column)
    return df, source, id_col


VOTE_SUFFIX = "_votes"


# ---------------------------------------------------------------------------------------------------------
# The readers.


def read_kaggle(
    path: str | os.PathLike,
    *,
    tol: float = 1e-6,
    id_column: str | None = None,
    file_column: str | None = None,
) -> GalaxyZooCatalog:
    """Read a Kaggle ``training_solutions_rev1.csv``-style table (or the same columns as Parquet/FITS).

    Args:
        path: the table.
        tol: absolute tolerance on [0, 1] and on each question's sum versus its parent's cumulative fraction.
        id_column: the id column (default ``GalaxyID``, any case).
        file_column: an image file column, if the table has one.

    Returns:
        a :class:`GalaxyZooCatalog` whose ``answer_columns`` are the 37 ``Class`` columns (cumulative).

    Raises:
        CatalogError: unreadable table, no id column, or ``Class`` columns missing (all listed).
    """
    df, source, id_col = _load(path, "kaggle", id_column)
    file_col = _pick_file_column(df, source, file_column)
    cols = _require(df, source, ANSWER_COLUMNS, "Kaggle answer")
    cum = _as_float(df, cols)
    rej = _Rejector(source, id_col, _id_strings(df[id_col]))
    _check_ids(rej)
    for row, problems in enumerate(tree_problems(cum, tol)):
        rej.add_many(row, problems)
    return _finish(df, source, "kaggle", "cumulative", id_col, file_col, rej, ANSWER_COLUMNS, cum)


def read_gz2(
    path: str | os.PathLike,
    *,
    estimate: str = "fraction",
    renormalize: bool = True,
    sum_tol: float | str | None = "auto",
    tol: float = 1e-6,
    id_column: str | None = None,
    file_column: str | None = None,
) -> GalaxyZooCatalog:
    """Read a GZ2 table (Willett et al. 2013 / Hart et al. 2016 column names) into the Kaggle tree.

    The chosen estimate's per-question fractions are checked (NaN, outside [0, 1], question sums of 1 or
    0 within ``sum_tol``), optionally renormalised to sum to exactly 1 per answered question, and turned
    into Kaggle cumulative fractions (each times its parent chain), which must then satisfy the tree
    within ``tol`` (e.g. a question nobody answered although its parent answer has votes is rejected).

    Args:
        path: the table.
        estimate: ``"fraction"`` (raw vote fraction), ``"weighted"`` (user-weighted) or ``"debiased"``.
        renormalize: divide each answered question by its sum (published fractions are rounded).
        sum_tol: tolerance on raw question sums; ``"auto"`` uses :data:`GZ2_SUM_TOL` (not checked for
            ``debiased``); None: not checked.
        tol: tolerance on the cumulative tree.
        id_column: the id column (default the first of ``dr7objid``, ``objid``, ``specobjid``, ``asset_id``,
            ``id_str``).
        file_column: an image file column (default the first of :data:`FILE_CANDIDATES` present).

    Returns:
        a :class:`GalaxyZooCatalog` with the 37 Kaggle cumulative fractions and, when all 37 ``_count``
        columns exist, vote counts ``Class1.1_votes`` ...

    Raises:
        CatalogError: unreadable table, bad ``estimate``, no id column or missing estimate columns.
    """
    if estimate not in GZ2_ESTIMATES:
        raise CatalogError(
            path, "bad_option", f"estimate must be one of {list(GZ2_ESTIMATES)}, got {estimate!r}"
        )
    df, source, id_col = _load(path, "gz2", id_column)
    file_col = _pick_file_column(df, source, file_column)
    wanted = [stem + GZ2_ESTIMATES[estimate] for stem in GZ2_ANSWER_STEMS]
    cols = _require(df, source, wanted, f"GZ2 {estimate}")
    cond = _as_float(df, cols)
    count_cols = _optional(df, [stem + "_count" for stem in GZ2_ANSWER_STEMS])
    votes = _as_float(df, count_cols) if count_cols else None

    rej = _Rejector(source, id_col, _id_strings(df[id_col]))
    _check_ids(rej)
    empty = _unanswered(cond, QUESTION_SIZES, votes) & np.isnan(cond)
    _check_fraction_values(rej, cond, cols, skip=empty)
    cond = np.where(empty, 0.0, cond)
    if votes is not None:
        _check_votes(rej, votes, count_cols)
    sums = _question_sums_37(cond)
    tol_sum = GZ2_SUM_TOL[estimate] if sum_tol == "auto" else sum_tol
    if tol_sum is not None:
        _check_question_sums(rej, sums, [task for task, _ in GZ2_TASKS], float(tol_sum))
    if renormalize:
        per_answer = np.repeat(sums, QUESTION_SIZES, axis=1)
        with np.errstate(invalid="ignore"):
            cond = np.divide(cond, per_answer, out=np.zeros_like(cond), where=per_answer > 0)
    cum = cumulative_from_conditional(cond) if len(cond) else cond
    bad = rej.rejected(len(df))
    for row, problems in enumerate(tree_problems(cum, tol)):
        if not bad[row]:  # values already reported stay reported once
            rej.add_many(row, problems)
    vote_cols = [a + VOTE_SUFFIX for a in ANSWER_COLUMNS]
    return _finish(df, source, "gz2", estimate, id_col, file_col, rej, ANSWER_COLUMNS, cum, vote_cols, votes)


def _question_sums_37(arr: np.ndarray) -> np.ndarray:
    if not len(arr):
        return np.zeros((0, len(QUESTION_SIZES)))
    starts = np.cumsum((0, *QUESTION_SIZES[:-1]))
    return np.add.reduceat(arr, starts, axis=1)


def detect_decals_suffix(columns: Sequence[str], schema: DecalsSchema = DECALS_SCHEMA) -> str | None:
    """The campaign suffix of a GZ DECaLS table (``""``, ``"-dr5"`` or ``"-dr8"``), None if none fits."""
    lower = {str(c).lower() for c in columns}
    best, best_hits = None, 0
    for suffix in DECALS_SUFFIXES:
        hits = sum(
            schema.count_column(q, a, suffix).lower() in lower
            or schema.estimate_column(q, a, "fraction", suffix).lower() in lower
            for q in schema.questions
            for a in q.answers
        )
        if hits > best_hits:
            best, best_hits = suffix, hits
    return best


def read_decals(
    path: str | os.PathLike,
    *,
    estimate: str = "fraction",
    suffix: str | None = None,
    sum_tol: float | str | None = "auto",
    id_column: str | None = None,
    file_column: str | None = None,
    schema: DecalsSchema = DECALS_SCHEMA,
) -> GalaxyZooCatalog:
    """Read a GZ DECaLS volunteer table (Walmsley et al. 2022) into :data:`DECALS_SCHEMA` (not the Kaggle 37).

    Fractions come from ``{question}{suffix}_{answer}_{estimate}``; when those columns are absent and the
    estimate is ``fraction``, from the vote counts ``{question}{suffix}_{answer}`` divided by the question's
    total. A question nobody answered (total votes 0, or all its fractions empty) gets fractions 0; an
    empty fraction in an answered question is a ``nan_label`` reject. With ``{question}_total-votes``
    columns, the answer counts must add up to them (``bad_votes``).

    Args:
        path: the table.
        estimate: ``"fraction"`` or ``"debiased"``.
        suffix: campaign suffix of the question names (``""``, ``"-dr5"``, ``"-dr8"``); None: detected.
        sum_tol: tolerance on each answered question's fraction sum (1); ``"auto"``: 0.01 for
            ``fraction``, not checked for ``debiased``; None: not checked.
        id_column: the id column (default the first of ``iauname``, ``id_str``, ``dr8_id``, ``galaxy_id``).
        file_column: an image file column (default the first of :data:`FILE_CANDIDATES` present).
        schema: the tree (default :data:`DECALS_SCHEMA`).

    Returns:
        a :class:`GalaxyZooCatalog` whose ``answer_columns`` are the 34 suffix-free DECaLS answers
        (per-question fractions) and ``vote_columns`` their counts (``<answer>_votes``) when present.

    Raises:
        CatalogError: unreadable table, no id column, or neither fraction nor count columns complete.
    """
    if estimate not in DECALS_ESTIMATES:
        raise CatalogError(
            path, "bad_option", f"estimate must be one of {list(DECALS_ESTIMATES)}, got {estimate!r}"
        )
    df, source, id_col = _load(path, "decals", id_column)
    file_col = _pick_file_column(df, source, file_column)
    if suffix is None:
        suffix = detect_decals_suffix(df.columns, schema)
        if suffix is None:
            suffix = ""
    qa = [(q, a) for q in schema.questions for a in q.answers]
    count_names = [schema.count_column(q, a, suffix) for q, a in qa]
    frac_names = [schema.estimate_column(q, a, estimate, suffix) for q, a in qa]
    total_names = [schema.total_column(q, suffix) for q in schema.questions]
    count_cols = _optional(df, count_names)
    frac_cols = _optional(df, frac_names)
    if frac_cols is None and (count_cols is None or estimate != "fraction"):
        _require(df, source, frac_names, f"GZ DECaLS {estimate}")
    total_cols = _optional(df, total_names)

    n = len(df)
    sizes = schema.question_sizes
    votes = _as_float(df, count_cols) if count_cols else None
    totals = _as_float(df, total_cols) if total_cols else None
    rej = _Rejector(source, id_col, _id_strings(df[id_col]))
    _check_ids(rej)
    if votes is not None:
        _check_votes(rej, votes, count_cols)
        if totals is not None:
            vote_sums = schema.question_sums(votes) if n else np.zeros((0, len(sizes)))
            with np.errstate(invalid="ignore"):
                mismatch = np.isfinite(totals) & np.isfinite(vote_sums) & (np.abs(vote_sums - totals) > 0.5)
            for row in np.flatnonzero(mismatch.any(axis=1)):
                for k in np.flatnonzero(mismatch[row]):
                    rej.add(
                        row,
                        "bad_votes",
                        f"{total_cols[k]} = {totals[row, k]:g} but its answers add to {vote_sums[row, k]:g}",
                    )

    if frac_cols is not None:
        frac = _as_float(df, frac_cols)
        unanswered = _unanswered(frac, sizes, votes, totals)
        _check_fraction_values(rej, frac, frac_cols, skip=unanswered & np.isnan(frac))
        frac = np.where(unanswered & np.isnan(frac), 0.0, frac)
    else:
        assert votes is not None
        v = np.nan_to_num(votes)
        per_answer = np.repeat(schema.question_sums(v), sizes, axis=1) if n else np.zeros_like(v)
        frac = np.divide(v, per_answer, out=np.zeros_like(v), where=per_answer > 0)
    tol_sum = (0.01 if estimate == "fraction" else None) if sum_tol == "auto" else sum_tol
    if tol_sum is not None and n:
        qnames = [f"{q.name}{suffix}" for q in schema.questions]
        _check_question_sums(rej, schema.question_sums(frac), qnames, float(tol_sum))
    answers = schema.answer_columns
    vote_cols = [a + VOTE_SUFFIX for a in answers]
    meta = {"suffix": suffix, "schema": schema.name}
    return _finish(
        df, source, "decals", estimate, id_col, file_col, rej, answers, frac, vote_cols, votes, schema, meta
    )


def read_catalog(path: str | os.PathLike, format: str, **options) -> GalaxyZooCatalog:
    """Read a Galaxy Zoo catalog of ``format`` ``"kaggle"``, ``"gz2"`` or ``"decals"``; ``options`` go to
    :func:`read_kaggle`, :func:`read_gz2` or :func:`read_decals`."""
    readers = {"kaggle": read_kaggle, "gz2": read_gz2, "decals": read_decals}
    if format not in readers:
        raise CatalogError(path, "bad_option", f"format must be one of {list(readers)}, got {format!r}")
    return readers[format](path, **options)
