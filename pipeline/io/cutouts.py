"""Cut fixed-size stamps from large images at sky (RA/Dec through the image WCS) or pixel positions.

Positions go through :class:`astropy.nddata.Cutout2D` (``mode="partial"``): a stamp that overlaps the image
edge is padded, and its padded pixels are masked; a position entirely outside the image is rejected with
reason ``outside_image``; a sky position on an image without a celestial WCS with ``no_wcs``; a NaN
position with ``bad_position``. Pixel positions are 0-based ``(x, y)`` (numpy/astropy convention: x is the
column, the centre of the first pixel is 0).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D, NoOverlapError
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from pipeline.io.fits import BLANK_THRESHOLD, celestial_wcs, check_structure, cube_channel_names, mask_invalid
from pipeline.io.rejects import StampRejected


@dataclass
class FitsImage:
    """A large image to cut from.

    Attributes:
        pixels: ``(C, H, W)`` float32; NaN/blank pixels are 0 and flagged in ``mask``.
        mask: ``(C, H, W)`` bool.
        channels: C names.
        wcs: celestial WCS, or None.
        source: file name, for messages.
    """

    pixels: np.ndarray
    mask: np.ndarray
    channels: list[str]
    wcs: WCS | None
    source: str


def read_fits_image(path: str | os.PathLike, hdu: int | str | None = None) -> FitsImage:
    """Read a 2-D image or ``(C, H, W)`` cube (and its WCS) from a FITS file, memory-mapped where possible.

    Args:
        path: FITS file (may be gzipped).
        hdu: index or EXTNAME of the image HDU; None picks the first HDU with image data.

    Raises:
        StampRejected: ``unreadable``/``not_fits``/``bad_header``/``truncated_fits``/``empty_hdu``/
            ``bad_dimensions`` with the file named (the image is the one input of a cutout run: the caller
            reports it as the run's error).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # "File may have been truncated": raised below
        hdul = _open_image(path)
    with hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        try:
            return _image_of(hdul, path, hdu)
        except StampRejected:
            raise
        except (TypeError, ValueError, OSError) as err:  # numpy: "buffer is too small for requested array"
            raise StampRejected(
                "truncated_fits", f"{path}: the image data cannot be read; the file is cut or corrupt ({err})"
            ) from err
        except Exception as err:  # a header astropy trips on in a way the checks do not name
            raise StampRejected(
                "bad_header", f"{path}: the FITS headers cannot be read ({type(err).__name__}: {err})"
            ) from err


def _open_image(path: str | os.PathLike) -> fits.HDUList:
    try:
        return fits.open(path, memmap=True)
    except FileNotFoundError as err:
        raise StampRejected("unreadable", f"{path}: no such file") from err
    except OSError as err:
        raise StampRejected("not_fits", f"{path}: not a readable FITS file ({err})") from err
    except Exception as err:  # astropy raises VerifyError, ValueError... on a broken first header
        raise StampRejected("bad_header", f"{path}: the FITS header cannot be read ({err})") from err


def _image_of(hdul: fits.HDUList, path: str | os.PathLike, hdu: int | str | None) -> FitsImage:
    """The image of an open file (see :func:`read_fits_image`)."""
    if hdu is None:
        for each in hdul:  # refuse impossible headers before any data is touched
            check_structure(each, str(path))
        candidates = [h for h in hdul if getattr(h, "data", None) is not None and h.is_image]
        if not candidates:
            raise StampRejected("empty_hdu", f"{path}: no HDU holds image data")
        chosen = candidates[0]
    else:
        try:
            chosen = hdul[hdu]
        except (KeyError, IndexError) as err:
            raise StampRejected("empty_hdu", f"{path}: HDU {hdu!r} not found") from err
    check_structure(chosen, str(path))
    data = chosen.data
    if data is None:
        raise StampRejected("empty_hdu", f"{path}: HDU {hdu!r} holds no image data")
    if data.ndim not in (2, 3):
        raise StampRejected("bad_dimensions", f"{path}: image is {data.ndim}-D {data.shape}")
    cube = data[None] if data.ndim == 2 else data
    pixels, mask = mask_invalid(cube, BLANK_THRESHOLD)
    channels = ["0"] if data.ndim == 2 else cube_channel_names(chosen.header, data.shape[0])
    wcs = celestial_wcs(chosen.header)
    return FitsImage(pixels=pixels, mask=mask, channels=channels, wcs=wcs, source=str(path))


@dataclass
class Cutout:
    """One stamp cut from an image.

    Attributes:
        pixels: ``(C, size, size)`` float32; padded and invalid pixels are 0.
        mask: ``(C, size, size)`` bool, True where padded (outside the image) or invalid in the image.
        x, y: 0-based pixel position of the stamp centre in the image.
        ra, dec: sky position in degrees (NaN without a WCS).
    """

    pixels: np.ndarray
    mask: np.ndarray
    x: float
    y: float
    ra: float
    dec: float


def pixel_positions(image: FitsImage, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sky positions (degrees, ICRS) -> 0-based pixel ``(x, y)`` through the image WCS.

    Positions that are not on the sky (:func:`off_sky`) get NaN pixels (:func:`cut_stamp` rejects those
    with ``bad_position``); the others go through the WCS together.

    Raises:
        StampRejected: ``no_wcs`` when the image has no celestial WCS.
    """
    if image.wcs is None:
        raise StampRejected(
            "no_wcs", f"{image.source}: sky positions given but the image has no celestial WCS"
        )
    ra, dec = np.atleast_1d(np.asarray(ra, float)), np.atleast_1d(np.asarray(dec, float))
    x, y = np.full(ra.shape, np.nan), np.full(ra.shape, np.nan)
    valid = ~off_sky(ra, dec)
    if valid.any():  # astropy refuses a whole array for one latitude beyond 90 degrees
        coords = SkyCoord(ra[valid], dec[valid], unit="deg")
        x[valid], y[valid] = image.wcs.world_to_pixel(coords)
    return x, y


def off_sky(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """True where ``(ra, dec)`` (degrees) is no sky position: not finite, or ``|dec| > 90``."""
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0))


def cut_stamp(image: FitsImage, x: float, y: float, size: int) -> Cutout:
    """Cut one ``size x size`` stamp centred on pixel ``(x, y)``; edges padded and masked.

    Raises:
        StampRejected: ``bad_position`` (NaN position) or ``outside_image`` (no overlap).
    """
    if not (np.isfinite(x) and np.isfinite(y)):
        raise StampRejected("bad_position", f"{image.source}: position ({x}, {y}) is not finite")
    try:
        cut = Cutout2D(image.pixels[0], (x, y), (size, size), mode="partial", fill_value=0.0, copy=False)
    except NoOverlapError as err:
        h, w = image.pixels.shape[-2:]
        raise StampRejected(
            "outside_image", f"{image.source}: position x={x:.1f}, y={y:.1f} is outside the {w}x{h} image"
        ) from err
    channels = image.pixels.shape[0]
    pixels = np.zeros((channels, size, size), np.float32)
    mask = np.ones((channels, size, size), bool)
    inner = (slice(None), *cut.slices_cutout)
    outer = (slice(None), *cut.slices_original)
    pixels[inner] = image.pixels[outer]
    mask[inner] = image.mask[outer]
    ra = dec = float("nan")
    if image.wcs is not None:
        ra, dec = (float(v) for v in image.wcs.pixel_to_world_values(x, y))
    return Cutout(pixels=pixels, mask=mask, x=float(x), y=float(y), ra=ra, dec=dec)
