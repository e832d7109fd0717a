"""How a stamp store encodes its pixels: float32 as they are, or 8-bit integers with a divisor.

Images that were 8-bit to begin with (JPEG, 8-bit PNG: every Galaxy Zoo image) hold values ``k / 255``;
storing ``k`` as uint8 makes the store 4x smaller before compression and loses nothing. Such a store's
``/stamps`` is uint8 with the root attributes :data:`PIXEL_DTYPE_ATTR` ``= "uint8"`` and
:data:`PIXEL_DIVISOR_ATTR` ``= 255.0``; every reader gets float32 ``stored.astype(np.float32) /
np.float32(255)`` (:func:`decode_pixels`), bit for bit what :func:`pipeline.io.read_image` returns for the
image. A framed image (:class:`pipeline.prep.frame.IngestFrame`, area-averaged) is quantised with
:func:`encode_pixels` (``np.rint(pixels * 255)``), which moves a value by less than ``0.5 / 255``.

A store without the attributes (every store written before them) is float32 and read as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: Root attribute naming the dtype of ``/stamps`` (``"float32"`` or ``"uint8"``; absent: float32).
PIXEL_DTYPE_ATTR = "pixel_dtype"
#: Root attribute: stored values are divided by it (as float32) to give the pixel values (absent: 1).
PIXEL_DIVISOR_ATTR = "pixel_divisor"
#: The pixel dtypes a store may have.
PIXEL_DTYPES = ("float32", "uint8")
#: The divisor of a uint8 store: values ``k / 255`` of 8-bit images are stored as ``k``.
UINT8_DIVISOR = 255.0


def pixel_attrs(pixel_dtype: str) -> dict[str, Any]:
    """The root attributes of a store whose ``/stamps`` have ``pixel_dtype``; ValueError for another."""
    if pixel_dtype not in PIXEL_DTYPES:
        raise ValueError(f"pixel dtype must be one of {PIXEL_DTYPES}, got {pixel_dtype!r}")
    divisor = UINT8_DIVISOR if pixel_dtype == "uint8" else 1.0
    return {PIXEL_DTYPE_ATTR: pixel_dtype, PIXEL_DIVISOR_ATTR: divisor}


def pixel_divisor(attrs: Mapping[str, Any]) -> float | None:
    """The divisor of a store from its root attributes; None when its values are the pixels (float32)."""
    if str(attrs.get(PIXEL_DTYPE_ATTR, "float32")) == "float32":
        return None
    return float(attrs.get(PIXEL_DIVISOR_ATTR, UINT8_DIVISOR))


def decode_pixels(stored: np.ndarray, divisor: float | None) -> np.ndarray:
    """Stored ``/stamps`` values -> float32 pixels (``stored / divisor`` in float32; as they are for None)."""
    if divisor is None:
        return np.asarray(stored, dtype=np.float32)
    return stored.astype(np.float32) / np.float32(divisor)


def encode_pixels(pixels: np.ndarray, pixel_dtype: str) -> np.ndarray:
    """Float pixels in [0, 1] -> the stored values of a ``pixel_dtype`` store.

    uint8: ``np.rint(pixels * 255)`` clipped to [0, 255] (exact for values ``k / 255``; the clip only
    guards float rounding at the ends, a pixel of an 8-bit image never lies outside [0, 1]).
    """
    if pixel_dtype == "float32":
        return np.asarray(pixels, dtype=np.float32)
    if pixel_dtype == "uint8":
        if pixels.dtype == np.uint8:
            return pixels
        scaled = np.rint(np.asarray(pixels, dtype=np.float32) * np.float32(UINT8_DIVISOR))
        return np.clip(scaled, 0, 255).astype(np.uint8)
    raise ValueError(f"pixel dtype must be one of {PIXEL_DTYPES}, got {pixel_dtype!r}")
