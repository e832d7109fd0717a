"""Alert packets from Parquet files, as Fink keeps them: one alert per row, the packet's fields as columns.

Fink's data lake, its science modules' tests and its Rubin tutorials write alerts to Parquet with the
packet's own structure: ZTF rows have ``objectId``, ``candid``, ``schemavsn``, a ``candidate`` struct and
``cutoutScience``/``cutoutTemplate``/``cutoutDifference`` structs ``{fileName, stampData}`` (gzipped FITS
bytes); Rubin rows have ``diaSourceId``, ``lsst_schema_version``, a ``diaSource`` struct and the three
cutouts as plain FITS bytes. Fink adds its own columns (classifier scores, cross-matches); they are not read.

:func:`iter_parquet_packets` yields the same :class:`pipeline.alerts.avro.Packet` records an Avro packet of
the alert gives (so :mod:`pipeline.alerts.decode` turns both into the same :class:`Alert`): the family is
told once per file from its columns (:func:`data_catalogs.alert_schemas.alert_family`), only the columns
used are read (nested ``candidate``/``diaSource`` fields projected), row group by row group. Every row is
one input, named ``path#row`` (0-based row in the file):

- ``not_parquet``: the file is not Parquet (no ``PAR1`` magic; the file: one reject);
- ``unknown_schema``: the columns are neither a ZTF nor a Rubin alert (the file: one reject);
- ``truncated_parquet``: the footer cannot be read (a cut or corrupt file: one reject, as its rows cannot
  be counted), or a row group cannot be read (each of its rows);
- ``missing_codec``: a row group is compressed with a codec this pyarrow lacks: each of its rows.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

from data_catalogs.alert_schemas import (
    CUTOUT_FIELDS,
    RUBIN_SOURCE_FIELDS,
    RUBIN_TOP_FIELDS,
    ZTF_CANDIDATE_FIELDS,
    ZTF_TOP_FIELDS,
    alert_family,
    fields_schema,
)
from pipeline.alerts.avro import AlertFileError, Packet, PacketError

PARQUET_MAGIC = b"PAR1"
#: Reject reasons of Parquet alert files (besides ``unknown_schema`` and ``missing_codec``).
PARQUET_REASONS = {
    "not_parquet": "the file is not a Parquet file (no PAR1 magic)",
    "truncated_parquet": "the Parquet footer (the file) or a row group (each of its rows) cannot be read",
}
#: Rows converted to Python records at a time (a ZTF row with its three cutouts is ~10-50 kB).
ROWS_PER_SLICE = 256


def _tree(schema: Any) -> dict[str, Any]:
    """Column name -> ``{child: None}`` for struct columns, None for others (for :func:`fields_schema`)."""
    import pyarrow as pa

    out: dict[str, Any] = {}
    for f in schema:
        out[f.name] = {c.name: None for c in f.type} if pa.types.is_struct(f.type) else None
    return out


def read_columns(tree: dict[str, Any], family: str) -> list[str]:
    """The column paths to read for ``family``: its top-level fields present in the file, with the
    ``candidate``/``diaSource`` struct projected onto the fields used (``candidate.ra``, ...)."""
    top, nested, keep = (
        (ZTF_TOP_FIELDS, "candidate", ZTF_CANDIDATE_FIELDS)
        if family == "ztf"
        else (RUBIN_TOP_FIELDS, "diaSource", RUBIN_SOURCE_FIELDS)
    )
    columns: list[str] = []
    for name in top:
        if name not in tree:
            continue
        children = tree[name]
        if name == nested and isinstance(children, dict):
            columns.extend(f"{name}.{c}" for c in keep if c in children)
        else:
            columns.append(name)
    return columns


def _row_group_error(err: Exception) -> str:
    """``missing_codec`` when pyarrow lacks the compression codec, else ``truncated_parquet``."""
    text = str(err).lower()
    return (
        "missing_codec"
        if "codec" in text and ("support" in text or "not built" in text)
        else "truncated_parquet"
    )


def _open(data: bytes, name: str) -> Any:
    """The ``pyarrow.parquet.ParquetFile`` of ``data``; AlertFileError ``not_parquet`` when it is none,
    ``truncated_parquet`` when its footer cannot be read."""
    import pyarrow.parquet as pq

    if not data.startswith(PARQUET_MAGIC):
        what = (
            "the file is empty (0 bytes)" if not data else "not a Parquet file (does not start with 'PAR1')"
        )
        raise AlertFileError("not_parquet", f"{name}: {what}")
    try:
        return pq.ParquetFile(io.BytesIO(data))
    except Exception as err:  # ArrowInvalid, OSError: a cut or corrupt footer
        raise AlertFileError(
            "truncated_parquet", f"{name}: the Parquet footer cannot be read (cut or corrupt: {err})"
        ) from err


def _group_rows(
    pf: Any, group: int, columns: Sequence[str], first: int, family: str, name: str
) -> Iterator[Packet | PacketError]:
    """The rows of one row group as packets (``first``: the file row of its first row)."""
    n_rows = pf.metadata.row_group(group).num_rows
    try:
        table = pf.read_row_group(group, columns=list(columns))
    except Exception as err:
        reason = _row_group_error(err)
        for i in range(first, first + n_rows):
            yield PacketError(i, reason, f"{name}#{i}: its row group {group} cannot be read ({err})")
        return
    index = first
    for batch in table.to_batches(max_chunksize=ROWS_PER_SLICE):
        for record in batch.to_pylist():
            yield Packet(index, family, record, "parquet row")
            index += 1


def iter_parquet_packets(data: bytes, name: str) -> Iterator[Packet | PacketError]:
    """Every row of a Parquet alert file held in ``data`` as a packet, in file order.

    Args:
        data: the whole file.
        name: how to name the file in messages (rows are named ``name#row``).

    Yields:
        :class:`Packet` for each row (``record``: the row as a dict, structs as dicts, binary as bytes);
        :class:`PacketError` for each row of a row group that cannot be read.

    Raises:
        AlertFileError: ``not_parquet`` (not Parquet), ``truncated_parquet`` (unreadable footer) or
            ``unknown_schema`` (the columns are not an alert's).
    """
    pf = _open(data, name)
    tree = _tree(pf.schema_arrow)
    family = alert_family(fields_schema(tree, "parquet"))
    if family is None:
        raise AlertFileError(
            "unknown_schema",
            f"{name}: the Parquet columns are neither a ZTF alert (candidate + {', '.join(CUTOUT_FIELDS)}) "
            f"nor a Rubin alert (diaSource + cutouts); it has {sorted(tree)[:12]}",
        )
    columns = read_columns(tree, family)
    first = 0
    for group in range(pf.metadata.num_row_groups):
        yield from _group_rows(pf, group, columns, first, family, name)
        first += pf.metadata.row_group(group).num_rows
