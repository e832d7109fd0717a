"""Train/val/test splits by object, stratified by class, saved and loaded as CSV ``object_id,split``.

- :func:`assign_splits`: by ``object_id``, so all stamps of one object (several epochs or alerts, or the
  same object in two stores) land in one split. Classification targets are stratified with sklearn
  (``StratifiedKFold`` over objects, or ``StratifiedGroupKFold`` when an object has stamps of several
  classes); other targets use ``GroupShuffleSplit``. Fixed seed.
- :func:`save_splits` / :func:`load_splits`: the assignment as a CSV ``object_id,split``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, StratifiedKFold

from pipeline.io import write_text

SPLITS = ("train", "val", "test")


def _fold_counts(fractions: Sequence[float], max_folds: int = 100) -> tuple[int, list[int]]:
    """Smallest K with every fraction a multiple of 1/K: (K, folds per split)."""
    for k in range(2, max_folds + 1):
        counts = [f * k for f in fractions]
        if all(abs(c - round(c)) < 1e-6 for c in counts):
            return k, [round(c) for c in counts]
    raise ValueError(f"split fractions {fractions} are not multiples of 1/K for any K <= {max_folds}")


def _stratified_folds(groups: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold (0..k-1) of each row: objects kept whole, classes balanced across folds.

    When every object has one class (the usual case) the objects themselves are split with
    ``StratifiedKFold`` (vectorised); otherwise ``StratifiedGroupKFold``, whose loop over objects takes
    ~0.4 ms per object (4 s for 10,000 objects).
    """
    unique, inverse = np.unique(groups, return_inverse=True)
    label = np.empty(len(unique), dtype=y.dtype)
    label[inverse] = y
    fold_of_row = np.empty(len(groups), dtype=np.int64)
    if np.array_equal(label[inverse], y):
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        fold_of_object = np.empty(len(unique), dtype=np.int64)
        for fold, (_, test) in enumerate(splitter.split(np.zeros(len(unique)), label)):
            fold_of_object[test] = fold
        return fold_of_object[inverse]
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(groups)), y, groups)):
        fold_of_row[test] = fold
    return fold_of_row


def assign_splits(
    object_ids: Sequence[str] | np.ndarray,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    stratify: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Assign every stamp to ``train``/``val``/``test`` by object: one object never spans two splits.

    Args:
        object_ids: ``(N,)`` object id of each stamp (repeats = the same object).
        fractions: train, val, test fractions, summing to 1 (a fraction may be 0); fractions of the objects
            (of each class when stratified), or of the stamps when an object has stamps of several classes.
        seed: random state of the sklearn splitters.
        stratify: ``(N,)`` class of each stamp to stratify on: K folds, K the smallest number with every
            fraction a multiple of 1/K (0.8/0.1/0.1 -> 10 folds: 1 test, 1 val, 8 train), by
            ``StratifiedKFold`` over the objects when each object has one class, else
            ``StratifiedGroupKFold`` over the stamps. None: ``GroupShuffleSplit`` twice.

    Returns:
        ``(N,)`` array of split names (object dtype).
    """
    groups = np.asarray(object_ids).astype(str)
    n = len(groups)
    frac = np.asarray(fractions, dtype=float)
    if frac.shape != (3,) or np.any(frac < 0) or abs(frac.sum() - 1) > 1e-6:
        raise ValueError(f"fractions must be 3 numbers >= 0 summing to 1, got {list(fractions)}")
    out = np.full(n, "train", dtype=object)
    n_groups = len(np.unique(groups))
    if stratify is not None:
        k, (_, n_val, n_test) = _fold_counts(frac)
        if n_groups < k:
            raise ValueError(f"{n_groups} objects are too few for {k} stratified folds")
        fold = _stratified_folds(groups, np.asarray(stratify), k, seed)
        out[fold < n_test] = "test"
        out[(fold >= n_test) & (fold < n_test + n_val)] = "val"
        return out
    rest = np.arange(n)
    for name, size in (("test", frac[2]), ("val", frac[1] / max(frac[0] + frac[1], 1e-12))):
        if size <= 0 or len(rest) == 0:
            continue
        splitter = GroupShuffleSplit(n_splits=1, test_size=float(size), random_state=seed)
        keep, take = next(splitter.split(rest, groups=groups[rest]))
        out[rest[take]] = name
        rest = rest[keep]
    return out


def save_splits(path: str | os.PathLike, object_ids: Sequence[str], splits: Sequence[str]) -> Path:
    """Write the assignment as CSV ``object_id,split`` (one row per object, sorted by id), atomically: a
    reader (e.g. another DDP rank) sees no file or the whole file."""
    table = pd.DataFrame({"object_id": np.asarray(object_ids).astype(str), "split": np.asarray(splits)})
    table = table.drop_duplicates().sort_values("object_id", kind="stable")
    dup = table["object_id"].duplicated()
    if dup.any():
        raise ValueError(f"objects in two splits: {table.loc[dup, 'object_id'].head(5).tolist()}")
    return write_text(path, table.to_csv(index=False))


def load_splits(path: str | os.PathLike, object_ids: Sequence[str]) -> np.ndarray:
    """Split of each stamp from a CSV written by :func:`save_splits`; raises if an object is missing."""
    table = pd.read_csv(path, dtype={"object_id": str, "split": str}, keep_default_na=False)
    if not {"object_id", "split"} <= set(table.columns):
        raise ValueError(f"{path} must have columns object_id,split; it has {list(table.columns)}")
    if table["object_id"].duplicated().any():
        raise ValueError(f"{path} lists an object more than once")
    bad = sorted(set(table["split"]) - set(SPLITS))
    if bad:
        raise ValueError(f"{path} has unknown split names {bad}; expected {SPLITS}")
    mapping = pd.Series(table["split"].to_numpy(), index=table["object_id"].to_numpy())
    ids = pd.Index(np.asarray(object_ids).astype(str))
    missing = ids[~ids.isin(mapping.index)].unique()
    if len(missing):
        raise ValueError(f"{len(missing)} objects are not in {path}, e.g. {list(missing[:5])}")
    return mapping.reindex(ids).to_numpy(dtype=object)
