"""The tolerance of the decision-tree checks, from the precision a catalog was written with.

The Kaggle ``training_solutions_rev1.csv`` writes the vote fractions of the root questions (Q1, Q6) to 6
decimals and the cumulative fractions below them (products of 6-decimal conditional fractions with their
parent's) to 9. Each answer carries up to half a unit of the 6th decimal of rounding and so does the
parent it must sum to, so a real row's question may sum to 0.999999 or 1.000002 where the tree says 1;
at a fixed 1e-6, 8 % of the real rows were rejected as ``tree_violation``.

:func:`tree_tolerance` gives each question ``(answers + 1) x half a unit of the last decimal`` of the
table's precision (never below :data:`MIN_TOL`): the precision is that of the coarsest answer column,
each column's being the fewest decimals that write all of its values (:func:`written_decimals`). It
works on the parsed values, so a CSV, a Parquet or a FITS copy of the same table gets the same
tolerance. An explicit ``tol`` overrides it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The tolerance is never below this (float64 sums of fractions written to 17 digits).
MIN_TOL = 1e-6
#: Decimals looked for, at most; a column that needs more is written to full float precision.
MAX_DECIMALS = 10
#: A column needing fewer decimals than this (a few rows of round numbers: 0.5, 0.25) is not trusted to
#: tell the precision of the file; published Galaxy Zoo tables write at least 3.
MIN_DECIMALS = 3
#: Slack on the comparison, for the float64 rounding of the sums themselves.
FLOAT_SLACK = 1e-12


def column_decimals(values: np.ndarray) -> np.ndarray:
    """Per column of ``(N, A)`` values: the fewest decimals ``d <= MAX_DECIMALS`` that write every finite
    value exactly (``MAX_DECIMALS + 1`` when none does; 0 for a column of integers or no values)."""
    a = np.asarray(values, dtype=np.float64)
    out = np.full(a.shape[1], MAX_DECIMALS + 1)
    x = np.where(np.isfinite(a), a, 0.0)
    # values read from float32 columns (FITS, Parquet) carry float32 rounding (1e-7 relative)
    rel = 1e-7 if np.array_equal(x, x.astype(np.float32)) else 1e-12
    for d in range(MAX_DECIMALS, -1, -1):
        scaled = x * 10.0**d
        slack = np.minimum(np.maximum(1e-6, np.abs(scaled) * rel), 0.25)
        exact = np.abs(scaled - np.rint(scaled)) <= slack
        out = np.where(exact.all(axis=0), d, out)
    return out


def written_decimals(values: np.ndarray) -> int | None:
    """The precision of a table of fractions ``(N, A)``: the decimals of its coarsest column (those with
    at least :data:`MIN_DECIMALS`), None when no column is written to a fixed number of decimals."""
    if not len(values):
        return None
    decimals = column_decimals(values)
    fixed = decimals[(decimals >= MIN_DECIMALS) & (decimals <= MAX_DECIMALS)]
    return int(fixed.min()) if len(fixed) else None


def rounding_tolerance(decimals: int | None, sizes: Sequence[int]) -> np.ndarray:
    """Per question (answers ``sizes``): ``(answers + 1) x 0.5 x 10**-decimals``, at least :data:`MIN_TOL`
    (just :data:`MIN_TOL` for ``decimals`` None)."""
    sizes_arr = np.asarray(sizes, dtype=np.float64)
    if decimals is None:
        return np.full(len(sizes_arr), MIN_TOL)
    return np.maximum((sizes_arr + 1) * 0.5 * 10.0**-decimals, MIN_TOL)


def tree_tolerance(values: np.ndarray, sizes: Sequence[int], tol: float | None = None) -> np.ndarray:
    """Per-question tolerance on the tree sums of ``values`` ``(N, A)``: ``tol`` for every question when
    given, else :func:`rounding_tolerance` of :func:`written_decimals`."""
    if tol is not None:
        return np.full(len(sizes), float(tol))
    return rounding_tolerance(written_decimals(values), sizes)
