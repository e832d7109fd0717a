"""Do a store's stamps fit a model card, and how are they made to: channels by name and the ingest frame.

The model card records what the model was trained on: ``channels`` (names, in order), ``stamp_shape``
``[H, W]`` in pixels and ``frame`` (the ingest frame of the training stores,
:class:`pipeline.prep.IngestFrame` as ``{"crop", "size"}``, or None for images as read; cards written
before frames were recorded have no ``frame`` field, and then frames are not checked).

- :func:`check_inputs`: the strict check, for callers that feed stored stamps to the model as they are
  (calibration, fine-tuning, the nightly pre-check): other channels (or another order), another stamp size
  or, when the stamps' frame is given, another frame is a :class:`ModelInputMismatch`.
- :func:`plan_inputs`: the scorer's check. It also accepts, and plans (:class:`InputPlan`):

  - channels that are the card's in another order (an SDSS colour JPEG store has ``i, r, g`` where a
    model trained on simulated ``g, r, i`` expects those): the planes are reordered by name;
  - stamps ingested without a frame (e.g. raw 424 px Galaxy Zoo JPEGs) when they are at least as large as
    the card frame's crop: the card's frame is applied in memory with :meth:`IngestFrame.apply`, the
    function ingest uses, so the scores equal those of a store ingested with that frame.

  A store ingested with another frame is refused naming both frames and the ingest options that fix it
  (:func:`pipeline.prep.frame_mismatch`). :func:`plan_store_inputs` plans for an open store (its frame
  attribute) and logs each change; :meth:`InputPlan.apply` makes each batch what the model takes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pipeline.prep import IngestFrame, frame_from, frame_mismatch, store_frame
from pipeline.scoring.inputs import StampBatch
from pipeline.store import StampStore

log = logging.getLogger(__name__)

#: ``stamps_frame`` default: the caller does not know the stamps' frame, so frames are not compared.
UNKNOWN_FRAME = "unknown"


class ModelInputMismatch(ValueError):
    """The model card does not match the stamps (channels, stamp size or frame); the message names both."""


@dataclass(frozen=True)
class InputPlan:
    """How stored stamps become the stamps the model was trained on (nothing to do by default).

    Attributes:
        order: for each of the model's channels, its index in the stored channels (None: as stored).
        frame: the card's ingest frame, applied in memory to stamps stored without one (None: none).
        notes: one line per change, for the log and the catalog meta.
    """

    order: tuple[int, ...] | None = None
    frame: IngestFrame | None = None
    notes: tuple[str, ...] = ()

    def stamp_shape(self, stored: Sequence[int]) -> tuple[int, int, int]:
        """``(C, H, W)`` of the model's stamps for stored stamps of ``stored`` ``(C, H, W)``."""
        c, h, w = (int(v) for v in stored)
        return (c, self.frame.size, self.frame.size) if self.frame is not None else (c, h, w)

    def apply(self, batch: StampBatch) -> StampBatch:
        """The batch with its channels reordered and the frame applied (the same batch when nothing to do).

        A framed mask marks a framed pixel whose area average includes any masked pixel.
        """
        stamps, mask = batch.stamps, batch.mask
        if self.order is not None:
            stamps = stamps[:, list(self.order)]
            mask = mask[:, list(self.order)] if mask is not None else None
        if self.frame is not None:
            stamps = self.frame.apply(stamps)
            mask = self.frame.apply_mask(mask) if mask is not None else None
        if stamps is batch.stamps:
            return batch
        return replace(batch, stamps=np.ascontiguousarray(stamps), mask=mask)


def _model_name(card: Mapping[str, Any]) -> str:
    return f"model {card.get('model_name', '?')} {card.get('model_version', '')}".strip()


def _channel_order(card_channels: Sequence[str], channels: Sequence[str]) -> tuple[int, ...] | None:
    """Index in ``channels`` of each card channel, when they are the same distinct names in another order."""
    card_list, stored = [str(c) for c in card_channels], [str(c) for c in channels]
    if card_list == stored or len(set(stored)) != len(stored) or sorted(card_list) != sorted(stored):
        return None
    return tuple(stored.index(c) for c in card_list)


def _channel_problem(
    card: Mapping[str, Any], channels: Sequence[str] | None, n_channels: int | None, source: str
) -> str | None:
    card_channels = card.get("channels")
    if card_channels is not None and channels is not None and list(card_channels) != list(channels):
        return f"channels: the model expects {list(card_channels)}, {source} has {list(channels)}"
    if card_channels is not None and n_channels is not None and len(card_channels) != n_channels:
        return f"channels: the model expects {len(card_channels)} {list(card_channels)}, {source} has {n_channels}"
    if card_channels is None and card.get("input_channels") not in (None, n_channels) and n_channels:
        return f"channels: the model expects {card['input_channels']}, {source} has {n_channels}"
    return None


