"""Read image stamps from FITS: files or in-memory bytes, plain or gzipped.

Supported layouts (:func:`read_stamp`):

- a 2-D primary HDU ``(H, W)`` -> one channel;
- a 3-D cube ``(C, H, W)`` in one HDU -> C channels, named by header keys ``CHNAME1..CHNAMEn`` when
  present, else ``"0".."C-1"``;
- a multi-extension file with 2-D image extensions of one shape (e.g. SCIENCE/TEMPLATE/DIFFERENCE) ->
  one channel per extension, named by ``EXTNAME``; ``extensions=[...]`` picks and orders them by name;
- any of the above gzipped (a ``.gz`` file, or gzip bytes as carried by ZTF alert packets).

Pixels come back as native-endian float32 (FITS stores big-endian). NaN, infinities, integer ``BLANK``
values and blank sentinels (``|value| >= 1e30``, e.g. ZTF's -3.4028235e38) are masked: their value is set to
0.0 and the mask is True, so they are never passed on as numbers. Every failure raises
:class:`pipeline.io.rejects.StampRejected` with a reason code and a message naming the input: a header
whose structural cards are impossible (``BITPIX = 17``, ``NAXIS = 999``, ``NAXIS1 = 63.5``, a card that
cannot be parsed) is ``bad_header``, checked before any data is touched, and whatever else astropy raises on
a broken file is turned into a reject of that file too, never an error of the caller.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from pipeline.io.rejects import StampRejected

#: Pixels with an absolute value at or above this are blank sentinels (ZTF uses -3.4028235e38).
BLANK_THRESHOLD = 1e30
_GZIP_MAGIC = b"\x1f\x8b"
_FITS_MAGIC = b"SIMPLE  ="
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
#: The values the FITS standard allows for BITPIX (astropy has no dtype for any other).
VALID_BITPIX = (8, 16, 32, 64, -32, -64)
#: Most axes the FITS standard allows (NAXIS <= 999).
MAX_NAXIS = 999


@dataclass
class FitsStamp:
    """One stamp read from FITS.

    Attributes:
        pixels: ``(C, H, W)`` float32, native byte order; masked pixels are 0.0.
        mask: ``(C, H, W)`` bool, True where the input pixel was NaN, inf, BLANK or a blank sentinel.
        channels: C channel names.
        header: the primary header (ids, positions, provenance usually live there).
        image_headers: the header of each HDU the channels came from, in channel order.
        source: how the input is named in rejects (the path, or the ``name`` given to :func:`read_stamp`).
    """

    pixels: np.ndarray
    mask: np.ndarray
    channels: list[str]
    header: fits.Header
    image_headers: list[fits.Header] = field(default_factory=list)
    source: str = "<bytes>"


def is_fits_name(path: str | os.PathLike) -> bool:
    """True when a file name ends in a FITS suffix (``.fits``, ``.fit``, ``.fts``, optionally ``.gz``)."""
    return str(path).lower().endswith(FITS_SUFFIXES)


def fits_stem(path: str | os.PathLike) -> str:
    """The file name without its FITS suffix: ``a/b/123.fits.gz`` -> ``123``."""
    name = Path(path).name
    for suffix in sorted(FITS_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def mask_invalid(
    pixels: np.ndarray, blank_threshold: float = BLANK_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Native float32 pixels with NaN/inf/blank sentinels set to 0, and the mask of those pixels.

    Args:
        pixels: array of any shape and numeric dtype (big-endian accepted).
        blank_threshold: absolute value at or above which a pixel is a blank sentinel.

    Returns:
        ``(pixels float32, mask bool)`` of the input's shape.
    """
    out = np.asarray(pixels, dtype=np.float32).copy()  # astype("=f4"): native order
    with np.errstate(invalid="ignore"):
        mask = ~np.isfinite(out) | (np.abs(out) >= blank_threshold)
    out[mask] = 0.0
    return out, mask


