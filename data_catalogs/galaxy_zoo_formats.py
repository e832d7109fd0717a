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

The canonical table and the row checks are in :mod:`data_catalogs.galaxy_zoo_catalog`; the GZ2 and DECaLS
schemas in :mod:`data_catalogs.galaxy_zoo_schemas`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from data_catalogs.galaxy_zoo import (
    ANSWER_COLUMNS,
    QUESTION_SIZES,
    cumulative_from_conditional,
    tree_problems,
)
from data_catalogs.galaxy_zoo_catalog import (
    FILE_CANDIDATES,
    ID_CANDIDATES,
    GalaxyZooCatalog,
    Rejector,
    as_float,
    check_fraction_values,
    check_ids,
    check_question_sums,
    check_votes,
    finish_catalog,
    id_strings,
    optional_column,
    pick_file_column,
    pick_id_column,
    read_table,
    require_columns,
    table_kind,
    unanswered_questions,
)
from data_catalogs.galaxy_zoo_precision import tree_tolerance
from data_catalogs.galaxy_zoo_schemas import (
    DECALS_ESTIMATES,
    DECALS_SCHEMA,
    DECALS_SUFFIXES,
    GZ2_ANSWER_STEMS,
    GZ2_ESTIMATES,
    GZ2_SUM_TOL,
    GZ2_TASKS,
    DecalsSchema,
)
from data_catalogs.tables import CatalogError


def load_table(path: str | os.PathLike, fmt: str, id_column: str | None) -> tuple[pd.DataFrame, str, str]:
    source = str(path)
    kind = table_kind(path)
    string_cols = (id_column,) if id_column else ID_CANDIDATES[fmt]
    df = read_table(path, string_columns=[*string_cols, *FILE_CANDIDATES] if kind == "csv" else ())
    df = df.reset_index(drop=True)
    id_col = pick_id_column(df, source, fmt, id_column)
    return df, source, id_col


VOTE_SUFFIX = "_votes"


# ---------------------------------------------------------------------------------------------------------
# The readers.


def read_kaggle(
    path: str | os.PathLike,
    *,
    tol: float | None = None,
    id_column: str | None = None,
    file_column: str | None = None,
) -> GalaxyZooCatalog:
    """Read a Kaggle ``training_solutions_rev1.csv``-style table (or the same columns as Parquet/FITS).

    Args:
        path: the table.
        tol: absolute tolerance on [0, 1] and on each question's sum versus its parent's cumulative
            fraction; None (default): from the precision the table is written with
            (:func:`data_catalogs.galaxy_zoo_precision.tree_tolerance`: 1.5e-6 to 4e-6 for the Kaggle file's 6
            decimals).
        id_column: the id column (default ``GalaxyID``, any case).
        file_column: an image file column, if the table has one.

    Returns:
        a :class:`GalaxyZooCatalog` whose ``answer_columns`` are the 37 ``Class`` columns (cumulative).

    Raises:
        CatalogError: unreadable table, no id column, or ``Class`` columns missing (all listed).
    """
    df, source, id_col = load_table(path, "kaggle", id_column)
    file_col = pick_file_column(df, source, file_column)
    cols = require_columns(df, source, ANSWER_COLUMNS, "Kaggle answer")
    cum = as_float(df, cols)
    rej = Rejector(source, id_col, id_strings(df[id_col]))
    check_ids(rej)
    for row, problems in enumerate(tree_problems(cum, tree_tolerance(cum, QUESTION_SIZES, tol))):
        rej.add_many(row, problems)
    return finish_catalog(df, source, "kaggle", "cumulative", id_col, file_col, rej, ANSWER_COLUMNS, cum)