def _size_problem(card: Mapping[str, Any], hw: tuple[int, int], source: str) -> str | None:
    card_shape = card.get("stamp_shape")
    if card_shape is None or tuple(int(v) for v in card_shape) == hw:
        return None
    return (
        f"stamp size: the model expects {card_shape[0]}x{card_shape[1]} px, {source} has {hw[0]}x{hw[1]} px"
    )


def _frame_plan(
    card: Mapping[str, Any], stamps_frame: Any, hw: tuple[int, int], source: str, adapt: bool
) -> tuple[IngestFrame | None, str | None]:
    """(frame to apply in memory, problem) of the card's frame against the stamps'."""
    if "frame" not in card or isinstance(stamps_frame, str):  # an old card, or frames not known
        return None, None
    model_frame = frame_from(card["frame"])
    problem = frame_mismatch(model_frame, stamps_frame, source)
    if problem is None:
        return None, None
    if adapt and model_frame is not None and stamps_frame is None and min(hw) >= model_frame.crop:
        return model_frame, None
    if model_frame is not None and stamps_frame is None:
        problem += f" (stamps of {hw[0]}x{hw[1]} px are smaller than the {model_frame.crop} px crop)"
    return None, problem


def plan_inputs(
    card: Mapping[str, Any],
    channels: Sequence[str] | None,
    stamp_shape: Sequence[int],
    stamps_frame: IngestFrame | str | None,
    source: str,
    *,
    adapt: bool = True,
) -> InputPlan:
    """Check stamps against the model card; with ``adapt``, plan the reordering and framing that fit them.

    Args:
        card: the model card: ``channels`` (names, in order), else ``input_channels`` (a count),
            ``stamp_shape`` ``[H, W]`` and ``frame``; what the card lacks is not checked.
        channels: channel names of the stamps, or None when only their number is known (then
            ``stamp_shape`` must be ``(C, H, W)``).
        stamp_shape: ``(C, H, W)`` or ``(H, W)`` of the stamps, in pixels.
        stamps_frame: the stamps' ingest frame (:func:`pipeline.prep.store_frame` of a store; None: images
            as read); :data:`UNKNOWN_FRAME`: not known, frames are not compared.
        source: what the stamps are, for the message (e.g. ``"store runs/a/stamps.h5"``).
        adapt: plan channel reordering by name and in-memory framing (False: refuse them, as
            :func:`check_inputs`).

    Raises:
        ModelInputMismatch: naming the model's and the stamps' channels, stamp size and/or frame, and
            for frames the ingest options that fix it.
    """
    hw = (int(stamp_shape[-2]), int(stamp_shape[-1]))
    n_channels = (
        len(channels) if channels is not None else (int(stamp_shape[0]) if len(stamp_shape) == 3 else None)
    )
    order = (
        _channel_order(card["channels"], channels) if adapt and card.get("channels") and channels else None
    )
    frame, frame_problem = _frame_plan(card, stamps_frame, hw, source, adapt)
    model_channels = [channels[i] for i in order] if order is not None else channels
    model_hw = (frame.size, frame.size) if frame is not None else hw
    problems = [
        p
        for p in (
            frame_problem,
            _channel_problem(card, model_channels, n_channels, source),
            _size_problem(card, model_hw, source),
        )
        if p is not None
    ]
    if problems:
        raise ModelInputMismatch(f"{_model_name(card)} does not fit {source}: " + "; ".join(problems))
    notes = []
    if order is not None:
        notes.append(
            f"channels reordered by name: {source} has {list(channels or [])}, "
            f"the model takes {list(card['channels'])}"
        )
    if frame is not None:
        notes.append(
            f"frame applied in memory: {source} has no ingest frame, the model was trained on stamps "
            f"framed as {frame.describe()} ({hw[0]}x{hw[1]} -> {frame.size}x{frame.size} px)"
        )
    return InputPlan(order, frame, tuple(notes))


def check_inputs(
    card: Mapping[str, Any],
    channels: Sequence[str] | None,
    stamp_shape: Sequence[int],
    source: str,
    *,
    stamps_frame: IngestFrame | str | None = UNKNOWN_FRAME,
) -> None:
    """Refuse stamps that differ from what the model was trained on (:func:`plan_inputs` without ``adapt``:
    the stamps go to the model as stored, so channels must be in the card's order and frames equal;
    ``stamps_frame`` defaults to :data:`UNKNOWN_FRAME`, frames not compared).

    Raises:
        ModelInputMismatch: naming the model's and the stamps' channels, stamp size and/or frame.
    """
    plan_inputs(card, channels, stamp_shape, stamps_frame, source, adapt=False)


def plan_store_inputs(card: Mapping[str, Any], store: StampStore) -> InputPlan:
    """:func:`plan_inputs` for an open store (its channels, stamp size and frame attribute); each change
    planned is logged at INFO.

    Raises:
        ModelInputMismatch: as :func:`plan_inputs`, naming the store.
    """
    source = f"store {store.path}"
    plan = plan_inputs(card, store.channels, store.stamp_shape, store_frame(store.attrs), source)
    for note in plan.notes:
        log.info("scoring with model %s: %s", card.get("model_name", "?"), note)
    return plan
