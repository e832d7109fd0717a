"""Stream tables of any length to Parquet (astropy-readable), FITS or CSV in constant memory.

astropy's ``Table.write`` needs the whole table in memory. :class:`ParquetTableWriter` takes the rows in
chunks instead (one dict of 1-D numpy arrays per chunk), writes them as Parquet row groups with pyarrow and,
at :meth:`ParquetTableWriter.close`, adds the metadata astropy's own Parquet writer adds
(``table_meta_yaml``: units, descriptions and table meta serialised by
:func:`astropy.table.meta.get_yaml_from_table`; ``table::len::<col>``: the width of each string column,
known only once every chunk was seen). The file is readable by ``astropy.table.Table.read`` (units,
descriptions and meta intact), ``pandas.read_parquet`` and ``pyarrow.parquet.read_table``. The Arrow schema
is not stored in the file (``store_schema=False``): pyarrow would otherwise keep the metadata of the first
chunk, with string widths that later chunks may exceed.

FITS and CSV are converted from a finished Parquet file, also chunk by chunk: :func:`parquet_to_fits`
streams a binary table with :class:`astropy.io.fits.StreamingHDU` (units as ``TUNITn``, table meta as header
cards; column descriptions are not kept), :func:`parquet_to_csv` uses ``pyarrow.csv`` (values only).

Every file is written under a temporary name beside the final one and renamed when complete.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.table import Table
from astropy.table import meta as table_meta

from pipeline.io.atomic import CommitOnSuccess, atomic_path, output_errors, publish, start_partial

#: File suffix -> output format.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".fits": "fits", ".fit": "fits", ".csv": "csv"}
#: Rows gathered into one Parquet row group (about 8 MB for 60 float64 columns).
ROW_GROUP_ROWS = 16384


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format of ``path``'s suffix (:data:`FORMATS`)."""
    if fmt is not None:
        if fmt not in set(FORMATS.values()):
            raise ValueError(f"format must be one of {sorted(set(FORMATS.values()))}, got {fmt!r}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot tell the format of {path} from its suffix; use one of {sorted(FORMATS)}")
    return FORMATS[suffix]


def _plain_column(values: Any) -> np.ndarray:
    """A chunk column as a 1-D numpy array; object/str/bytes -> unicode ``U`` (None -> "")."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"columns must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "O":
        return np.array(["" if v is None else str(v) for v in arr], dtype=str)
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8")
    return arr


class ParquetTableWriter(CommitOnSuccess):
    """Append chunks of rows to a Parquet file that astropy reads with units, descriptions and meta.

    Args:
        path: the final file name.
        units: column -> unit string (astropy unit syntax, e.g. ``"deg"``); others are dimensionless.
        descriptions: column -> one-line description.
        meta: table meta (JSON-able mapping; kept as astropy table meta).
        row_group_rows: rows buffered per row group.

    The first chunk fixes the columns, their order and dtypes; later chunks must have the same columns
    (values are cast to the first chunk's types). Use as a context manager: on an exception the partial
    file is removed and nothing appears under ``path``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        units: Mapping[str, str] | None = None,
        descriptions: Mapping[str, str] | None = None,
        meta: Mapping[str, Any] | None = None,
        row_group_rows: int = ROW_GROUP_ROWS,
    ):
        self.path = Path(path)
        self.units = dict(units or {})
        self.descriptions = dict(descriptions or {})
        self.meta = dict(meta or {})
        self.row_group_rows = max(1, int(row_group_rows))
        self.n_rows = 0
        self._tmp = start_partial(self.path)
        self._writer: pq.ParquetWriter | None = None
        self._template: Table | None = None
        self._schema: pa.Schema | None = None
        self._str_len: dict[str, int] = {}
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._closed = False

    def _start(self, columns: Mapping[str, np.ndarray]) -> None:
        template = Table({name: np.empty(0, dtype=arr.dtype) for name, arr in columns.items()})
        for name in template.colnames:
            template[name].unit = self.units.get(name)
            template[name].description = self.descriptions.get(name)
        template.meta.update(self.meta)
        self._template = template
        self._schema = pa.schema([(name, pa.from_numpy_dtype(arr.dtype)) for name, arr in columns.items()])
        self._str_len = {name: 0 for name, arr in columns.items() if arr.dtype.kind == "U"}
        with output_errors(self.path):
            self._writer = pq.ParquetWriter(self._tmp, self._schema, store_schema=False)

    def write(self, columns: Mapping[str, Any]) -> None:
        """Append one chunk: column name -> ``(K,)`` values (all columns the same length K)."""
        arrays = {name: _plain_column(values) for name, values in columns.items()}
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of one chunk differ in length: {sorted(lengths)}")
        if self._writer is None:
            self._start(arrays)
        assert self._schema is not None
        if list(arrays) != self._schema.names:
            raise ValueError(
                f"chunk columns {list(arrays)} differ from the first chunk's {self._schema.names}"
            )
        for name in self._str_len:
            if len(arrays[name]):
                self._str_len[name] = max(self._str_len[name], int(np.char.str_len(arrays[name]).max()))
        batch = pa.Table.from_arrays(
            [pa.array(arrays[f.name], type=f.type) for f in self._schema], schema=self._schema
        )
        # One combined table, re-made per chunk: per-chunk tables kept until the flush pinned glibc's heap
        # under the model's large transient buffers (a 100,000-stamp run grew by 700 MB of RSS).
        self._pending = [pa.concat_tables([*self._pending, batch]).combine_chunks()]
        self._pending_rows += batch.num_rows
        self.n_rows += batch.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending_rows and self._writer is not None:
            with output_errors(self.path):
                self._writer.write_table(pa.concat_tables(self._pending), row_group_size=self._pending_rows)
        self._pending, self._pending_rows = [], 0

    def close(self) -> Path:
        """Write the last row group and astropy's metadata, then rename to the final name."""
        if self._closed:
            return self.path
        if self._writer is None:
            raise ValueError(f"{self.path}: no chunk was written (give at least one, even an empty one)")
        self._flush()
        assert self._template is not None
        for name, width in self._str_len.items():  # the widths astropy reads the strings with
            self._template[name] = np.empty(0, dtype=f"U{max(width, 1)}")
            self._template[name].unit = self.units.get(name)
            self._template[name].description = self.descriptions.get(name)
        metadata = {f"table::len::{name}": str(max(width, 1)) for name, width in self._str_len.items()}
        metadata["table_meta_yaml"] = "\n".join(table_meta.get_yaml_from_table(self._template))
        with output_errors(self.path):
            self._writer.add_key_value_metadata(metadata)
            writer, self._writer = self._writer, None  # closed once, whatever happens
            writer.close()
            publish(self._tmp, self.path)
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Drop the partial file; the final name is left untouched."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError:  # e.g. the disk is full: the file is deleted anyway
                pass
        self._tmp.unlink(missing_ok=True)


