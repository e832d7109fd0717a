"""Read JPEG and PNG images (e.g. the Kaggle Galaxy Zoo ``{GalaxyID}.jpg`` files) as stamps.

Pixels become float32 in [0, 1]: 8-bit values are divided by 255, 16-bit PNG values by 65535. By default
every image is converted to RGB (channels ``["R", "G", "B"]``; a grey image is repeated into the three
channels, an alpha channel is dropped) so that images of mixed modes share one store; ``mode="L"`` gives one
channel ``["L"]``. Unreadable input raises :class:`~pipeline.io.rejects.StampRejected` with reason
``unreadable`` (missing file, I/O error), ``not_image`` (not a JPEG/PNG Pillow can identify) or
``truncated_image`` (the file ends before its pixel data does).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.io.rejects import StampRejected

#: File-name endings read by :func:`read_image` (lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

#: Channel names per output mode.
MODE_CHANNELS = {"RGB": ["R", "G", "B"], "L": ["L"]}

IMAGE_REASONS = {
    "not_image": "the bytes are not an image Pillow can read (JPEG or PNG)",
    "truncated_image": "the image file ends before its pixel data does",
}


@dataclass
class RasterImage:
    """One image as a stamp.

    Attributes:
        pixels: ``(C, H, W)`` float32 in [0, 1].
        mask: ``(C, H, W)`` bool, all False (JPEG/PNG pixels are never blank).
        channels: channel names, length C (``["R", "G", "B"]`` or ``["L"]``).
        format: the file format Pillow found (``"JPEG"``, ``"PNG"``).
        source_mode: the Pillow mode of the file before conversion (``"RGB"``, ``"L"``, ``"I;16"``, ...).
        eight_bit: the file holds 8-bit values, so every pixel is exactly ``k / 255`` (a store may keep it
            as uint8 without loss: :mod:`pipeline.store.pixels`); False for 16- and 32-bit images.
    """

    pixels: np.ndarray
    mask: np.ndarray
    channels: list[str]
    format: str
    source_mode: str
    eight_bit: bool = True


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name ends in one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


#: Pillow modes of images with more than 8 bits per value (scaled by their range, not by 255).
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I", "F")


def _centre(img: Image.Image, side: int | None) -> Image.Image:
    """The centre ``side`` px square of the image (the offsets of :func:`pipeline.prep.center_crop`: an odd
    margin leaves the extra pixel at the bottom/right); the image itself when it is not larger."""
    if side is None or (img.width <= side and img.height <= side) or min(img.size) < side:
        return img
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side))


def _to_array(img: Image.Image, mode: str) -> np.ndarray:
    """Pillow image -> ``(C, H, W)`` float32 in [0, 1] in ``mode``."""
    if img.mode in WIDE_MODES:
        # 16-bit or 32-bit grey: scale by the type's range, then repeat for RGB.
        arr = np.asarray(img, dtype=np.float32)
        scale = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / scale, 0.0, 1.0)
        return np.repeat(grey[None], 3 if mode == "RGB" else 1, axis=0)
    values = np.asarray(img if img.mode == mode else img.convert(mode))  # (H, W[, C]) uint8
    planes = values[None] if values.ndim == 2 else values.transpose(2, 0, 1)
    # one pass into (C, H, W) float32, then k / 255 in float32 (as ``uint8 -> float32, / 255.0`` gives)
    out = np.empty(planes.shape, np.float32)
    out[...] = planes
    out /= np.float32(255.0)
    return out


def read_image(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    mode: str = "RGB",
    centre: int | None = None,
) -> RasterImage:
    """Read a JPEG or PNG file (or its bytes) as a ``(C, H, W)`` float32 stamp in [0, 1].

    Args:
        source: a path, or the file's bytes.
        name: what to call the input in error messages (default: the path, or ``"<bytes>"``).
        mode: ``"RGB"`` (3 channels R, G, B) or ``"L"`` (1 grey channel).
        centre: keep only the centre ``centre`` px square (as :func:`pipeline.prep.center_crop` cuts it),
            before the values become float: an ingest frame that crops it anyway converts half the
            pixels (None, or an image smaller than that in either axis: the whole image).

    Raises:
        StampRejected: ``unreadable``, ``not_image`` or ``truncated_image``, naming the input.
        ValueError: an unknown ``mode``.
    """
    if mode not in MODE_CHANNELS:
        raise ValueError(f"mode must be one of {list(MODE_CHANNELS)}, got {mode!r}")
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        data = bytes(source) if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as err:
        raise StampRejected("unreadable", f"{label}: cannot read the file ({err.strerror or err})") from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                fmt, source_mode = img.format or "unknown", img.mode
                if fmt not in ("JPEG", "PNG", "MPO"):
                    raise StampRejected("not_image", f"{label}: a {fmt} image, expected JPEG or PNG")
                arr = _to_array(_centre(img, centre), mode)
    except StampRejected:
        raise
    except UnidentifiedImageError as err:
        raise StampRejected("not_image", f"{label}: not a JPEG or PNG image ({len(data)} bytes)") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise StampRejected("not_image", f"{label}: image too large to decode safely ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:
        # Pillow reports a short file as OSError("image file is truncated ...") or a broken PNG chunk.
        raise StampRejected(
            "truncated_image", f"{label}: the image data is truncated or corrupt ({err})"
        ) from err
    pixels = np.ascontiguousarray(arr, dtype=np.float32)
    return RasterImage(
        pixels=pixels,
        mask=np.zeros(pixels.shape, bool),
        channels=list(MODE_CHANNELS[mode]),
        format="JPEG" if fmt == "MPO" else fmt,
        source_mode=source_mode,
        eight_bit=source_mode not in WIDE_MODES,
    )