def _load_bytes(source: str | os.PathLike | bytes, label: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except OSError as err:
            raise StampRejected("unreadable", f"{label}: cannot read file ({err.strerror or err})") from err
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise StampRejected(
                "truncated_gzip", f"{label}: gzip stream is truncated or corrupt ({err})"
            ) from err
    if not data:
        raise StampRejected("not_fits", f"{label}: the input is empty (0 bytes)")
    if not data.startswith(_FITS_MAGIC):
        raise StampRejected("not_fits", f"{label}: not a FITS file (does not start with 'SIMPLE  =')")
    return data


def cube_channel_names(header: fits.Header, n: int) -> list[str]:
    """Channel names of a (C, H, W) cube: header keys CHNAME1..CHNAMEn when all present, else "0".."C-1"."""
    names = [header.get(f"CHNAME{i + 1}") for i in range(n)]
    if all(isinstance(name, str) and name.strip() for name in names):
        return [name.strip() for name in names]
    return [str(i) for i in range(n)]


def header_value(header: fits.Header, key: str, label: str) -> Any:
    """The value of a header card (None when absent).

    Raises:
        StampRejected: ``bad_header`` when the card cannot be parsed (astropy's ``VerifyError``...).
    """
    try:
        return header.get(key)
    except Exception as err:  # astropy parses a card's value on access: VerifyError, ValueError...
        raise StampRejected("bad_header", f"{label}: header card {key} cannot be parsed ({err})") from err


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_structure(hdu: fits.hdu.base._BaseHDU, label: str) -> None:
    """Refuse an HDU whose structural cards are impossible, before its data is touched.

    ``BITPIX`` must be one of :data:`VALID_BITPIX`, ``NAXIS`` an integer in 0..999 and each ``NAXISn``
    a non-negative integer (astropy otherwise fails with KeyError, TypeError or OverflowError, or reads
    the data as the next header).

    Raises:
        StampRejected: ``bad_header`` naming the HDU and the card.
    """
    where = f"{label}: HDU {hdu.name or '?'}"
    bitpix = header_value(hdu.header, "BITPIX", where)
    if not _is_int(bitpix) or bitpix not in VALID_BITPIX:
        raise StampRejected("bad_header", f"{where}: BITPIX = {bitpix!r} is not one of {list(VALID_BITPIX)}")
    naxis = header_value(hdu.header, "NAXIS", where)
    if not _is_int(naxis) or not 0 <= naxis <= MAX_NAXIS:
        raise StampRejected("bad_header", f"{where}: NAXIS = {naxis!r} is not an integer in 0..{MAX_NAXIS}")
    for i in range(1, naxis + 1):
        size = header_value(hdu.header, f"NAXIS{i}", where)
        if not _is_int(size) or size < 0:
            what = "is missing" if size is None else f"= {size!r} is not a non-negative integer"
            raise StampRejected("bad_header", f"{where}: NAXIS{i} {what} (NAXIS = {naxis})")


def _hdu_pixels(hdu: fits.hdu.base.ExtensionHDU, label: str) -> np.ndarray | None:
    """The HDU's data with integer BLANK values turned into NaN; None when the HDU holds no image."""
    data = hdu.data
    if data is None or data.size == 0:
        return None
    if data.dtype.kind in "iu" and "BLANK" in hdu.header:
        blank = data == hdu.header["BLANK"]
        data = data.astype(np.float32)
        data[blank] = np.nan
    return data


def _raise_if_truncated(caught: list, label: str) -> None:
    truncated = [w for w in caught if "truncated" in str(w.message).lower()]
    if truncated:
        raise StampRejected("truncated_fits", f"{label}: {truncated[0].message}")


def _select_planes(
    hdul: fits.HDUList, label: str, extensions: Sequence[str] | None, caught: list
) -> tuple[np.ndarray, list[str], list[fits.Header]]:
    """The ``(C, H, W)`` raw planes, channel names and headers chosen from an open file (see read_stamp)."""
    if extensions:
        wanted = {ext.upper() for ext in extensions}
        by_name: dict[str, fits.hdu.base._BaseHDU] = {}
        for hdu in hdul:  # HDUs after the last one asked for (a Rubin cutout's UNCERT) are never parsed
            by_name.setdefault(hdu.name.upper(), hdu)
            if wanted <= by_name.keys():
                break
        missing = [ext for ext in extensions if ext.upper() not in by_name]
        if missing:
            _raise_if_truncated(caught, label)  # a cut file lacks its last extensions: say it is cut
            raise StampRejected(
                "wrong_channels",
                f"{label}: extension(s) {missing} not found; the file has {[h.name for h in hdul]}",
            )
        chosen = [by_name[ext.upper()] for ext in extensions]
    else:
        chosen = [hdu for hdu in hdul if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))]
    for hdu in chosen:
        check_structure(hdu, label)
    try:
        arrays = [(hdu, _hdu_pixels(hdu, label)) for hdu in chosen]
    except (ValueError, TypeError, OSError) as err:
        raise StampRejected("truncated_fits", f"{label}: image data cannot be read ({err})") from err
    _raise_if_truncated(caught, label)
    present = [(hdu, arr) for hdu, arr in arrays if arr is not None]
    if extensions and len(present) < len(arrays):
        empty = [hdu.name for hdu, arr in arrays if arr is None]
        raise StampRejected("empty_hdu", f"{label}: extension(s) {empty} hold no image data")
    if not present:
        raise StampRejected("empty_hdu", f"{label}: no HDU holds image data")
    if len(present) == 1:
        hdu, arr = present[0]
        if arr.ndim == 2:
            cube, channels = arr[None], [hdu.name if extensions else "0"]
        elif arr.ndim == 3:
            cube, channels = arr, cube_channel_names(hdu.header, arr.shape[0])
        else:
            raise StampRejected(
                "bad_dimensions",
                f"{label}: image data is {arr.ndim}-D {arr.shape}; expected (H, W) or (C, H, W)",
            )
        image_headers = [hdu.header]
    else:
        shapes = {arr.shape for _, arr in present}
        if any(arr.ndim != 2 for _, arr in present) or len(shapes) != 1:
            raise StampRejected(
                "bad_dimensions",
                f"{label}: image HDUs {[(h.name, a.shape) for h, a in present]} are not 2-D of one shape; "
                "choose extensions explicitly",
            )
        cube = np.stack([arr for _, arr in present])
        channels = [hdu.name for hdu, _ in present]
        image_headers = [hdu.header for hdu, _ in present]
    return cube, channels, image_headers


