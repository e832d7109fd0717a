"""Read tabular catalogs (CSV, Parquet, FITS tables) into pandas, choosing the reader by file suffix."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

#: File suffix -> table kind (matched case-insensitively, longest suffix first).
TABLE_SUFFIXES = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
}


class CatalogError(ValueError):
    """A whole catalog cannot be used (the one input of a run that reads it): ``source`` names the file,
    ``reason`` is a short code (``unreadable``, ``unknown_table_format``, ``missing_columns``,
    ``bad_option``), ``missing`` lists missing columns. The ingest driver writes it as the one row of
    ``rejects.csv`` (:func:`pipeline.ingest.driver.ingest`)."""

    def __init__(self, source: str | os.PathLike, reason: str, message: str, missing: Sequence[str] = ()):
        self.source = str(source)
        self.reason = reason
        self.missing = list(missing)
        super().__init__(f"{self.source}: {message}")


class TableReadError(CatalogError):
    """A table cannot be read. ``path`` (= ``source``) names it; ``reason`` is ``unreadable`` or
    ``unknown_table_format``."""

    def __init__(self, path: str | os.PathLike, reason: str, message: str):
        super().__init__(path, reason, message)

    @property
    def path(self) -> str:
        return self.source


def table_kind(path: str | os.PathLike) -> str:
    """``"csv"``, ``"parquet"`` or ``"fits"`` from the file name; :class:`TableReadError` otherwise."""
    name = Path(path).name.lower()
    for suffix in sorted(TABLE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return TABLE_SUFFIXES[suffix]
    raise TableReadError(
        path,
        "unknown_table_format",
        f"cannot tell the table format from the file name; use one of {sorted(TABLE_SUFFIXES)}",
    )


def read_table(path: str | os.PathLike, string_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (``.csv[.gz]``), Parquet (``.parquet``/``.pq``) or FITS binary table into a DataFrame.

    Args:
        path: the table file.
        string_columns: columns (matched case-insensitively) to read as text from CSV, so that long
            integer ids (19-digit ``dr7objid``, ZTF ``candid``) keep every digit and empty ids stay missing.

    FITS text columns come back as str; multidimensional FITS columns are dropped (pandas cannot hold them).

    Raises:
        TableReadError: unknown suffix, missing file, or a file its suffix's reader cannot parse.
    """
    kind = table_kind(path)
    try:
        if kind == "csv":
            header = pd.read_csv(path, nrows=0).columns
            wanted = {c.lower() for c in string_columns}
            dtype = {c: str for c in header if c.lower() in wanted}
            return pd.read_csv(path, dtype=dtype or None)
        if kind == "parquet":
            return pd.read_parquet(path)
        from astropy.table import Table

        table = Table.read(path, format="fits", character_as_bytes=False)
        multidim = [name for name in table.colnames if table[name].ndim > 1]
        if multidim:
            table.remove_columns(multidim)
        return table.to_pandas()
    except FileNotFoundError as err:
        raise TableReadError(path, "unreadable", "no such file") from err
    except Exception as err:  # pandas/pyarrow/astropy raise many types for a bad file
        raise TableReadError(
            path, "unreadable", f"cannot read it as a {kind} table ({type(err).__name__}: {err})"
        ) from err
