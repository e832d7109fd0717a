"""Rejects: one row per input that was not ingested, written as ``rejects.csv`` beside the store.

Columns: ``source`` (the input: a path, a path plus HDU or row, an id), ``reason`` (a short code from
:data:`REASONS` or the ``REASONS`` of the module that emits it; every code is listed in
``docs/data-contracts.md``, which a test keeps complete) and ``error`` (a human sentence naming the input
and the problem).
The invariant every ingest keeps: ingested + rejected = inputs.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.io.atomic import atomic_path

REJECT_COLUMNS = ("source", "reason", "error")

#: Reason codes used by the FITS, cutout and catalog ingests (others may add their own).
REASONS = {
    "unreadable": "the file could not be read at all (missing, permission, I/O error)",
    "not_fits": "the bytes are not a FITS file",
    "bad_header": "a FITS header cannot be parsed, or a card is impossible (BITPIX, NAXISn, unparsable RA/DEC)",
    "truncated_gzip": "a gzip stream ended early or is corrupt",
    "truncated_fits": "the FITS file ends before its data does",
    "empty_hdu": "no image data in the HDU(s) read",
    "bad_dimensions": "image data is neither 2-D nor a 3-D (C, H, W) cube",
    "wrong_channels": "the number or names of channels differ from the store's",
    "wrong_shape": "the stamp size differs from the store's and the size policy rejects it",
    "all_masked": "every pixel is NaN, blank or outside the image",
    "outside_image": "a cutout position lies entirely outside the image",
    "no_wcs": "a sky position was given but the image has no usable WCS",
    "bad_position": "a position is missing, not a number, or off the sky (|dec| > 90)",
    "unexpected_error": "reading the input raised an error no check above names (the message gives it)",
}


class StampRejected(Exception):
    """An input cannot be ingested. ``reason`` is a code of :data:`REASONS`; the message says why."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass
class RejectLog:
    """Collects reject rows in memory and writes them as CSV (always with the header, even when empty)."""

    rows: list[dict[str, str]] = field(default_factory=list)

    def add(self, source: str | os.PathLike, reason: str, error: str | BaseException) -> None:
        """Record one rejected input."""
        self.rows.append({"source": str(source), "reason": reason, "error": str(error)})

    def __len__(self) -> int:
        return len(self.rows)

    def counts(self) -> dict[str, int]:
        """Number of rejects per reason."""
        out: dict[str, int] = {}
        for row in self.rows:
            out[row["reason"]] = out.get(row["reason"], 0) + 1
        return out

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``rejects.csv`` (atomically: temporary name, then rename)."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=REJECT_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        return path