def _flat_header_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Table meta as FITS header values: scalars as they are, anything else as JSON text."""
    out = {}
    for key, value in meta.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
    return out


def parquet_to_fits(src: str | os.PathLike, dst: str | os.PathLike, rows: int = ROW_GROUP_ROWS) -> Path:
    """Convert a Parquet file written by :class:`ParquetTableWriter` into a FITS binary table, in chunks.

    The header comes from astropy (``fits.table_to_hdu`` of the zero-row table astropy reads from the
    Parquet schema: ``TTYPE``/``TFORM``/``TUNIT`` and the table meta as (HIERARCH) cards, nested meta as
    JSON text); the rows of each chunk are encoded by astropy too and streamed with
    :class:`astropy.io.fits.StreamingHDU`. Peak memory is about one chunk of ``rows`` rows.
    """
    src, dst = Path(src), Path(dst)
    template = Table.read(src, format="parquet", schema_only=True)
    template.meta = _flat_header_meta(template.meta)
    parquet = pq.ParquetFile(src)
    with warnings.catch_warnings(), atomic_path(dst) as tmp:
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long meta keys become HIERARCH cards
        header = fits.table_to_hdu(template).header
        header["NAXIS2"] = parquet.metadata.num_rows
        with fits.StreamingHDU(tmp, header) as stream:
            for batch in parquet.iter_batches(batch_size=rows):
                values = {n: batch.column(n).to_numpy(zero_copy_only=False) for n in template.colnames}
                chunk = Table({n: np.asarray(v, dtype=template[n].dtype) for n, v in values.items()})
                raw = fits.table_to_hdu(chunk).data.view(np.ndarray)
                big_endian = raw.astype(raw.dtype.newbyteorder(">"))
                stream.write(np.frombuffer(big_endian.tobytes(), dtype=np.uint8))
            if parquet.metadata.num_rows == 0:
                stream.write(np.zeros(0, np.uint8))
    return dst


def parquet_to_csv(src: str | os.PathLike, dst: str | os.PathLike, rows: int = ROW_GROUP_ROWS) -> Path:
    """Convert a Parquet file to CSV (header line, then values; no units or meta), in chunks of ``rows``."""
    src, dst = Path(src), Path(dst)
    parquet = pq.ParquetFile(src)
    with atomic_path(dst) as tmp, pa_csv.CSVWriter(tmp, parquet.schema_arrow) as writer:
        for batch in parquet.iter_batches(batch_size=rows):
            writer.write_batch(batch)
    return dst


def read_scored_table(path: str | os.PathLike) -> Table:
    """Read a catalog written here (Parquet, FITS or CSV) as an astropy Table."""
    fmt = output_format(path)
    if fmt == "parquet":
        return Table.read(path, format="parquet")
    if fmt == "fits":
        return Table.read(path, format="fits")
    return Table.read(path, format="ascii.csv")


def staging_parquet_path(out: Path, fmt: str) -> Path:
    """Where a catalog is first written as Parquet: ``out`` itself, or a hidden per-process file beside a
    FITS/CSV ``out`` (converted by :func:`publish_catalog`)."""
    return out if fmt == "parquet" else out.with_name(f".{out.name}.{os.getpid()}.parquet")


def publish_catalog(parquet_path: Path, out: Path, fmt: str) -> None:
    """Convert the staged Parquet catalog to ``out`` in ``fmt`` (``fits``/``csv``) and remove the staged file;
    nothing to do for Parquet."""
    if fmt == "parquet":
        return
    try:
        (parquet_to_fits if fmt == "fits" else parquet_to_csv)(parquet_path, out)
    finally:
        parquet_path.unlink(missing_ok=True)
