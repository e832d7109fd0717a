"""Models that ship with stampflow, resolved by name: ``stampflow alerts score FOLDER --model ztf`` needs no
training step (as braai's and zoobot's published weights do).

Each shipped model is a folder ``models/pretrained/<name>/`` holding ``model.ckpt`` and ``model_card.json``
(the same contract as any checkpoint: :mod:`models.checkpoints`); its card says how it was trained (the
``training_command`` field) and its real-data metrics. ``stampflow models`` lists them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: Where the shipped model folders live (package data).
SHIPPED_DIR = Path(__file__).resolve().parent
CHECKPOINT_NAME = "model.ckpt"
CARD_NAME = "model_card.json"


class UnknownModel(ValueError):
    """A ``--model`` that is neither an existing checkpoint file nor the name of a shipped model."""


def shipped_models() -> dict[str, Path]:
    """Name -> checkpoint path of every model shipped in :data:`SHIPPED_DIR` (sorted by name)."""
    return {
        folder.name: folder / CHECKPOINT_NAME
        for folder in sorted(SHIPPED_DIR.iterdir())
        if (folder / CHECKPOINT_NAME).is_file() and (folder / CARD_NAME).is_file()
    }


def resolve_checkpoint(model: str | os.PathLike) -> Path:
    """The checkpoint that ``model`` names: an existing path as it is, else a shipped model's name.

    Raises:
        UnknownModel: neither; the message lists the shipped names.
    """
    path = Path(model)
    if path.exists():
        return path
    shipped = shipped_models()
    if str(model) in shipped:
        return shipped[str(model)]
    names = ", ".join(shipped) or "none"
    raise UnknownModel(f"{model}: no such checkpoint file, and not a shipped model (shipped: {names})")


def describe_shipped() -> list[dict[str, Any]]:
    """One row per shipped model: name, checkpoint, task, preset, version, threshold and the card's
    ``real_data_metrics`` (what ``stampflow models`` prints)."""
    rows = []
    for name, ckpt in shipped_models().items():
        card = json.loads((ckpt.parent / CARD_NAME).read_text())
        rows.append(
            {
                "name": name,
                "checkpoint": str(ckpt),
                "task": card.get("task"),
                "preset": card.get("preset") or card.get("architecture"),  # morphology cards: architecture
                "model_name": card.get("model_name"),
                "model_version": card.get("model_version"),
                "threshold": card.get("threshold"),
                "real_data_metrics": card.get("real_data_metrics", {}),
                "training_command": card.get("training_command"),
                "size_bytes": ckpt.stat().st_size,
            }
        )
    return rows
