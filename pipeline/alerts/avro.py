"""Split Avro object container files into alert packets, fast, with errors per packet.

An alert file is an Avro object container (the Avro spec, "Object Container Files"): a header (magic
``Obj\\x01``, metadata with the writer schema and codec, a 16-byte sync marker), then blocks of
``count`` records, each block followed by the sync marker. :func:`iter_packets` walks the blocks itself and
decodes each record with :func:`fastavro.schemaless_reader`, because ``fastavro.reader`` parses the writer
schema again for every file, which costs more than decoding a one-packet file (ZTF writes one packet per
file). Parsed schemas are cached per process, keyed by the schema text, together with a reader schema that
keeps only the fields we use (:func:`data_catalogs.alert_schemas.reader_schema`), so that previous
candidates and object summaries are skipped instead of being built into dicts.

Codecs ``null`` and ``deflate`` are read here; any other codec goes through ``fastavro.reader`` (with the
same reader schema), when fastavro can decode it here: a codec whose library is not installed (snappy needs
``cramjam``, zstandard ``backports.zstd``, lz4 ``lz4``) is ``missing_codec``, a codec fastavro does not know
``unknown_codec`` (the whole file; never called truncated or corrupt). Errors never stop the caller: a file that is not Avro at all raises
:class:`AlertFileError`; a packet that cannot be decoded is yielded as a :class:`PacketError` with its index,
and when the rest of a file cannot be located (truncated block header, a corrupt sync marker with bytes
after it) one :class:`PacketError` without an index stands for that rest. A file cut inside (or right
before) its final sync marker has no rest: its packets are whole and each counts once.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import fastavro.read
from fastavro import parse_schema, schemaless_reader

from data_catalogs.alert_schemas import alert_family, reader_schema

AVRO_MAGIC = b"Obj\x01"
#: The header of an object container file, as the Avro specification defines it.
HEADER_SCHEMA = parse_schema(
    {
        "type": "record",
        "name": "org.apache.avro.file.Header",
        "fields": [
            {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
            {"name": "meta", "type": {"type": "map", "values": "bytes"}},
            {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
        ],
    }
)
SYNC_SIZE = 16


class AlertFileError(Exception):
    """A whole file cannot be read as Avro. ``reason``: ``not_avro``, ``truncated_avro``, ``missing_codec``
    or ``unknown_codec``."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class SchemaPlan:
    """How to decode the records of one writer schema.

    Attributes:
        family: ``ztf``, ``rubin`` or None (an unknown schema: records are decoded, then rejected).
        name: the writer's top-level record name (for messages).
        writer: the parsed writer schema.
        reader: the parsed reader schema (the fields used), or None to read every field.
        reader_json: the reader schema as JSON-able dict (for ``fastavro.reader`` on other codecs).
    """

    family: str | None
    name: str
    writer: Any
    reader: Any | None
    reader_json: dict | None


@dataclass(frozen=True)
class Packet:
    """One decoded record: its 0-based index in the file, its schema family and the record."""

    index: int
    family: str | None
    record: dict
    schema_name: str


@dataclass(frozen=True)
class PacketError:
    """A packet (``index``) or the unreadable rest of a file (``index`` None) that could not be decoded."""

    index: int | None
    reason: str
    message: str


_PLANS: dict[bytes, SchemaPlan] = {}


def schema_plan(schema_text: bytes) -> SchemaPlan:
    """The cached :class:`SchemaPlan` of a writer schema (JSON text from the file header).

    Raises:
        ValueError: the text is not a valid Avro schema.
    """
    plan = _PLANS.get(schema_text)
    if plan is not None:
        return plan
    schema = json.loads(schema_text)
    writer = parse_schema(schema)
    family = alert_family(schema) if isinstance(schema, Mapping) else None
    reader = reader_json = None
    if family is not None:
        reader_json = reader_schema(schema, family)
        try:
            reader = parse_schema(reader_json)
        except Exception:  # a projection that does not parse (odd named types): read every field
            reader = reader_json = None
    name = str(schema.get("name", "?")) if isinstance(schema, Mapping) else str(schema)
    plan = SchemaPlan(family, name, writer, reader, reader_json)
    _PLANS[schema_text] = plan
    return plan


def _read_long(bio: io.BytesIO) -> int:
    return schemaless_reader(bio, "long")


def read_header(data: bytes, name: str) -> tuple[SchemaPlan, str, bytes, int]:
    """``(plan, codec, sync marker, offset of the first block)`` of an Avro container file.

    Raises:
        AlertFileError: not Avro (no magic, no schema, invalid schema) or a truncated header.
    """
    if not data:
        raise AlertFileError("not_avro", f"{name}: the file is empty (0 bytes)")
    if not data.startswith(AVRO_MAGIC):
        raise AlertFileError(
            "not_avro", f"{name}: not an Avro container file (does not start with 'Obj\\x01')"
        )
    bio = io.BytesIO(data)
    try:
        header = schemaless_reader(bio, HEADER_SCHEMA)
    except Exception as err:  # EOFError, struct errors... on a cut header
        raise AlertFileError(
            "truncated_avro", f"{name}: the Avro header is truncated or corrupt ({err!r})"
        ) from err
    meta = header["meta"]
    if "avro.schema" not in meta:
        raise AlertFileError("not_avro", f"{name}: the Avro header has no avro.schema")
    try:
        plan = schema_plan(meta["avro.schema"])
    except Exception as err:
        raise AlertFileError(
            "not_avro", f"{name}: the writer schema is not a valid Avro schema ({err})"
        ) from err
    codec = meta.get("avro.codec", b"null").decode("ascii", "replace") or "null"
    return plan, codec, header["sync"], bio.tell()


