"""What a source reader gives the ingest driver (:mod:`pipeline.ingest.driver`).

A reader turns one source (:mod:`pipeline.ingest.sources`) into items, each an accepted :class:`Stamp` or
a :class:`Reject`. It says first how the store is laid out (:class:`StorePlan`: catalog columns, channels,
size, attributes, and the inputs it already knows are rejected), then reads its units (files, catalog
rows: what the progress bar counts) one by one. Everything else (the store builder, rejects, counts,
progress, the commit) is the driver's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from pipeline.ingest.inputs import InputFiles, expand_paths, input_name
from pipeline.io import StampRejected
from pipeline.store import StoreBuilder


@dataclass
class Stamp:
    """One stamp read from an input, for the store.

    Attributes:
        source: the input (a path, ``path#index``, ``image#row:id``), the catalog ``source`` column.
        pixels: ``(C, H, W)`` float32; invalid pixels 0.
        mask: ``(C, H, W)`` bool, True where a pixel is NaN, a blank sentinel or outside the image.
        channels: the C channel names.
        row: catalog columns (``object_id`` and the plan's ``catalog_columns``).
        labels: ``/labels/<name>`` values of this stamp, if any.
        sha256: sha256 of the input file, recorded in the store's ``source_sha256`` when accepted.
        pixel_scale_arcsec: the store's pixel scale (arcsec/pixel) if none is set yet.
        eight_bit: the pixels come from an 8-bit image (a uint8 store may hold them, :mod:`pipeline.store.pixels`).
    """

    source: str
    pixels: np.ndarray
    mask: np.ndarray
    channels: Sequence[str]
    row: dict[str, Any]
    labels: dict[str, Any] | None = None
    sha256: str | None = None
    pixel_scale_arcsec: float | None = None
    eight_bit: bool = False


class Reject(NamedTuple):
    """An input that is not ingested: ``source``, ``reason`` code and ``error`` message."""

    source: str
    reason: str
    error: str


Item = Stamp | Reject


def rejected(path: str | os.PathLike, err: StampRejected) -> Reject:
    """The :class:`Reject` of an input file (named by :func:`pipeline.ingest.inputs.input_name`)."""
    return Reject(input_name(path), err.reason, str(err))


@dataclass
class StorePlan:
    """How a reader's store is set up (see :class:`pipeline.store.builder.StoreBuilder`).

    Attributes:
        catalog_columns: columns every stamp's row gives (``object_id`` and ``source`` are added).
        attrs: root attributes of the store (``ingest`` names the source kind).
        channels, stamp_shape: fixed channel names and ``(H, W)``; None: the first accepted stamp's.
        size_policy: ``"reject"`` stamps of another size or ``"pad"`` smaller ones.
        pixel_scale_arcsec: store pixel scale; None: the first stamp that brings one.
        source_digests: sha256 of inputs every stamp comes from (an image cut from, a label catalog).
        rejects: inputs already known to be rejected (recorded first).
        pixel_dtype: ``"float32"``, ``"uint8"`` or ``"auto"`` (:class:`pipeline.store.builder.StoreBuilder`).
    """

    catalog_columns: list[str]
    attrs: dict[str, Any]
    channels: list[str] | None = None
    stamp_shape: tuple[int, int] | None = None
    size_policy: str = "reject"
    pixel_scale_arcsec: float | None = None
    source_digests: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    pixel_dtype: str = "float32"


class Reader(Protocol):
    """A source reader (one per kind, :mod:`pipeline.ingest.registry`).

    Attributes:
        progress: ``(description, unit)`` of the progress bar, e.g. ``("ingest FITS", "file")``.
        chunked: True when the source is many files that can be ingested in chunks of files (the reader
            then takes ``files``; see :meth:`input_files`).
        sources_are_files: True when a stamp's catalog ``source`` is the name of its input file (so that
            the digests of the accepted files can be found from a store's catalog).

    A reader may also have ``decode(unit)``, the part of reading a unit that needs no store (file I/O,
    decoding: thread-safe), and ``workers``: the driver then runs ``decode`` in ``workers`` threads ahead
    of the loop and calls ``read(unit, store, decoded)`` with its result, in unit order; ``read(unit,
    store)`` decodes itself, so the store is the same either way.
    """

    progress: ClassVar[tuple[str, str]]
    chunked: ClassVar[bool]
    sources_are_files: ClassVar[bool]

    @classmethod
    def input_files(cls, source: Any) -> list[Path]:
        """The files of a chunked source, in reading order (:func:`pipeline.ingest.inputs.expand_paths`)."""

    def open(self) -> StorePlan:
        """Read what the store's layout needs (a catalog, an image); raise when the source is unusable."""

    def __len__(self) -> int:
        """Number of units (after :meth:`open`)."""

    def units(self) -> Iterable[Any]:
        """The units read one by one (files, rows)."""

    def read(self, unit: Any, store: StoreBuilder) -> Iterator[Item]:
        """The items of one unit; ``store`` tells the size, channels and scale fixed so far."""

    def unit_source(self, unit: Any) -> str:
        """How a unit is named as a reject's ``source`` (when reading it fails unexpectedly)."""


class SourceReader:
    """Base of the readers: the source options, the files of a chunked source (all of them unless the
    flow hands over a chunk) and the :class:`~pipeline.ingest.inputs.InputFiles` that reads and hashes
    them. The units are the files unless a reader says otherwise."""

    progress: ClassVar[tuple[str, str]]
    chunked: ClassVar[bool] = False
    sources_are_files: ClassVar[bool] = False
    #: Chunked kinds: which files of a folder are inputs (given the path relative to the folder).
    wanted: ClassVar[Callable[[Path], bool] | None] = None

    def __init__(
        self,
        source: Any,
        files: Sequence[str | os.PathLike] | None = None,
        digests: Mapping[str, str | None] | None = None,
    ):
        self.source = source
        self.inputs = InputFiles(digests)
        self.files = [Path(f) for f in files] if files is not None else self.input_files(source)

    @classmethod
    def input_files(cls, source: Any) -> list[Path]:
        """The files of a chunked source (its ``inputs`` expanded, :func:`~pipeline.ingest.inputs.expand_paths`
        keeping the :attr:`wanted` ones), in reading order; none for the other kinds."""
        return expand_paths(source.inputs, cls.wanted) if cls.chunked else []

    def __len__(self) -> int:
        return len(self.files)

    def units(self) -> Iterable[Any]:
        return self.files

    def unit_source(self, unit: Any) -> str:
        """A file's :func:`~pipeline.ingest.inputs.input_name`; any other unit as text."""
        return input_name(unit) if isinstance(unit, (str, os.PathLike)) else str(unit)
