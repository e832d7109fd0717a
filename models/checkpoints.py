"""Checkpoints that can never run code, with a model card beside them.

A checkpoint is a Lightning-style ``.ckpt`` (a dict with ``state_dict``, ``hyper_parameters`` and
``model_card``) plus ``model_card.json`` in the same folder. The card says what the model expects and what
it produced: task, architecture preset, channel order, stamp size, normalisation, output (class or answer)
names, training data hash, seed, metrics, and task extras such as the real-bogus threshold.

:func:`load_checkpoint` reads with ``torch.load(weights_only=True)`` (only tensors and plain containers are
unpickled, so a checkpoint cannot execute code) and rebuilds the module from :data:`MODEL_CLASSES` and the
saved hyper-parameters.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline import __version__
from pipeline.io import atomic_path, write_text

#: task -> "module:Class" of the LightningModule that implements it.
MODEL_CLASSES = {
    "morphology": "models.morphology:MorphologyModel",
    "realbogus": "models.realbogus:RealBogusModel",
}
CARD_NAME = "model_card.json"
REQUIRED_CARD_FIELDS = ("task", "model_name", "model_version", "architecture", "channels", "output_names")


class CheckpointError(ValueError):
    """A checkpoint or its model card is missing, unreadable or inconsistent (the message says which)."""


def model_class(task: str) -> type[nn.Module]:
    """The LightningModule class registered for ``task``."""
    if task not in MODEL_CLASSES:
        raise CheckpointError(f"unknown task {task!r}; known: {sorted(MODEL_CLASSES)}")
    module_name, cls_name = MODEL_CLASSES[task].split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def card_path(ckpt_path: str | os.PathLike) -> Path:
    """Where the model card of a checkpoint lives: ``model_card.json`` beside it."""
    return Path(ckpt_path).with_name(CARD_NAME)


def _plain(value: Any) -> Any:
    """Plain strict-JSON values: tuples -> lists, numpy scalars -> Python, NaN/inf -> None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 over a module's parameters and buffers (names, shapes and bytes), for the card and catalogs."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(module: nn.Module, path: str | os.PathLike, card: Mapping[str, Any]) -> Path:
    """Write ``path`` (.ckpt) and ``model_card.json`` beside it; returns the checkpoint path.

    The card gets ``weights_sha256`` and ``created_by`` added; it must hold :data:`REQUIRED_CARD_FIELDS`.
    """
    path = Path(path)
    missing = [f for f in REQUIRED_CARD_FIELDS if f not in card]
    if missing:
        raise CheckpointError(f"model card for {path} lacks {missing}")
    full_card = _plain(
        {**card, "weights_sha256": state_dict_sha256(module), "created_by": f"stampflow {__version__}"}
    )
    hparams = _plain(dict(getattr(module, "hparams", {})))
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "hyper_parameters": hparams,
        "model_card": json.dumps(full_card),
        "stampflow_version": __version__,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    write_text(card_path(path), json.dumps(full_card, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def read_card(ckpt_path: str | os.PathLike) -> dict[str, Any]:
    """The model card beside a checkpoint (``model_card.json``)."""
    path = card_path(ckpt_path)
    if not path.exists():
        raise CheckpointError(f"{ckpt_path}: no {CARD_NAME} beside it")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Rebuild a model from a checkpoint, safely; returns ``(module in eval mode, model card)``.

    Raises:
        CheckpointError: missing file, a payload that is not plain tensors/containers (refused by
            ``weights_only``), an unknown task, or weights that do not fit the rebuilt module.
    """
    path = Path(path)
    if not path.exists():
        from models.pretrained import shipped_models  # a mistyped shipped name gets the list of names

        raise CheckpointError(
            f"no checkpoint at {path} (shipped models: {', '.join(shipped_models()) or 'none'})"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # UnpicklingError for code objects, RuntimeError for corrupt zips
        raise CheckpointError(
            f"{path}: refused or unreadable by torch.load(weights_only=True): {err}"
        ) from err
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(f"{path}: not a stampflow checkpoint (no state_dict)")
    card = json.loads(payload["model_card"]) if "model_card" in payload else read_card(path)
    module = model_class(card["task"])(**payload.get("hyper_parameters", {}))
    try:
        module.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit {type(module).__name__}: {err}") from err
    module.eval()
    return module, card
