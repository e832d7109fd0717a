"""Read alert packets (ZTF every schema version, Rubin lsst.v9_0): files, folders, one or many per file.

Each packet becomes an :class:`Alert`: its catalog row (:data:`data_catalogs.alert_schemas.ALERT_COLUMNS`:
``objectId``, ``candid``, ``ra``, ``dec``, ``jd``, ``fid``, ``magpsf``, ``isdiffpos``, ``diff_sign``, ``nbad``,
``rb``, ``drb``, ``reliability``, ...) and its science, template, difference stamps ``(3, H, W)`` as received
(:mod:`pipeline.alerts.stamps`; bring them to a stamp size with :func:`pipeline.alerts.stamps.conform`). A
packet that cannot be used becomes a :class:`Reject` with a reason:

- ``not_avro`` / ``truncated_avro``: the file is not Avro, or the packet (or the rest of the file) cannot be
  decoded; a file that cannot be decoded at all is one reject named by its path;
- ``missing_codec`` / ``unknown_codec``: the file's codec needs a library that is not installed (the message
  names it: snappy ``cramjam``, zstandard ``backports.zstd``, lz4 ``lz4``), or is no codec fastavro knows
  (the whole file is one reject, never called truncated);
- ``bad_name``: the file name is not UTF-8 (:func:`pipeline.ingest.inputs.check_name`; one reject, named by
  the printable name);
- ``unknown_schema``: the packet is Avro but neither a ZTF nor a Rubin alert (or lacks its ids);
- ``no_cutouts``: a cutout is missing; ``not_fits`` (e.g. a JPEG stamp), ``truncated_gzip``,
  ``truncated_fits``, ``bad_dimensions``, ``all_masked``: a cutout cannot be used;
- ``unreadable``: the file cannot be read;
- ``unexpected_error``: decoding the packet raised an error none of the checks names (the message gives it).

Sources are ``path#index`` (0-based packet index in the file). Every packet of a file is either an alert or
a reject, so counts add up. :func:`iter_decoded_files` decodes many files in order, optionally in worker
processes (``workers``), keeping a bounded number of files in flight.
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data_catalogs.alert_schemas import AlertSchemaError, alert_row
from pipeline.alerts.avro import AlertFileError, Packet
from pipeline.alerts.formats import FORMAT_SUFFIXES, iter_alert_packets
from pipeline.alerts.stamps import decode_triplet
from pipeline.cpus import usable_cpus
from pipeline.ingest.inputs import check_name, input_name
from pipeline.io import StampRejected

log = logging.getLogger(__name__)

ALERT_SUFFIXES = tuple(FORMAT_SUFFIXES)  # Avro, Parquet (Fink), JSON: pipeline.alerts.formats
#: Name parts of files still being written under a temporary name (rename-into-place): never read.
PARTIAL_MARKERS = (".partial", ".tmp", ".part", ".filepart", ".crdownload")
#: Most files handed to one worker task (fewer when there are few files, so that every worker gets some):
#: large tasks keep the parent's share of the work (one result to receive per task) small.
FILES_PER_TASK = 128
#: Fewest files per worker task; fewer files than two such tasks are decoded in the calling process.
MIN_FILES_PER_TASK = 16

REASONS = {
    "not_avro": "the file is not an Avro container file (or has no valid writer schema)",
    "truncated_avro": "the packet, or the rest of the file, cannot be decoded (cut or corrupt)",
    "missing_codec": "the file's codec needs a library that is not installed (the message names the package)",
    "unknown_codec": "the file's codec is not one fastavro can read",
    "unknown_schema": "the packet is Avro but not a ZTF or Rubin alert, or lacks the ids it needs",
    "no_cutouts": "the packet lacks a science, template or difference cutout",
    "wrong_survey": "the packet comes from another survey than the store's first packet",
}


@dataclass
class Alert:
    """One decoded packet.

    Attributes:
        source: ``path#index``.
        row: the catalog row (:data:`data_catalogs.alert_schemas.ALERT_COLUMNS`).
        pixels: ``(3, H, W)`` float32 science, template, difference; invalid pixels 0.
        mask: ``(3, H, W)`` bool, True where a pixel was NaN, infinite or a blank sentinel.
    """

    source: str
    row: dict[str, Any]
    pixels: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Reject:
    """A packet (or a whole file) that is not used: ``source``, ``reason`` code and ``error`` message."""

    source: str
    reason: str
    error: str


@dataclass
class DecodedFile:
    """Everything read from one file: its alerts and rejects in file order, and its sha256 if asked."""

    path: str
    alerts: list[Alert] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    sha256: str = ""

    @property
    def n_packets(self) -> int:
        """Alerts + rejects (a reject may stand for an unreadable file or rest of a file)."""
        return len(self.alerts) + len(self.rejects)


def is_alert_name(path: str | os.PathLike) -> bool:
    """True for ``*.avro``, ``*.parquet``, ``*.json`` names that are not hidden and not temporary
    (``.partial``, ``.tmp``, ...)."""
    name = Path(path).name
    lower = name.lower()
    return (
        lower.endswith(ALERT_SUFFIXES)
        and not name.startswith(".")
        and not any(marker in lower for marker in PARTIAL_MARKERS)
    )


def expand_alert_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files to read: each file as given, each folder's alert files (recursively, sorted by path).

    A path that does not exist is kept, so that it is reported as a reject rather than lost
    (:func:`pipeline.ingest.inputs.expand_paths`, the one rule of every ingest).
    """
    from pipeline.ingest.inputs import expand_paths

    return expand_paths(paths, is_alert_name)


