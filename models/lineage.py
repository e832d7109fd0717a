"""Fine-tuning: a new model that starts from a parent checkpoint's weights, and the lineage its card records.

:func:`read_parent` loads the parent (``torch.load(weights_only=True)``, :func:`models.checkpoints.load_checkpoint`);
:meth:`Parent.model_overrides` gives the child the parent's settings (so the child is the same network, and
trains with the parent's optimiser and threshold rule unless overridden); :meth:`Parent.check_fits` refuses
a child of another task or preset, or training stores of other channels or stamp size, naming both sides;
:meth:`Parent.copy_weights_into` copies every parameter and buffer but resets the calibration temperature
to 1 (the child calibrates on its own validation split, as any training run does: nothing of the parent's
calibration is inherited silently). :meth:`Parent.lineage` is the child card's ``init_from``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.checkpoints import CheckpointError, load_checkpoint
from pipeline.scoring import ModelInputMismatch, check_inputs


@dataclass(frozen=True)
class Parent:
    """A parent checkpoint: its path, its module (eval mode) and its model card."""

    path: Path
    module: nn.Module
    card: dict[str, Any]

    @property
    def name(self) -> str:
        """``model_name model_version`` of the parent, for messages."""
        return f"{self.card.get('model_name', '?')} {self.card.get('model_version', '')}".strip()

    def model_overrides(self, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        """The parent's resolved settings (its saved hyper-parameters but the preset) updated with
        ``overrides``: the child is built as the same network."""
        hparams = {k: v for k, v in dict(getattr(self.module, "hparams", {})).items() if k != "preset"}
        return {**hparams, **(overrides or {})}

    def check_fits(
        self, task: str, preset: str, channels: Sequence[str], stamp_shape: Sequence[int], stores: str
    ) -> None:
        """Refuse a child of another task or preset, or training stores of other channels or stamp size.

        Raises:
            CheckpointError: naming the parent's and the child's task, preset, channels or stamp size.
        """
        card = self.card
        if card.get("task") != task or card.get("architecture") != preset:
            raise CheckpointError(
                f"--init-from {self.path} ({self.name}) is a {card.get('task')!r} model of preset "
                f"{card.get('architecture')!r}; this run trains a {task!r} model of preset {preset!r}: "
                "fine-tuning needs the same task and preset"
            )
        try:
            check_inputs(card, channels, stamp_shape, f"the training stores {stores}")
        except ModelInputMismatch as err:
            raise CheckpointError(f"--init-from {self.path}: {err}") from err

    def copy_weights_into(self, model: nn.Module) -> None:
        """Copy the parent's parameters and buffers into ``model``; its ``temperature`` buffer (if any) is
        reset to 1.

        Raises:
            CheckpointError: the weights do not fit ``model`` (another network), naming both.
        """
        try:
            model.load_state_dict(self.module.state_dict())
        except RuntimeError as err:
            raise CheckpointError(
                f"--init-from {self.path} ({self.name}): its weights do not fit the {type(model).__name__} "
                f"of this run: {err}"
            ) from err
        temperature = getattr(model, "temperature", None)
        if isinstance(temperature, torch.Tensor):
            temperature.fill_(1.0)

    def lineage(self) -> dict[str, Any]:
        """The child card's ``init_from``: the parent's checkpoint path, name, version and weights sha256."""
        card = self.card
        return {
            "checkpoint": str(self.path),
            "model_name": card.get("model_name"),
            "model_version": card.get("model_version"),
            "weights_sha256": card.get("weights_sha256"),
        }


def read_parent(path: str | os.PathLike) -> Parent:
    """Load the parent checkpoint at ``path`` (with ``weights_only=True``).

    Raises:
        CheckpointError: missing, unreadable or refused checkpoint.
    """
    module, card = load_checkpoint(path)
    return Parent(Path(path), module, card)