def read_stamp(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    extensions: Sequence[str] | None = None,
    blank_threshold: float = BLANK_THRESHOLD,
) -> FitsStamp:
    """Read one stamp from a FITS file or bytes (see the module docstring for the layouts).

    Args:
        source: path to a FITS file (optionally gzipped) or the file's bytes.
        name: how to name the input in errors (defaults to the path, or ``"<bytes>"``).
        extensions: EXTNAMEs to read as channels, in this order (case-insensitive; ``PRIMARY`` names the
            primary HDU). None: the single image HDU, or all 2-D image HDUs when there are several.
        blank_threshold: absolute pixel value at or above which a pixel is a blank sentinel.

    Raises:
        StampRejected: ``unreadable``, ``truncated_gzip``, ``not_fits``, ``bad_header``,
            ``truncated_fits``, ``empty_hdu``, ``bad_dimensions``, ``wrong_channels`` (a requested
            extension is absent), ``all_masked``.
    """
    label = name or (str(source) if not isinstance(source, (bytes, bytearray, memoryview)) else "<bytes>")
    data = _load_bytes(source, label)
    # astropy reports truncation and non-standard cards as warnings: keep them with this input.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(io.BytesIO(data), memmap=False)
        except Exception as err:  # astropy raises OSError, ValueError, KeyError... on broken headers
            raise StampRejected(
                "bad_header", f"{label}: the FITS header cannot be parsed ({type(err).__name__}: {err})"
            ) from err
        with hdul:
            try:
                cube, channels, image_headers = _select_planes(hdul, label, extensions, caught)
            except StampRejected:
                raise
            except Exception as err:  # a broken header astropy trips on in a way the checks do not name
                raise StampRejected(
                    "bad_header",
                    f"{label}: the FITS headers cannot be read ({type(err).__name__}: {err}); a structural "
                    "card (BITPIX, NAXIS, NAXISn...) is malformed",
                ) from err
            header = hdul[0].header
    pixels, mask = mask_invalid(cube, blank_threshold)
    if mask.all():
        raise StampRejected("all_masked", f"{label}: every pixel is NaN or a blank sentinel")
    return FitsStamp(pixels, mask, channels, header, image_headers, source=label)


def celestial_wcs(header: fits.Header) -> WCS | None:
    """The celestial WCS of a header, or None when it has none (no warnings raised)."""
    if "CTYPE1" not in header and "CTYPE1A" not in header:  # cheap test: building a WCS costs ~1 ms
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception:  # malformed WCS keywords: treat as no WCS
            return None
    return wcs if wcs.has_celestial else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def header_sky_position(stamp: FitsStamp) -> tuple[float, float]:
    """(ra, dec) in degrees of a stamp: ``RA``/``DEC`` header keys, else the WCS at the stamp centre, else NaN.

    Raises:
        StampRejected: ``bad_header`` (an ``RA``/``DEC`` card cannot be parsed) or ``bad_position`` (the
            header's ``RA``/``DEC`` are not finite, or ``DEC`` is outside -90..90).
    """
    for header in (stamp.header, *stamp.image_headers):
        ra, dec = header_value(header, "RA", stamp.source), header_value(header, "DEC", stamp.source)
        if _number(ra) and _number(dec):
            if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
                raise StampRejected(
                    "bad_position", f"{stamp.source}: header RA = {ra!r}, DEC = {dec!r} is not a sky position"
                )
            return float(ra), float(dec)
    for header in stamp.image_headers:
        wcs = celestial_wcs(header)
        if wcs is not None:
            h, w = stamp.pixels.shape[-2:]
            try:
                ra, dec = wcs.celestial.pixel_to_world_values((w - 1) / 2, (h - 1) / 2)
            except Exception:  # a WCS astropy accepted but cannot evaluate: no position, as without a WCS
                continue
            return float(ra), float(dec)
    return float("nan"), float("nan")


def header_pixel_scale(stamp: FitsStamp) -> float | None:
    """Pixel scale in arcsec/pixel: the ``PIXSCALE`` key, else from the celestial WCS, else None.

    Raises:
        StampRejected: ``bad_header`` when a ``PIXSCALE`` card cannot be parsed.
    """
    for header in (stamp.header, *stamp.image_headers):
        scale = header_value(header, "PIXSCALE", stamp.source)
        if _number(scale):
            return float(scale)
    for header in stamp.image_headers:
        wcs = celestial_wcs(header)
        if wcs is not None:
            from astropy.wcs.utils import proj_plane_pixel_scales

            try:
                return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)
            except Exception:  # a degenerate WCS matrix: no scale, as without a WCS
                continue
    return None