def decode_packet(packet: Packet, source: str, *, fast: bool = True) -> Alert:
    """The :class:`Alert` of one decoded Avro record.

    Raises:
        StampRejected: ``unknown_schema`` or any reason of :func:`pipeline.alerts.stamps.decode_triplet`.
    """
    if packet.family is None:
        raise StampRejected(
            "unknown_schema",
            f"{source}: record {packet.schema_name!r} is neither a ZTF alert (candidate + cutouts) nor a "
            "Rubin alert (diaSource + cutouts)",
        )
    try:
        row = alert_row(packet.record, packet.family)
    except AlertSchemaError as err:
        raise StampRejected("unknown_schema", f"{source}: {err}") from err
    pixels, mask = decode_triplet(packet.record, packet.family, source, fast=fast)
    row["cutout_height"], row["cutout_width"] = int(pixels.shape[1]), int(pixels.shape[2])
    return Alert(source, row, pixels, mask)


def decode_alert_bytes(data: bytes, name: str, *, fast: bool = True) -> DecodedFile:
    """Decode every packet of one alert file held in memory, Avro, Parquet or JSON
    (:mod:`pipeline.alerts.formats`; ``name`` names it in sources and errors)."""
    out = DecodedFile(name)
    try:
        for item in iter_alert_packets(data, name):
            if isinstance(item, Packet):
                source = f"{name}#{item.index}"
                try:
                    out.alerts.append(decode_packet(item, source, fast=fast))
                except StampRejected as err:
                    out.rejects.append(Reject(source, err.reason, str(err)))
                except Exception as err:  # the last guard of a packet: its reject, never the file's end
                    message = f"{source}: decoding it failed ({type(err).__name__}: {err})"
                    out.rejects.append(Reject(source, "unexpected_error", message))
            else:
                source = name if item.index is None else f"{name}#{item.index}"
                out.rejects.append(Reject(source, item.reason, item.message))
    except AlertFileError as err:
        out.rejects.append(Reject(name, err.reason, str(err)))
    return out


def decode_alert_file(path: str | os.PathLike, *, digest: bool = False, fast: bool = True) -> DecodedFile:
    """Decode every packet of one file; an unreadable file is one ``unreadable`` reject, a file name that
    is not UTF-8 one ``bad_name`` reject (its source the printable name; ``path`` stays the path given).

    Args:
        path: the Avro file.
        digest: also compute the file's sha256 (for a store's ``source_sha256``).
        fast: decode simple FITS cutouts without astropy (:mod:`pipeline.alerts.cutouts`).
    """
    name = str(path)
    try:
        check_name(name)
    except StampRejected as err:  # as the ingest does: a name that cannot be stored is its file's reject
        return DecodedFile(name, rejects=[Reject(input_name(name), err.reason, str(err))])
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        return DecodedFile(
            name, rejects=[Reject(name, "unreadable", f"{name}: cannot read file ({err.strerror or err})")]
        )
    decoded = decode_alert_bytes(data, name, fast=fast)
    if digest:
        decoded.sha256 = hashlib.sha256(data).hexdigest()
    return decoded


@dataclass
class PackedFiles:
    """Decoded files in the form that crosses a process boundary cheaply: the pixels and masks of all
    their alerts in two flat arrays (one copy each, instead of two small arrays per alert), the rest as
    plain records.

    Attributes:
        files: per file ``(path, sha256, rejects, [(source, row, (3, H, W)), ...])``.
        pixels: float32, every alert's pixels raveled and concatenated in order.
        mask: the masks likewise, bit-packed (:func:`numpy.packbits`).
    """

    files: list[tuple[str, str, list[Reject], list[tuple[str, dict[str, Any], tuple[int, ...]]]]]
    pixels: np.ndarray
    mask: np.ndarray

    @classmethod
    def pack(cls, decoded: Sequence[DecodedFile]) -> PackedFiles:
        """Pack decoded files (their arrays are copied into the flat arrays)."""
        alerts = [a for d in decoded for a in d.alerts]
        files = [
            (d.path, d.sha256, d.rejects, [(a.source, a.row, a.pixels.shape) for a in d.alerts])
            for d in decoded
        ]
        if not alerts:
            return cls(files, np.zeros(0, np.float32), np.zeros(0, np.uint8))
        pixels = np.concatenate([a.pixels.ravel() for a in alerts]).astype(np.float32, copy=False)
        mask = np.packbits(np.concatenate([a.mask.ravel() for a in alerts]))
        return cls(files, pixels, mask)

    def unpack(self) -> list[DecodedFile]:
        """The decoded files again; each alert's arrays are views into the flat arrays."""
        mask = np.unpackbits(self.mask, count=self.pixels.size).view(bool)
        out, offset = [], 0
        for path, sha256, rejects, alerts in self.files:
            decoded = DecodedFile(path, rejects=rejects, sha256=sha256)
            for source, row, shape in alerts:
                end = offset + math.prod(shape)
                decoded.alerts.append(
                    Alert(
                        source, row, self.pixels[offset:end].reshape(shape), mask[offset:end].reshape(shape)
                    )
                )
                offset = end
            out.append(decoded)
        return out


