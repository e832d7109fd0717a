"""Which reader splits an alert file into packets: Avro containers, Parquet (Fink), JSON (braai, Kowalski).

The format is told by the file's first bytes (Avro ``Obj\\x01``, Parquet ``PAR1``, JSON ``{`` or ``[``
after any white space), else by its name (``.parquet``, ``.json``; anything else is read as Avro), so that a
file that is none of them is rejected with the reason of the format its name claims (``not_avro``,
``not_parquet``, ``not_json``). Every reader yields the same :class:`pipeline.alerts.avro.Packet` and
:class:`pipeline.alerts.avro.PacketError` records and raises :class:`pipeline.alerts.avro.AlertFileError`
for a file it cannot split at all (:func:`iter_alert_packets`), so that :mod:`pipeline.alerts.decode`
turns an alert into the same :class:`pipeline.alerts.decode.Alert` whatever it was kept in.

Formats (reader, one input): Avro containers with codec null, deflate, snappy, zstandard, bzip2, xz or lz4
(:mod:`pipeline.alerts.avro`, a packet); Parquet, one alert per row (:mod:`pipeline.alerts.parquet`, a
row); a JSON object, array or JSON Lines (:mod:`pipeline.alerts.json_alerts`, an object).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.alerts.avro import AVRO_MAGIC, Packet, PacketError, iter_packets
from pipeline.alerts.json_alerts import iter_json_packets
from pipeline.alerts.parquet import PARQUET_MAGIC, iter_parquet_packets

#: File name suffix -> format (lower case); the suffixes :func:`pipeline.alerts.decode.is_alert_name` takes.
FORMAT_SUFFIXES = {".avro": "avro", ".parquet": "parquet", ".json": "json"}
PacketReader = Callable[[bytes, str], Iterator[Packet | PacketError]]
READERS: dict[str, PacketReader] = {
    "avro": iter_packets,
    "parquet": iter_parquet_packets,
    "json": iter_json_packets,
}


def alert_format(data: bytes, name: str | os.PathLike) -> str:
    """``avro``, ``parquet`` or ``json``: by the first bytes of ``data``, else by the suffix of ``name``."""
    if data.startswith(AVRO_MAGIC):
        return "avro"
    if data.startswith(PARQUET_MAGIC):
        return "parquet"
    if data[:256].lstrip(b" \t\r\n\xef\xbb\xbf")[:1] in (b"{", b"["):
        return "json"
    return FORMAT_SUFFIXES.get(Path(name).suffix.lower(), "avro")


def iter_alert_packets(data: bytes, name: str) -> Iterator[Packet | PacketError]:
    """The packets of one alert file of any format (:func:`alert_format`), in file order.

    Raises:
        pipeline.alerts.avro.AlertFileError: the file cannot be split into packets at all.
    """
    return READERS[alert_format(data, name)](data, name)
