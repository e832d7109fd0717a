"""Read tabular catalogs (CSV, Parquet, FITS tables) into pandas, by file suffix."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from astropy.table import Table

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".fits", ".fit", ".fits.gz", ".ecsv")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a catalog file into a DataFrame: CSV (``.csv[.gz]``), Parquet (``.parquet``/``.pq``), FITS
    binary tables (``.fits[.gz]``, ``.fit``) and ECSV. FITS byte strings are decoded to str.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown suffix, or a file that cannot be parsed as its suffix says (message names it).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"catalog {path} does not exist")
    name = path.name.lower()
    try:
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".fits", ".fit", ".fits.gz", ".ecsv")):
            table = Table.read(path)
            for col in table.colnames:
                if table[col].dtype.kind == "S":
                    table[col] = table[col].astype(str)
            return table.to_pandas()
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"catalog {path} cannot be read: {err}") from err
    raise ValueError(f"catalog {path}: unknown table format (expected one of {TABLE_SUFFIXES})")
