"""Export a checkpoint's model to a self-describing ``.onnx`` file (read back by
:mod:`pipeline.scoring.onnx_model`, which needs no torch).

The exported graph is the checkpoint's whole scoring path on raw stamps: the card's batch preparation
(:func:`pipeline.scoring.scorer.scoring_prep`: fill of NaN pixels, the named preprocessing) followed by the
model's prediction (:func:`pipeline.scoring.contract.model_outputs`: calibration temperature, softmax or the
Galaxy Zoo tree, test-time augmentation), exported by :func:`pipeline.scoring.fast_inference.export_onnx`
with a dynamic batch axis. Before the file is written, ONNX Runtime's outputs on the probe batch
(:func:`pipeline.scoring.scorer.probe_stamps`) are compared with PyTorch's; a difference above
:data:`EXPORT_ATOL` refuses the export.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.io import atomic_path
from pipeline.prep import BatchPrep
from pipeline.scoring.contract import ScoringModel, model_outputs
from pipeline.scoring.fast_inference import export_onnx
from pipeline.scoring.onnx_model import OnnxModel, onnx_metadata
from pipeline.scoring.scorer import probe_stamps, scoring_prep

#: Largest absolute difference from PyTorch (probabilities) on the probe batch for an export to be written.
EXPORT_ATOL = 1e-5


class OnnxExportError(ValueError):
    """A model that cannot be exported as a self-describing ONNX file (the message says why)."""


class _RawToOutputs(nn.Module):
    """``forward(stamps) = model_outputs(module, prep(stamps))``: raw stamps to outputs, one module."""

    def __init__(self, module: ScoringModel, prep: BatchPrep):
        super().__init__()
        self.module = module
        self.prep = prep

    def forward(self, stamps: Tensor) -> Tensor:
        return model_outputs(self.module, self.prep(stamps, None))


def _card_for_export(module: ScoringModel, card: Mapping[str, Any]) -> dict[str, Any]:
    """The card, with the calibration temperature of the module's buffer when the card has none."""
    out = dict(card)
    temperature = getattr(module, "temperature", None)
    if "temperature" not in out and isinstance(temperature, Tensor) and temperature.numel() == 1:
        out["temperature"] = float(temperature)
    return out


def export_model(module: ScoringModel, card: Mapping[str, Any], out: str | os.PathLike) -> dict[str, Any]:
    """Write ``module`` (with its ``card``) to ``out`` as a self-describing ONNX file.

    Returns:
        ``onnx`` (the path), ``model_name``, ``model_version``, ``input_shape`` (``[None, C, H, W]``),
        ``outputs`` (K) and ``max_abs_diff`` (ONNX Runtime against PyTorch on the probe batch).

    Raises:
        OnnxExportError: the card lacks ``channels``/``stamp_shape``, the model uses the store's mask
            (``fill`` other than zero, ``keep_mask``), it does not export, or its export differs from
            PyTorch by more than :data:`EXPORT_ATOL`.
    """
    import onnx

    card = _card_for_export(module, card)
    channels, hw = card.get("channels"), card.get("stamp_shape")
    if not channels or not hw or len(hw) != 2:
        raise OnnxExportError("the model card has no channels and stamp_shape: the input cannot be described")
    prep = scoring_prep(module, card)
    if prep.needs_mask:
        raise OnnxExportError(
            f"the model uses the store's mask (fill={prep.fill!r}, keep_mask={prep.keep_mask!r}): "
            "not exportable yet (the graph takes the stamps only)"
        )
    net = _RawToOutputs(module.eval(), prep).eval()
    raw = torch.from_numpy(probe_stamps((len(channels), int(hw[0]), int(hw[1]))))
    try:
        proto = onnx.load_from_string(export_onnx(net, raw))
    except Exception as err:  # the exporter raises many types
        raise OnnxExportError(f"the model does not export: {err.__class__.__name__}: {err}") from err
    preparation = {"preprocess_name": prep.preprocess_name, "fill": prep.fill, "keep_mask": prep.keep_mask}
    for key, value in onnx_metadata(card, preparation).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_bytes(proto.SerializeToString())
        with torch.inference_mode():
            expected = net(raw).float().numpy()
        diff = float(np.max(np.abs(OnnxModel(tmp).predict(raw.numpy()) - expected)))
        if not diff <= EXPORT_ATOL:  # NaN counts as a mismatch
            raise OnnxExportError(
                f"ONNX Runtime differs from PyTorch by {diff:.3g} (allowed {EXPORT_ATOL:g})"
            )
    return {
        "onnx": str(out),
        "model_name": card.get("model_name", ""),
        "model_version": card.get("model_version", ""),
        "input_shape": [None, len(channels), int(hw[0]), int(hw[1])],
        "outputs": len(card.get("output_names") or []),
        "max_abs_diff": diff,
    }
