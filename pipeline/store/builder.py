"""Accumulate stamps from many inputs into one stamp store, with rejects and counts.

:class:`StoreBuilder` is what every ingest (FITS files, image cutouts, Galaxy Zoo images, alert packets)
feeds: it checks each stamp against the store's channels and size (the first accepted stamp fixes them
unless given), pads smaller stamps with masked pixels or rejects them (``size_policy``), buffers rows and
appends them in chunks, records rejects, and on :meth:`StoreBuilder.close` writes the store (atomically)
and ``rejects.csv`` and returns an :class:`IngestReport` where ingested + rejected = inputs. It is a
:class:`~pipeline.io.atomic.CommitOnSuccess` writer: ``with StoreBuilder(...) as builder:`` commits when the
block succeeds (the report is then ``builder.report``) and leaves nothing under the final name when it raises.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import RejectLog, StampRejected
from pipeline.io.atomic import CommitOnSuccess
from pipeline.store.writer import StampStoreWriter

SIZE_POLICIES = ("reject", "pad")
#: Pixel dtypes of a built store: ``auto`` is uint8 when the first accepted stamp comes from an 8-bit
#: image, float32 otherwise (:mod:`pipeline.store.pixels`).
BUILD_PIXEL_DTYPES = ("auto", "float32", "uint8")
#: Reject reasons added by this module (see :data:`pipeline.io.rejects.REASONS` for the others).
REASONS = {
    "wrong_pixel_type": "the store holds 8-bit pixels (uint8) and the image is not an 8-bit JPEG/PNG",
}
#: Buffered stamps are appended to the store when they reach ``chunk_rows`` rows or this many bytes.
MAX_BUFFER_BYTES = 64 << 20


@dataclass
class IngestReport:
    """What an ingest did. ``n_inputs == n_ingested + n_rejected`` always."""

    n_inputs: int
    n_ingested: int
    n_rejected: int
    store: str | None
    rejects: str
    reject_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for logs and the console."""
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.reject_reasons.items())) or "none"
        return (
            f"inputs={self.n_inputs} ingested={self.n_ingested} rejected={self.n_rejected} "
            f"(reasons: {reasons}) store={self.store or '-'} rejects={self.rejects} in {self.seconds:.1f}s"
        )