def read_gz2(
    path: str | os.PathLike,
    *,
    estimate: str = "fraction",
    renormalize: bool = True,
    sum_tol: float | str | None = "auto",
    tol: float | None = None,
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
        tol: tolerance on the cumulative tree; None (default): from the precision the estimate's
            fractions are written with (:func:`data_catalogs.galaxy_zoo_precision.tree_tolerance`).
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
    df, source, id_col = load_table(path, "gz2", id_column)
    file_col = pick_file_column(df, source, file_column)
    wanted = [stem + GZ2_ESTIMATES[estimate] for stem in GZ2_ANSWER_STEMS]
    cols = require_columns(df, source, wanted, f"GZ2 {estimate}")
    cond = as_float(df, cols)
    count_cols = optional_column(df, [stem + "_count" for stem in GZ2_ANSWER_STEMS])
    votes = as_float(df, count_cols) if count_cols else None

    rej = Rejector(source, id_col, id_strings(df[id_col]))
    check_ids(rej)
    empty = unanswered_questions(cond, QUESTION_SIZES, votes) & np.isnan(cond)
    check_fraction_values(rej, cond, cols, skip=empty)
    cond = np.where(empty, 0.0, cond)
    if votes is not None:
        check_votes(rej, votes, count_cols)
    sums = _question_sums_37(cond)
    tol_sum = GZ2_SUM_TOL[estimate] if sum_tol == "auto" else sum_tol
    if tol_sum is not None:
        check_question_sums(rej, sums, [task for task, _ in GZ2_TASKS], float(tol_sum))
    tree_tol = tree_tolerance(cond, QUESTION_SIZES, tol)  # before renormalising: the written precision
    if renormalize:
        per_answer = np.repeat(sums, QUESTION_SIZES, axis=1)
        with np.errstate(invalid="ignore"):
            cond = np.divide(cond, per_answer, out=np.zeros_like(cond), where=per_answer > 0)
    cum = cumulative_from_conditional(cond) if len(cond) else cond
    bad = rej.rejected(len(df))
    for row, problems in enumerate(tree_problems(cum, tree_tol)):
        if not bad[row]:  # values already reported stay reported once
            rej.add_many(row, problems)
    vote_cols = [a + VOTE_SUFFIX for a in ANSWER_COLUMNS]
    return finish_catalog(
        df, source, "gz2", estimate, id_col, file_col, rej, ANSWER_COLUMNS, cum, vote_cols, votes
    )


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
    df, source, id_col = load_table(path, "decals", id_column)
    file_col = pick_file_column(df, source, file_column)
    if suffix is None:
        suffix = detect_decals_suffix(df.columns, schema) or ""
    qa = [(q, a) for q in schema.questions for a in q.answers]
    count_names = [schema.count_column(q, a, suffix) for q, a in qa]
    frac_names = [schema.estimate_column(q, a, estimate, suffix) for q, a in qa]
    total_names = [schema.total_column(q, suffix) for q in schema.questions]
    count_cols = optional_column(df, count_names)
    frac_cols = optional_column(df, frac_names)
    if frac_cols is None and (count_cols is None or estimate != "fraction"):
        require_columns(df, source, frac_names, f"GZ DECaLS {estimate}")
    total_cols = optional_column(df, total_names)

    n = len(df)
    sizes = schema.question_sizes
    votes = as_float(df, count_cols) if count_cols else None
    totals = as_float(df, total_cols) if total_cols else None
    rej = Rejector(source, id_col, id_strings(df[id_col]))
    check_ids(rej)
    if votes is not None:
        check_votes(rej, votes, count_cols)
        if totals is not None:
            _check_vote_totals(rej, schema, votes, totals, total_cols)
    if frac_cols is not None:
        frac = as_float(df, frac_cols)
        unanswered = unanswered_questions(frac, sizes, votes, totals)
        check_fraction_values(rej, frac, frac_cols, skip=unanswered & np.isnan(frac))
        frac = np.where(unanswered & np.isnan(frac), 0.0, frac)
    else:
        frac = _fractions_from_votes(schema, votes)
    tol_sum = (0.01 if estimate == "fraction" else None) if sum_tol == "auto" else sum_tol
    if tol_sum is not None and n:
        qnames = [f"{q.name}{suffix}" for q in schema.questions]
        check_question_sums(rej, schema.question_sums(frac), qnames, float(tol_sum))
    answers = schema.answer_columns
    vote_cols = [a + VOTE_SUFFIX for a in answers]
    meta = {"suffix": suffix, "schema": schema.name}
    return finish_catalog(
        df, source, "decals", estimate, id_col, file_col, rej, answers, frac, vote_cols, votes, schema, meta
    )


def _check_vote_totals(
    rej: Rejector, schema: DecalsSchema, votes: np.ndarray, totals: np.ndarray, total_cols: Sequence[str]
) -> None:
    """``bad_votes`` for every row whose answer counts of a question do not add up to its total votes."""
    n = len(votes)
    vote_sums = schema.question_sums(votes) if n else np.zeros((0, len(schema.question_sizes)))
    with np.errstate(invalid="ignore"):
        mismatch = np.isfinite(totals) & np.isfinite(vote_sums) & (np.abs(vote_sums - totals) > 0.5)
    for row in np.flatnonzero(mismatch.any(axis=1)):
        for k in np.flatnonzero(mismatch[row]):
            rej.add(
                row,
                "bad_votes",
                f"{total_cols[k]} = {totals[row, k]:g} but its answers add to {vote_sums[row, k]:g}",
            )


def _fractions_from_votes(schema: DecalsSchema, votes: np.ndarray) -> np.ndarray:
    """``(N, A)`` per-question fractions from vote counts (a question nobody answered: 0)."""
    v = np.nan_to_num(votes)
    per_answer = (
        np.repeat(schema.question_sums(v), schema.question_sizes, axis=1) if len(v) else np.zeros_like(v)
    )
    return np.divide(v, per_answer, out=np.zeros_like(v), where=per_answer > 0)


def read_catalog(path: str | os.PathLike, format: str, **options) -> GalaxyZooCatalog:
    """Read a Galaxy Zoo catalog of ``format`` ``"kaggle"``, ``"gz2"`` or ``"decals"``; ``options`` go to
    :func:`read_kaggle`, :func:`read_gz2` or :func:`read_decals`."""
    readers = {"kaggle": read_kaggle, "gz2": read_gz2, "decals": read_decals}
    if format not in readers:
        raise CatalogError(path, "bad_option", f"format must be one of {list(readers)}, got {format!r}")
    return readers[format](path, **options)
