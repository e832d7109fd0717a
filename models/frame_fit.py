"""Does a morphology model's frame take a store's stamps at the scale they were framed at ingest?

A store ingested with a frame (:class:`pipeline.prep.IngestFrame`, the store attribute ``frame``) holds
stamps already cropped and area-averaged. :class:`models.components.dieleman.DielemanFrame` takes stamps of
its view or frame side as they are; any other side it crops or resamples as if they were raw images or
stamps at the model's pixel scale. On framed stamps that is the wrong scale without an error: a store framed
297 -> 99 px (the ``dieleman2015`` frame of 424 px images) given to the ``small`` preset (a 65 px frame at
the images' own scale) would be centre-cropped to its central 65 px, a third of the field the model should
see. :func:`check_frame_fits` refuses that at the start of training, naming the ingest options that fit.
"""

from __future__ import annotations

from typing import Any

from models.components import DielemanFrame
from pipeline.prep import IngestFrame

#: Side in px of the Kaggle Galaxy Zoo JPEGs: the source side of the example ingest options of a refusal.
KAGGLE_SIDE = 424


def fitting_frame(frame: DielemanFrame, source_side: int = KAGGLE_SIDE) -> IngestFrame:
    """The ingest frame that gives ``frame``'s model frame from raw images of ``source_side`` px: a centre
    crop of ``frame.crop_for(source_side)`` px area-averaged to ``frame.frame_size`` px (what the model
    itself does to a raw image)."""
    return IngestFrame(crop=frame.crop_for(source_side), size=frame.frame_size)


def check_frame_fits(
    frame: DielemanFrame,
    stamp_side: int,
    stamps_frame: IngestFrame | None,
    source: str,
    source_side: int = KAGGLE_SIDE,
) -> None:
    """Refuse framed stamps whose side the model frame would crop or resample again.

    Args:
        frame: the model's frame (``MorphologyModel.net.frame``, from its config).
        stamp_side: side of the stored stamps in px.
        stamps_frame: the stores' ingest frame (None: images as read, which the model frames itself).
        source: the stores, for the message.
        source_side: side of the source images, for the suggested ingest options (default: Kaggle's).

    Raises:
        ValueError: naming the stamps' frame and side, the model's frame and the ingest options that fit.
    """
    if stamps_frame is None or stamp_side in (frame.view_size, frame.frame_size):
        return
    fit = fitting_frame(frame, source_side)
    raise ValueError(
        f"frame: {source} holds stamps of {stamp_side} px framed at ingest as {stamps_frame.describe()}; "
        f"the model takes stamps of its {frame.frame_size} px frame (or {frame.view_size} px view) as they "
        f"are and would crop or resample {stamp_side} px stamps again, at the wrong scale. Ingest the images "
        f"with --frame-crop {fit.crop} --frame-size {fit.size} (for {source_side} px images; --frame-crop is "
        f"round(side x {frame.crop_fraction:.4f} x {frame.frame_size}/{frame.view_size}) for another side), "
        "or without a frame"
    )


def preset_ingest_frame(preset: str, source_side: int = KAGGLE_SIDE, **overrides: Any) -> IngestFrame:
    """The ingest frame of a morphology preset (with ``overrides``) for raw images of ``source_side`` px:
    the crop its model takes of such an image, area-averaged to its frame (e.g. ``small``: 299 -> 65 px,
    ``dieleman2015``: 297 -> 99 px for 424 px images)."""
    from models.components.dieleman import model_frame
    from models.morphology_config import MorphologyConfig

    return fitting_frame(model_frame(MorphologyConfig.from_preset(preset, **overrides)), source_side)