def pad_to_shape(
    pixels: np.ndarray, mask: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``(C, h, w)`` pixels and mask to ``(C, H, W)``, centred; padded pixels are 0 and masked.

    The extra row/column of an odd difference goes after the data (bottom/right). Raises ValueError when
    the stamp is larger than ``shape`` in either axis (cropping is never done silently).
    """
    c, h, w = pixels.shape
    big_h, big_w = shape
    if h > big_h or w > big_w:
        raise ValueError(f"stamp {h}x{w} is larger than the store's {big_h}x{big_w}")
    top, left = (big_h - h) // 2, (big_w - w) // 2
    out = np.zeros((c, big_h, big_w), np.float32)
    out_mask = np.ones((c, big_h, big_w), bool)
    out[:, top : top + h, left : left + w] = pixels
    out_mask[:, top : top + h, left : left + w] = mask
    return out, out_mask


class StoreBuilder(CommitOnSuccess):
    """Collect accepted stamps and rejects; write the store and ``rejects.csv`` on :meth:`close`.

    Args:
        out: final store path (``.../stamps.h5``).
        catalog_columns: catalog columns every row gives (``object_id`` and ``source`` are added).
        channels: expected channel names; None: taken from the first accepted stamp.
        stamp_shape: ``(H, W)``; None: taken from the first accepted stamp.
        size_policy: ``"reject"`` a stamp of another size, or ``"pad"`` a smaller one (centred, masked).
        rejects_path: where to write rejects (default ``rejects.csv`` beside the store).
        check_channel_names: also require equal channel names, not only an equal count.
        chunk_rows: rows buffered per append (also bounded by :data:`MAX_BUFFER_BYTES`) and the
            requested HDF5 chunk length (the writer bounds it by bytes).
        pixel_dtype: ``"auto"`` (uint8 when the first accepted stamp comes from an 8-bit image, else
            float32), ``"float32"`` or ``"uint8"`` (a stamp not from an 8-bit image is then rejected,
            ``wrong_pixel_type``).
        pixel_scale_arcsec, config_hash, compression, attrs: passed to the writer.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        *,
        catalog_columns: Sequence[str] = (),
        channels: Sequence[str] | None = None,
        stamp_shape: tuple[int, int] | None = None,
        size_policy: str = "reject",
        rejects_path: str | os.PathLike | None = None,
        check_channel_names: bool = True,
        pixel_scale_arcsec: float | None = None,
        config_hash: str = "",
        chunk_rows: int = 512,
        compression: str = "lzf",
        attrs: Mapping[str, Any] | None = None,
        pixel_dtype: str = "float32",
    ):
        if size_policy not in SIZE_POLICIES:
            raise ValueError(f"size_policy must be one of {SIZE_POLICIES}, got {size_policy!r}")
        if pixel_dtype not in BUILD_PIXEL_DTYPES:
            raise ValueError(f"pixel_dtype must be one of {BUILD_PIXEL_DTYPES}, got {pixel_dtype!r}")
        #: ``"float32"`` or ``"uint8"``; None while ``auto`` waits for the first accepted stamp.
        self.pixel_dtype: str | None = None if pixel_dtype == "auto" else pixel_dtype
        self.out = Path(out)
        self.rejects_path = Path(rejects_path) if rejects_path else self.out.with_name("rejects.csv")
        self.columns = [
            "object_id",
            "source",
            *[c for c in catalog_columns if c not in ("object_id", "source")],
        ]
        self.channels = list(channels) if channels else None
        self.stamp_shape = tuple(stamp_shape) if stamp_shape else None
        self.size_policy = size_policy
        self.check_channel_names = check_channel_names
        self.pixel_scale_arcsec = pixel_scale_arcsec
        self.rejects = RejectLog()
        self.n_ingested = 0
        self._writer_kwargs = {
            "config_hash": config_hash,
            "chunk_rows": chunk_rows,
            "compression": compression,
            "attrs": attrs,
        }
        self._chunk_rows = chunk_rows
        self._writer: StampStoreWriter | None = None
        self._digests: set[str] = set()
        self._buffer: list[tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, Any]]] = []
        self._t0 = time.perf_counter()
        #: The :class:`IngestReport`, once :meth:`close` has written the store.
        self.report: IngestReport | None = None

    @property
    def n_inputs(self) -> int:
        return self.n_ingested + len(self.rejects)

    def reject(self, source: str | os.PathLike, reason: str, error: str | BaseException) -> None:
        """Record an input that is not ingested."""
        self.rejects.add(source, reason, error)

    def add_source_digest(self, sha256: str) -> None:
        """Record an input file's sha256 for the store's ``source_sha256`` attribute."""
        self._digests.add(sha256)

    def check(
        self,
        source: str,
        pixels: np.ndarray,
        mask: np.ndarray,
        channels: Sequence[str],
        eight_bit: bool = False,
    ):
        """The stamp conformed to the store (padded if allowed), or StampRejected naming the mismatch.

        ``eight_bit``: the pixels come from an 8-bit image (values ``k / 255`` before any frame).
        """
        if self.pixel_dtype == "uint8" and not eight_bit:
            raise StampRejected(
                "wrong_pixel_type",
                f"{source}: not an 8-bit JPEG/PNG image, and the store holds 8-bit pixels (uint8); "
                "ingest with pixel dtype float32 to keep such images",
            )
        if self.channels is None:
            self.channels = list(channels)
        if len(channels) != len(self.channels):
            raise StampRejected(
                "wrong_channels",
                f"{source}: {len(channels)} channels {list(channels)}, the store has {len(self.channels)} "
                f"{self.channels}",
            )
        if self.check_channel_names and list(channels) != self.channels:
            raise StampRejected(
                "wrong_channels",
                f"{source}: channels {list(channels)} differ from the store's {self.channels}",
            )
        shape = tuple(pixels.shape[-2:])
        if self.stamp_shape is None:
            self.stamp_shape = shape
        if shape != self.stamp_shape:
            if self.size_policy == "reject":
                raise StampRejected(
                    "wrong_shape",
                    f"{source}: stamp is {shape[0]}x{shape[1]}, the store's is "
                    f"{self.stamp_shape[0]}x{self.stamp_shape[1]} (size policy 'reject'; use 'pad' to pad and mask)",
                )
            try:
                pixels, mask = pad_to_shape(pixels, mask, self.stamp_shape)
            except ValueError as err:
                raise StampRejected("wrong_shape", f"{source}: {err}; cropping is not allowed") from err
        return pixels, mask

    def add(
        self,
        source: str,
        pixels: np.ndarray,
        mask: np.ndarray,
        channels: Sequence[str],
        row: Mapping[str, Any],
        labels: Mapping[str, Any] | None = None,
        eight_bit: bool = False,
    ) -> bool:
        """Add one ``(C, H, W)`` stamp with its catalog row (and labels); rejects it on a mismatch.

        ``eight_bit``: the pixels come from an 8-bit image (see :meth:`check`). Returns True when
        accepted, False when rejected (the reject is recorded).
        """
        try:
            pixels, mask = self.check(source, pixels, mask, channels, eight_bit)
        except StampRejected as err:
            self.reject(source, err.reason, err)
            return False
        if self.pixel_dtype is None:  # auto: the first accepted stamp decides
            self.pixel_dtype = "uint8" if eight_bit else "float32"
        full_row = {"source": source, **row}
        missing = [c for c in self.columns if c not in full_row]
        if missing:
            raise ValueError(f"row for {source} lacks catalog columns {missing}")
        self._buffer.append((pixels, mask, {c: full_row[c] for c in self.columns}, dict(labels or {})))
        self.n_ingested += 1
        if len(self._buffer) >= self._chunk_rows or len(self._buffer) * pixels.nbytes >= MAX_BUFFER_BYTES:
            self._flush()
        return True

    def _open_writer(self) -> StampStoreWriter:
        if self._writer is None:
            self._writer = StampStoreWriter(
                self.out,
                self.channels,
                self.stamp_shape,
                pixel_scale_arcsec=self.pixel_scale_arcsec,
                pixel_dtype=self.pixel_dtype or "float32",
                **self._writer_kwargs,
            )
        return self._writer

    def _flush(self) -> None:
        if not self._buffer:
            return
        stamps = np.stack([b[0] for b in self._buffer])
        masks = np.stack([b[1] for b in self._buffer])
        catalog = {c: [b[2][c] for b in self._buffer] for c in self.columns}
        label_names = self._buffer[0][3].keys()
        labels = {n: np.stack([np.asarray(b[3][n]) for b in self._buffer]) for n in label_names}
        self._open_writer().append(stamps, masks, catalog, labels)
        self._buffer.clear()

    def close(self) -> IngestReport:
        """Write the remaining rows, complete the store (rename) and write ``rejects.csv``; the report is
        also kept as :attr:`report`.

        When nothing was ingested no store is written (``store`` is None); rejects are always written.
        """
        if self._buffer or self._writer is not None:
            with self._open_writer() as writer:  # published, or removed when the last rows fail
                self._flush()
                for digest in self._digests:
                    writer.add_source_digest(digest)
        self.rejects.write(self.rejects_path)
        self.report = IngestReport(
            n_inputs=self.n_inputs,
            n_ingested=self.n_ingested,
            n_rejected=len(self.rejects),
            store=str(self.out) if self._writer is not None else None,
            rejects=str(self.rejects_path),
            reject_reasons=self.rejects.counts(),
            seconds=time.perf_counter() - self._t0,
        )
        return self.report

    def abort(self) -> None:
        """Drop everything written so far (the final store name is left untouched)."""
        self._buffer.clear()
        if self._writer is not None:
            self._writer.abort()