def codec_problem(codec: str) -> tuple[str, str] | None:
    """Why fastavro cannot decode blocks of ``codec`` in this environment, as ``(reason, why)``:
    ``unknown_codec`` (not a codec fastavro knows) or ``missing_codec`` (its library is not installed;
    ``why`` is fastavro's own message, which names the package to install); None when it can."""
    readers = getattr(fastavro.read, "BLOCK_READERS", None)
    if readers is None:  # a fastavro without the table: decoding the blocks will tell
        return None
    reader = readers.get(codec)
    if reader is None:
        return "unknown_codec", f"codec {codec!r} is not an Avro codec fastavro can read ({sorted(readers)})"
    # fastavro registers a stub for a codec whose library is missing; calling it raises the message that
    # names the library (it reads nothing)
    if "missing_codec_lib" in getattr(reader, "__qualname__", ""):
        try:
            reader(None)
        except Exception as err:
            return "missing_codec", str(err)
    return None


def _other_codec(data: bytes, plan: SchemaPlan, name: str) -> Iterator[Packet | PacketError]:
    """Records of a file with a codec other than null/deflate, through fastavro.reader."""
    index = 0
    try:
        for record in fastavro.reader(io.BytesIO(data), reader_schema=plan.reader_json):
            yield Packet(index, plan.family, record, plan.name)
            index += 1
    except Exception as err:
        yield PacketError(None, "truncated_avro", f"{name}: cannot read past packet {index} ({err!r})")


def iter_packets(data: bytes, name: str) -> Iterator[Packet | PacketError]:
    """Decode every packet of an Avro container file held in ``data``, in file order.

    Args:
        data: the whole file.
        name: how to name the file in messages (packets are named ``name#index``).

    Yields:
        :class:`Packet` for each decoded record; :class:`PacketError` for each record that cannot be
        decoded (``truncated_avro``), and one without an index for an unreadable rest of the file.

    Raises:
        AlertFileError: the file is not Avro or its header is cut (nothing can be decoded), or its codec
            cannot be decoded here (``missing_codec``, ``unknown_codec``: :func:`codec_problem`).
    """
    plan, codec, sync, offset = read_header(data, name)
    if codec not in ("null", "deflate"):
        problem = codec_problem(codec)
        if problem is not None:
            reason, why = problem
            raise AlertFileError(reason, f"{name}: the file's codec {codec!r} cannot be decoded here: {why}")
        yield from _other_codec(data, plan, name)
        return
    bio = io.BytesIO(data)
    bio.seek(offset)
    index, end = 0, len(data)
    while bio.tell() < end:
        try:
            count, size = _read_long(bio), _read_long(bio)
        except Exception:
            yield PacketError(
                None, "truncated_avro", f"{name}: the file ends inside a block header after {index} packets"
            )
            return
        start = bio.tell()
        # a packet takes at least one byte (deflate shrinks data 1032-fold at most)
        if count < 0 or size < 0 or count > (size if codec == "null" else 1032 * size + 1):
            yield PacketError(None, "truncated_avro", f"{name}: corrupt block header after {index} packets")
            return
        block = data[start : start + size]
        if len(block) < size:
            for i in range(index, index + count):
                yield PacketError(
                    i,
                    "truncated_avro",
                    f"{name}#{i}: the file ends inside its block ({len(block)} of {size} bytes)",
                )
            return
        readable = count
        if codec == "deflate":
            try:
                block = zlib.decompress(block, -15)
            except zlib.error as err:
                for i in range(index, index + count):
                    yield PacketError(
                        i, "truncated_avro", f"{name}#{i}: its deflate block is corrupt ({err})"
                    )
                readable = 0
        records = io.BytesIO(block)
        for k in range(readable):
            try:
                record = schemaless_reader(records, plan.writer, plan.reader)
            except Exception as err:
                for i in range(index + k, index + count):
                    yield PacketError(
                        i, "truncated_avro", f"{name}#{i}: the packet cannot be decoded ({err!r})"
                    )
                break
            yield Packet(index + k, plan.family, record, plan.name)
        index += count
        bio.seek(start + size)
        if bio.read(SYNC_SIZE) != sync:
            # Each packet of this block is already counted; a reject for "the rest" only when bytes follow
            # where the marker should end (a file cut inside its last marker has no rest: one input each)
            # or when nothing of the file was counted yet (the file itself is then the one input).
            if end > start + size + SYNC_SIZE or index == 0:
                yield PacketError(
                    None, "truncated_avro", f"{name}: the sync marker after packet {index - 1} is corrupt"
                )
            return
