"""Seeded mutations of input files for the fuzz suite: bytes (truncation, byte flips), FITS cards, names and
file-system oddities (zero length, mode 000, dangling and looping links, duplicates).

Each mutation returns what it did as a short string (printed in failure messages, e.g. ``truncate@1234``)
and says what a correct reader must do with the result: ``reject`` (exactly one named reject), ``ingest``
(the file is still valid: ingested, same pixels as its clean original) or ``either`` (the mutation may or
may not leave the file valid: exactly one outcome, never both, never none).
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

#: Structural FITS card mutations (keyword, value as written in the card): the file is malformed.
BAD_STRUCTURE_CARDS = (
    ("BITPIX", "17"),
    ("BITPIX", "'abc'"),
    ("NAXIS", "999"),
    ("NAXIS1", "63.5"),
    ("NAXIS1", "2147483647"),
    ("NAXIS2", "999999999"),
)
#: Sky-position cards that cannot be parsed: the stamp itself is valid (ra/dec become NaN).
BAD_SKY_CARDS = (
    ("RA", "'not a number'"),
    ("DEC", "12:34:56.7"),
    ("RA", "1.2.3"),
    ("DEC", "'+91d'"),
    ("RA", "nan"),
)
#: Odd but valid UTF-8 file-name stems (the files are ingested under them).
ODD_STEMS = ("with  spaces", "-leading-dash", "--rf", "quote'n,comma\"", "ünïcødé-星", "x" * 180)


@dataclass
class Mutant:
    """A mutated input: its bytes (None for a file-system case), what was done and what must happen."""

    data: bytes | None
    mutation: str
    expect: str
    keeps_pixels: bool = False  # when ingested, the pixels must be the original's


def truncate(data: bytes, rng: np.random.Generator, reject_before: int | None = None) -> Mutant:
    """Cut the bytes at a random offset; a reject when the cut is before ``reject_before`` (default: any
    cut, for formats with a checksum or a known end)."""
    at = int(rng.integers(0, len(data)))
    limit = len(data) if reject_before is None else reject_before
    return Mutant(data[:at], f"truncate@{at}of{len(data)}", "reject" if at < limit else "either")


def flip(data: bytes, rng: np.random.Generator, lo: int, hi: int, label: str, expect: str) -> Mutant:
    """XOR 1-3 random bytes in ``[lo, hi)`` with a random non-zero value."""
    out = bytearray(data)
    where = sorted(int(i) for i in rng.integers(lo, max(lo + 1, hi), int(rng.integers(1, 4))))
    for i in where:
        out[i] ^= int(rng.integers(1, 256))
    return Mutant(bytes(out), f"flip_{label}@{','.join(map(str, where))}", expect)


def fits_layout(raw: bytes) -> list[tuple[int, int, int]]:
    """``(header start, data start, data end)`` of each HDU of a valid plain FITS file (end without the
    padding to 2880 bytes)."""
    out = []
    with fits.open(io.BytesIO(raw)) as hdul:
        for i, hdu in enumerate(hdul):
            info = hdul.fileinfo(i)
            nbytes = 0 if hdu.data is None else hdu.data.nbytes
            out.append((info["hdrLoc"], info["datLoc"], info["datLoc"] + nbytes))
    return out


def set_card(raw: bytes, hdu: int, keyword: str, value: str) -> bytes:
    """``raw`` with the card ``keyword`` of HDU ``hdu`` replaced by ``keyword = value`` verbatim (no check:
    the card may be malformed on purpose); the card is added before END when the HDU lacks it."""
    start, data_start, _ = fits_layout(raw)[hdu]
    card = f"{keyword:<8}= {value:>20}".ljust(80).encode("ascii")
    end_at = None
    for pos in range(start, data_start, 80):
        name = raw[pos : pos + 8].decode("ascii", "replace").strip()
        if name == keyword:
            return raw[:pos] + card + raw[pos + 80 :]
        if name == "END" and end_at is None:
            end_at = pos
    if end_at is None or end_at + 80 >= data_start:
        raise ValueError(f"no room for {keyword} in HDU {hdu}")
    return raw[:end_at] + card + raw[end_at : data_start - 80] + raw[data_start:]


def fits_mutant(raw: bytes, rng: np.random.Generator, gz: bool) -> Mutant:
    """One random mutation of a valid FITS file (``raw``: its plain bytes; the result is gzipped when
    ``gz``): a truncation, byte flips in a header or in data, or a malformed card."""
    layout = fits_layout(raw)
    with_data = [i for i, (_, d0, d1) in enumerate(layout) if d1 > d0]
    choice = int(rng.integers(0, 6))
    if choice == 0 and gz:
        packed = gzip.compress(raw, mtime=0)
        if rng.random() < 0.5:
            return _named(truncate(packed, rng), "gz")
        # a changed byte after the 10-byte gzip header breaks the deflate stream or its CRC
        return flip(packed, rng, 10, len(packed), "gz", "reject")
    if choice == 0:
        mutant = truncate(raw, rng, reject_before=layout[-1][2])
    elif choice == 1:
        h0, d0, _ = layout[int(rng.integers(0, len(layout)))]
        mutant = flip(raw, rng, h0, d0, "header", "either")
    elif choice == 2:
        _, d0, d1 = layout[with_data[int(rng.integers(0, len(with_data)))]]
        mutant = flip(raw, rng, d0, d1, "data", "either")
    elif choice in (3, 4):
        hdu = with_data[int(rng.integers(0, len(with_data)))]
        keyword, value = BAD_STRUCTURE_CARDS[int(rng.integers(0, len(BAD_STRUCTURE_CARDS)))]
        mutant = Mutant(set_card(raw, hdu, keyword, value), f"card@{hdu}:{keyword}={value}", "reject")
    else:
        keyword, value = BAD_SKY_CARDS[int(rng.integers(0, len(BAD_SKY_CARDS)))]
        # the pixels are fine: ingested (ra/dec NaN) or rejected for the header, both named
        mutant = Mutant(set_card(raw, 0, keyword, value), f"card@0:{keyword}={value}", "either", True)
    if gz:
        mutant.data = gzip.compress(mutant.data or b"", mtime=0)
    return mutant


def _named(mutant: Mutant, prefix: str) -> Mutant:
    mutant.mutation = f"{prefix}_{mutant.mutation}"
    return mutant


# ------------------------------------------------------------------------------ names and file system
#: File-system cases: name -> what a reader must do (``unreadable_000`` depends on who runs the tests).
FS_CASES = ("zero_length", "mode_000", "dangling_link", "link_loop", "link_to_good", "duplicate", "odd_name")


def non_utf8_name(stem: str, suffix: str) -> str:
    """A file name whose bytes are not UTF-8 (a Latin-1 byte), as the str the OS gives back (PEP 383)."""
    return os.fsdecode(stem.encode() + b"-caf\xe9" + suffix.encode())


def root_can_read_anything() -> bool:
    """True when mode 000 files are still readable (the tests run as root)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def write_fs_case(
    case: str, folder: Path, stem: str, suffix: str, good: Path, rng: np.random.Generator
) -> tuple[Path, str, str]:
    """Create one file-system case in ``folder`` from the valid file ``good``: ``(path, mutation, expect)``."""
    if case == "odd_name":
        if rng.random() < 0.3:
            path = folder / non_utf8_name(stem, suffix)
            shutil.copy(good, path)
            return path, "name:non_utf8", "reject"
        odd = ODD_STEMS[int(rng.integers(0, len(ODD_STEMS)))]
        path = folder / f"{stem}{odd}{suffix}"
        shutil.copy(good, path)
        return path, f"name:{odd[:20]!r}", "ingest"
    path = folder / f"{stem}{suffix}"
    if case == "zero_length":
        path.write_bytes(b"")
        return path, "zero_length", "reject"
    if case == "mode_000":
        shutil.copy(good, path)
        path.chmod(0)
        return path, "mode_000", "ingest" if root_can_read_anything() else "reject"
    if case == "dangling_link":
        path.symlink_to(folder / f"{stem}-missing{suffix}")
        return path, "dangling_link", "reject"
    if case == "link_loop":
        path.symlink_to(path.name)
        return path, "link_loop", "reject"
    if case == "link_to_good":
        path.symlink_to(good.resolve())
        return path, "link_to_good", "ingest"
    shutil.copy(good, path)
    return path, "duplicate", "ingest"


def restore_modes(folder: Path) -> None:
    """Give mode 000 files their read bit back so that pytest can clean the temporary folder."""
    for path in folder.rglob("*"):
        if not path.is_symlink() and path.is_file():
            path.chmod(0o644)