def _decode_many(paths: Sequence[str], digest: bool, fast: bool) -> PackedFiles:
    """Worker task: decode ``paths`` and pack the result for the trip back to the parent."""
    return PackedFiles.pack([decode_alert_file(p, digest=digest, fast=fast) for p in paths])


def can_use_processes() -> bool:
    """False inside a daemonic process (a Dask or multiprocessing worker), which cannot have children."""
    return not multiprocessing.current_process().daemon


class AlertDecoder:
    """Decode alert files in order, in this process or in ``workers`` worker processes.

    Args:
        workers: worker processes (1: decode here; 0: one per usable CPU). Falls back to 1 inside a
            daemonic process, where children cannot be started; fewer files than two tasks are decoded
            here too.
        files_per_task: most files one worker task decodes (:data:`FILES_PER_TASK`; a batch is split into
            about 4 tasks per worker, each of at least :data:`MIN_FILES_PER_TASK` files). A worker sends
            its task's alerts back as one :class:`PackedFiles`.
        digest: compute each file's sha256.
        fast: decode simple FITS cutouts without astropy.

    Use as a context manager (the pool, if any, is kept between calls and shut down on exit); the
    workers are started with ``forkserver`` so that a parent holding threads (torch, Prefect) is safe.
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        files_per_task: int = FILES_PER_TASK,
        digest: bool = False,
        fast: bool = True,
    ):
        self.workers = usable_cpus() if int(workers) == 0 else max(1, int(workers))
        if self.workers > 1 and not can_use_processes():
            log.info("decoding alerts in this process: a daemonic process cannot start worker processes")
            self.workers = 1
        self.files_per_task = max(1, int(files_per_task))
        self.digest = digest
        self.fast = fast
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> AlertDecoder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            if "forkserver" in methods:
                ctx.set_forkserver_preload(["pipeline.alerts.decode"])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self._pool

    def start(self) -> AlertDecoder:
        """Start the worker processes now (they are otherwise started by the first call)."""
        if self.workers > 1:
            pool = self._executor()
            for f in [pool.submit(_decode_many, [], False, True) for _ in range(self.workers)]:
                f.result()
        return self

    def decode(self, paths: Iterable[str | os.PathLike]) -> Iterator[DecodedFile]:
        """:class:`DecodedFile` of each path, in the order given; memory is bounded by the files in flight."""
        names = [str(p) for p in paths]
        smallest = min(MIN_FILES_PER_TASK, self.files_per_task)
        if self.workers == 1 or len(names) < 2 * smallest:
            for name in names:
                yield decode_alert_file(name, digest=self.digest, fast=self.fast)
            return
        pool = self._executor()
        # about 4 tasks per worker, within [smallest, files_per_task]
        size = min(max(smallest, math.ceil(len(names) / (4 * self.workers))), self.files_per_task)
        chunks = [names[i : i + size] for i in range(0, len(names), size)]
        pending: deque[Future] = deque()
        next_chunk = 0
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < 2 * self.workers:
                pending.append(pool.submit(_decode_many, chunks[next_chunk], self.digest, self.fast))
                next_chunk += 1
            yield from pending.popleft().result().unpack()


def iter_decoded_files(
    paths: Iterable[str | os.PathLike], *, workers: int = 1, digest: bool = False, fast: bool = True
) -> Iterator[DecodedFile]:
    """Decode alert files in order (see :class:`AlertDecoder`); folders are not expanded here."""
    with AlertDecoder(workers, digest=digest, fast=fast) as decoder:
        yield from decoder.decode(paths)


def read_alerts(paths: Iterable[str | os.PathLike], *, workers: int = 1) -> tuple[list[Alert], list[Reject]]:
    """All alerts and rejects of files and folders (convenience for small inputs; use
    :func:`iter_decoded_files` to stream)."""
    alerts: list[Alert] = []
    rejects: list[Reject] = []
    for decoded in iter_decoded_files(expand_alert_inputs(paths), workers=workers):
        alerts.extend(decoded.alerts)
        rejects.extend(decoded.rejects)
    return alerts, rejects
