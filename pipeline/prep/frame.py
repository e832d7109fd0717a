"""The ingest frame: a centre crop of each image, area-averaged to a smaller side, done once at ingest.

Dieleman et al. (2015) cropped the central 207 px of each 424 px Galaxy Zoo image and downsampled it 3x to
69 px before training; doing that once at ingest (instead of on every training step) makes the store about
18x smaller and training reads only the pixels the model sees. The frame a store was made with is a root
attribute of the store (:data:`FRAME_ATTR`, JSON) and a field of the model card of every model trained on
it, so that scoring applies the same frame or refuses a store made with another one
(:func:`frame_mismatch`).

``IngestFrame(crop=297, size=99)`` is the frame of the ``dieleman2015`` preset on 424 px images (its
99 px model frame: the central 69 px are exactly Dieleman's 207 px crop downsampled 3x).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Root attribute of a stamp store holding its frame as JSON (absent: stamps as the source gave them).
FRAME_ATTR = "frame"


@dataclass(frozen=True)
class IngestFrame:
    """Centre crop of ``crop`` px, area-averaged to ``size`` px (both in pixels of the source image).

    Attributes:
        crop: side of the centre crop in source pixels (``crop >= size``; an odd margin leaves the extra
            pixel at the bottom/right, as :func:`pipeline.prep.center_crop`).
        size: side of the stored stamp in pixels (a ``crop / size`` block average when it divides).
    """

    crop: int
    size: int

    def __post_init__(self) -> None:
        if not 0 < self.size <= self.crop:
            raise ValueError(f"frame needs 0 < size <= crop, got crop {self.crop} px and size {self.size} px")

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """``(C, S, S)`` or ``(N, C, S, S)`` float pixels -> ``(..., C, size, size)`` float32.

        Raises ValueError naming both sides when the image is smaller than the crop.
        """
        from pipeline.prep.preprocess import crop_and_downsample  # torch only when a frame is applied

        x = np.asarray(pixels, dtype=np.float32)
        side = min(x.shape[-2:])
        if side < self.crop:
            raise ValueError(
                f"image of {x.shape[-2]}x{x.shape[-1]} px is smaller than the frame's crop of {self.crop} px"
            )
        batch = x[None] if x.ndim == 3 else x
        out = crop_and_downsample(batch, self.crop, self.size).numpy()
        return out[0] if x.ndim == 3 else out

    def apply_mask(self, mask: np.ndarray) -> np.ndarray:
        """``(C, S, S)`` or ``(N, C, S, S)`` bool mask -> the framed bool mask: a framed pixel is masked when
        any pixel its area average includes is (an all-False mask is framed without the average)."""
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            shape = (*m.shape[:-2], self.size, self.size)
            return np.zeros(shape, bool)
        return self.apply(m.astype(np.float32)) > 0

    def to_attr(self) -> str:
        """The JSON value of the store attribute :data:`FRAME_ATTR`."""
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        """One line for messages and model cards."""
        return f"centre {self.crop} px area-averaged to {self.size} px"


def frame_from(value: Any) -> IngestFrame | None:
    """The frame recorded in a store attribute or a model card field (JSON string, dict or None)."""
    if value is None or value == "":
        return None
    if isinstance(value, IngestFrame):
        return value
    data = json.loads(value) if isinstance(value, (str, bytes)) else dict(value)
    return IngestFrame(crop=int(data["crop"]), size=int(data["size"]))


def store_frame(attrs: Mapping[str, Any]) -> IngestFrame | None:
    """The frame of a store from its root attributes (None: stamps as the source gave them)."""
    return frame_from(attrs.get(FRAME_ATTR))


def describe_frame(frame: IngestFrame | None) -> str:
    """``frame.describe()``, or ``no ingest frame`` for None."""
    return frame.describe() if frame is not None else "no ingest frame (images as read)"


def frame_mismatch(
    model_frame: IngestFrame | None, stamps_frame: IngestFrame | None, source: str
) -> str | None:
    """None when the frames agree, else one sentence naming both and the ingest options that fix it."""
    if model_frame == stamps_frame:
        return None
    fix = (
        f"ingest with --frame-crop {model_frame.crop} --frame-size {model_frame.size}"
        if model_frame is not None
        else "ingest without --frame-crop/--frame-size"
    )
    return (
        f"frame: the model was trained on stamps framed as {describe_frame(model_frame)}, "
        f"{source} has {describe_frame(stamps_frame)}; {fix}"
    )
