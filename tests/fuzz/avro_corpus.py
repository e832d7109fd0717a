"""Alert packets for the fuzz suite: the real ZTF and Rubin packets of tests/data/ztf_alerts re-encoded into
object containers of 1-3 packets (codecs null and deflate with fastavro; snappy written here, block by
block, because no snappy library is installed), their mutations, and the per-packet outcomes of a run.

A file is one case; its packets are ``path#index``. A reader must give each packet at most one outcome
(a whole-file reject, source ``path``, stands for what could not be split into packets), at least one
outcome per file, and the packets it ingests from a damaged file must be the original's.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import struct
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import numpy as np

from tests.fuzz.check import reason_problem
from tests.fuzz.mutate import Mutant, flip, truncate
from tests.pipeline.alerts.alert_helpers import rubin_sample_files, ztf_sample_files

#: Reasons that call a file damaged: never the answer for a valid file in a codec we cannot read.
CORRUPT_REASONS = {"not_avro", "truncated_avro"}
SNAPPY_INSTALLED = any(importlib.util.find_spec(m) for m in ("snappy", "cramjam"))


@cache
def packets(survey: str) -> tuple[tuple[Any, dict], ...]:
    """``(writer schema, record)`` of every real packet of a survey (``ztf`` or ``rubin``)."""
    files = ztf_sample_files() if survey == "ztf" else rubin_sample_files()
    out, schemas = [], {}
    for path in files:
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            schema = schemas.setdefault(
                json.dumps(reader.writer_schema, sort_keys=True), reader.writer_schema
            )
            out += [(schema, record) for record in reader]  # packets of one schema share the object
    return tuple(out)


def sample_files(survey: str) -> list[Path]:
    return ztf_sample_files() if survey == "ztf" else rubin_sample_files()


def container(schema: Any, records: list[dict], codec: str) -> bytes:
    """An object container of ``records``, one block per record."""
    if codec == "snappy":
        return snappy_container(schema, records)
    buf = io.BytesIO()
    fastavro.writer(buf, schema, records, codec=codec, sync_interval=1)
    return buf.getvalue()


def _long(n: int) -> bytes:
    """Avro zig-zag varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _snappy_literal(data: bytes) -> bytes:
    """A valid snappy stream that holds ``data`` as one literal (no compression needed to write it)."""
    varint = bytearray()
    n = len(data)
    while n & ~0x7F:
        varint.append((n & 0x7F) | 0x80)
        n >>= 7
    varint.append(n)
    return bytes(varint) + bytes([63 << 2]) + struct.pack("<I", len(data) - 1) + data


def snappy_container(schema: Any, records: list[dict]) -> bytes:
    """An object container with codec ``snappy`` (blocks: snappy stream + big-endian CRC32), per the spec."""
    sync = bytes(range(16))
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": b"snappy"}
    head = b"Obj\x01" + _long(len(meta))
    for key, value in meta.items():
        head += _long(len(key)) + key.encode() + _long(len(value)) + value
    out = head + _long(0) + sync
    parsed = fastavro.parse_schema(schema)
    for record in records:
        raw = io.BytesIO()
        fastavro.schemaless_writer(raw, parsed, record)
        block = _snappy_literal(raw.getvalue()) + struct.pack(">I", zlib.crc32(raw.getvalue()))
        out += _long(1) + _long(len(block)) + block + sync
    return out


def avro_mutant(data: bytes, rng: np.random.Generator) -> Mutant:
    """A truncation anywhere, a cut in the final sync marker, or byte flips in the header or the blocks."""
    header_end = data.find(data[-16:]) + 16  # the sync marker first appears at the end of the header
    choice = int(rng.integers(0, 4))
    if choice == 0:
        mutant = truncate(data, rng)
        mutant.keeps_pixels = True
        return mutant
    if choice == 1:
        cut = int(rng.integers(1, 17))
        return Mutant(data[:-cut], f"truncate_sync@-{cut}", "either", True)
    if choice == 2:
        return flip(data, rng, 0, header_end, "header", "either")
    return flip(data, rng, header_end, len(data) - 16, "data", "either")


@dataclass
class FileCase:
    """One alert file of a run: its key (input name), what was done, what must happen and its base."""

    key: str
    mutation: str
    expect: str
    base: str | None = None
    keeps_pixels: bool = False
    token: str = ""


@dataclass
class PacketOutcomes:
    """Per file key: ``index -> [("ingest", value) | (reason, error)]`` (index None: the whole file)."""

    files: dict[str, dict[int | None, list[tuple[str, Any]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    unattributed: list[str] = field(default_factory=list)

    def add(self, source: str, known: set[str], outcome: tuple[str, Any]) -> None:
        match = re.fullmatch(r"(.*)#(\d+)", source)
        key, index = (match.group(1), int(match.group(2))) if match else (source, None)
        if key in known:
            self.files[key][index].append(outcome)
        else:
            self.unattributed.append(f"{source}: {outcome[0]}")


def judge_alerts(
    cases: list[FileCase], got: PacketOutcomes, clean: PacketOutcomes, same: Callable[[Any, Any], bool]
) -> list[str]:
    """Problems of an alert run, per file (module docstring); ``same`` compares two ingested values."""
    problems = [f"output not attributable to any input: {u}" for u in got.unattributed]
    for case in cases:
        problems += [f"[{case.mutation}] {case.key!r}: {p}" for p in _file_problems(case, got, clean, same)]
    return problems


def _file_problems(case: FileCase, got: PacketOutcomes, clean: PacketOutcomes, same: Callable) -> list[str]:
    per_index = got.files.get(case.key, {})
    outcomes = [(i, o) for i, items in per_index.items() for o in items]
    if case.expect == "skip":
        return [f"not an input, yet it has {len(outcomes)} outcome(s)"] if outcomes else []
    if not outcomes:
        return ["no outcome at all: the file vanished"]
    problems = [
        f"packet {i} has {len(v)} outcomes" for i, v in per_index.items() if i is not None and len(v) > 1
    ]
    base = clean.files.get(case.base or case.key, {})
    for i, (what, value) in outcomes:
        if what == "duplicate" and case.token in value:
            continue  # a copy of a packet already read (copied file, link, re-encoding): its alert used once
        if what == "ingest":
            expected = [v for w, v in base.get(i, []) if w == "ingest"]
            if case.expect == "reject" and len(outcomes) == 1:
                problems.append("a bad file was ingested")
            if (case.keeps_pixels or case.expect == "ingest") and expected and not same(value, expected[0]):
                problems.append(f"packet {i} ingested with other values than its clean original")
            continue
        if (bad := reason_problem(what)) is not None:
            problems.append(bad)
        if case.token not in value:
            problems.append(f"reject message does not name the file ({case.token!r}): {value[:200]}")
        if case.expect == "ingest" and base.get(i) and base[i][0][0] == "ingest":
            problems.append(f"packet {i} of a valid file rejected: {what}: {value[:200]}")
    if (case.expect in ("ingest", "none") and case.base is not None) or case.mutation.endswith("/none"):
        used = {"duplicate": "ingest"}  # a duplicate stands where its alert's one use is
        want = {i: [used.get(w, w) for w, _ in v] for i, v in base.items()}
        have = {i: [used.get(w, w) for w, _ in v] for i, v in per_index.items()}
        if want != have:
            problems.append(f"outcomes {have} differ from the clean run's {want}")
    if case.expect == "reject" and not any(w != "ingest" for _, (w, _) in outcomes):
        problems.append("a bad file has no reject")
    return problems
