"""Alert cutout triplets as stamps: decode the three cutouts of a packet and bring them to a stamp size.

Channels are :data:`data_catalogs.alert_schemas.CHANNELS` (``SCIENCE``, ``TEMPLATE``, ``DIFFERENCE``), the
order of the ``ztf`` real-bogus preset, with pixel values as received (ZTF: DN; Rubin: nJy), the difference
stamp as the packet carries it (its sign convention is the row's ``diff_sign``).

ZTF cutouts are 63x63 pixels centred on the candidate, cut shorter where they reach the edge of the readout
quadrant (41x63, 63x53, ...). :func:`conform` pads such a stamp back so that the candidate sits at the centre
again: the missing rows/columns go on the side of the edge, which the candidate's ``xpos``/``ypos`` tell (a
1-based position within :data:`EDGE_HALF` pixels of the low edge means the low side was cut; checked on
the real 41x63, 45x63 and 63x53 samples). Stamps without a known position (Rubin) are padded centred
(:func:`pipeline.store.builder.pad_to_shape`). Padded pixels are 0 and masked. Larger stamps are refused
(``wrong_shape``): cropping is never done silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from data_catalogs.alert_schemas import CUTOUT_FIELDS, ZTF_CUTOUT_SIZE, cutout_bytes
from pipeline.alerts.cutouts import decode_cutout, fits_bytes, simple_primary_layout
from pipeline.io import StampRejected, mask_invalid
from pipeline.store import pad_to_shape

#: A ZTF candidate whose 1-based pixel position is at most this is within half a cutout of the low edge.
EDGE_HALF = ZTF_CUTOUT_SIZE // 2


def _check_shapes(label: str, shapes: list[tuple[int, ...]]) -> None:
    if len(set(shapes)) != 1:
        listed = ", ".join(f"{f} {s[0]}x{s[1]}" for f, s in zip(CUTOUT_FIELDS, shapes, strict=True))
        raise StampRejected("bad_dimensions", f"{label}: cutouts differ in shape ({listed})")


def decode_triplet(
    record: Mapping[str, Any], family: str, label: str, *, fast: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels, mask)`` ``(3, H, W)`` float32 / bool of a packet's science, template, difference cutouts.

    When the three cutouts are simple FITS images (the rule for real packets) their values are stacked and
    masked in one go (:func:`pipeline.io.fits.mask_invalid`); otherwise each goes through
    :func:`pipeline.alerts.cutouts.decode_cutout`. Both give the same result.

    Raises:
        StampRejected: ``no_cutouts`` (a cutout is absent or empty), ``bad_dimensions`` (the three differ
            in shape), or the reasons of :func:`pipeline.alerts.cutouts.decode_cutout`.
    """
    datas, raws, layouts = [], [], []
    for field in CUTOUT_FIELDS:
        data = cutout_bytes(record, family, field)
        if data is None:
            raise StampRejected("no_cutouts", f"{label}: the packet has no {field} stamp")
        datas.append(data)
        if fast:
            raws.append(fits_bytes(data, f"{label}:{field}"))
            layouts.append(simple_primary_layout(raws[-1]))
    if fast and all(layouts):
        _check_shapes(label, [lay[0] for lay in layouts])
        values = np.stack(
            [
                np.frombuffer(raw, dtype=dtype, count=shape[0] * shape[1], offset=offset).reshape(shape)
                for raw, (shape, dtype, offset) in zip(raws, layouts, strict=True)
            ]
        )
        pixels, mask = mask_invalid(values)
        empty = mask.reshape(len(CUTOUT_FIELDS), -1).all(axis=1)
        if empty.any():
            field = CUTOUT_FIELDS[int(np.argmax(empty))]
            raise StampRejected("all_masked", f"{label}:{field}: every pixel is NaN or a blank sentinel")
        return pixels, mask
    decoded = [
        decode_cutout(data, f"{label}:{field}", fast=fast)
        for field, data in zip(CUTOUT_FIELDS, datas, strict=True)
    ]
    _check_shapes(label, [p.shape for p, _ in decoded])
    return np.stack([p for p, _ in decoded]), np.stack([m for _, m in decoded])


def _edge_before(n: int, size: int, pos: float) -> int | None:
    """Rows (or columns) to pad before a ZTF stamp of ``n`` to reach ``size``, from the candidate position."""
    if not math.isfinite(pos) or size < ZTF_CUTOUT_SIZE or n >= ZTF_CUTOUT_SIZE:
        return None if n < size else (size - n) // 2
    cut_low = round(pos) <= EDGE_HALF
    return (ZTF_CUTOUT_SIZE - n if cut_low else 0) + (size - ZTF_CUTOUT_SIZE) // 2


def conform(
    pixels: np.ndarray, mask: np.ndarray, shape: tuple[int, int], row: Mapping[str, Any], label: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """A ``(C, h, w)`` stamp padded to ``(C, H, W)`` with the candidate at the centre (module docstring).

    Args:
        pixels, mask: the stamp and its mask.
        shape: ``(H, W)`` wanted.
        row: the alert's row (``survey``, ``xpos``, ``ypos``) to place edge-cut ZTF stamps.
        label: how to name the stamp in errors.

    Raises:
        StampRejected: ``wrong_shape`` when the stamp is larger than ``shape`` in either axis.
    """
    h, w = pixels.shape[-2:]
    big_h, big_w = shape
    if (h, w) == (big_h, big_w):
        return pixels, mask
    if h > big_h or w > big_w:
        raise StampRejected(
            "wrong_shape", f"{label}: stamp is {h}x{w}, larger than {big_h}x{big_w}; cropping is not done"
        )
    if row.get("survey") != "ztf":
        return pad_to_shape(pixels, mask, (big_h, big_w))
    top = _edge_before(h, big_h, float(row.get("ypos", math.nan)))
    left = _edge_before(w, big_w, float(row.get("xpos", math.nan)))
    if top is None or left is None:
        return pad_to_shape(pixels, mask, (big_h, big_w))
    widths = ((0, 0), (top, big_h - h - top), (left, big_w - w - left))
    return (
        np.pad(pixels, widths, constant_values=0.0).astype(np.float32, copy=False),
        np.pad(mask, widths, constant_values=True),
    )


def edge_cut(survey: np.ndarray, height: np.ndarray, width: np.ndarray) -> np.ndarray:
    """``(B,)`` bool: which stamps were cut by the CCD edge, from their ``survey`` and received
    ``cutout_height``/``cutout_width`` (``(B,)`` each): ZTF cutouts under :data:`ZTF_CUTOUT_SIZE` in either
    axis (the case :func:`conform` pads on the edge's side). Rubin cutouts vary in size by design, so their
    size tells nothing about an edge: never flagged."""
    small = (np.asarray(height) < ZTF_CUTOUT_SIZE) | (np.asarray(width) < ZTF_CUTOUT_SIZE)
    return (np.asarray(survey) == "ztf") & small
