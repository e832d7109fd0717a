"""Self-describing ONNX models: score with ONNX Runtime alone, no torch and no checkpoint.

An ``.onnx`` file written by :func:`pipeline.scoring.onnx_export.export_model` (``stampflow export``) holds
the whole path from stored stamps to model outputs: the graph takes raw stamps ``(B, C, H, W)`` float32
in store units (NaN pixels allowed), fills and normalises them as the checkpoint's
:class:`pipeline.prep.batch.BatchPrep` does, and returns the ``(B, K)`` probabilities (or Galaxy Zoo vote
fractions) that the checkpoint's prediction returns. Its ONNX ``metadata_props`` carry the whole model card
(:data:`CARD_KEY`, one JSON entry) and flat copies of what a broker reads first (:data:`FLAT_KEYS`: model
name and version, input channels, stamp shape, frame, output names, calibration temperature and threshold,
training-data sha256, normalisation), all as text (lists and numbers as JSON).

:class:`OnnxModel` loads such a file (onnxruntime only); :class:`OnnxScorer` is the
:class:`pipeline.scoring.scorer.Scorer` of one, so :func:`pipeline.scoring.scorer.score_store` and the alert
scoring (:mod:`pipeline.alerts`) take it like a checkpoint's model and write the same columns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.scoring.scorer import Scorer

#: Suffix of a model file taken as ONNX (anything else is a checkpoint).
ONNX_SUFFIX = ".onnx"
#: metadata_props key of the whole model card (JSON).
CARD_KEY = "stampflow_model_card"
#: metadata_props key of the batch preparation inside the graph (JSON: preprocess name, fill, keep_mask).
PREPARATION_KEY = "stampflow_preparation"
#: Card fields also written as flat metadata keys (JSON text where not a string).
FLAT_KEYS = (
    "model_name",
    "model_version",
    "task",
    "channels",
    "stamp_shape",
    "frame",
    "output_names",
    "temperature",
    "threshold",
    "training_data_sha256",
    "normalisation",
)


class OnnxModelError(ValueError):
    """An ``.onnx`` file that cannot be used for scoring (unreadable, or without a stampflow model card)."""


def is_onnx_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an ONNX model (by its ``.onnx`` suffix)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


def onnx_metadata(card: Mapping[str, Any], preparation: Mapping[str, Any]) -> dict[str, str]:
    """The ``metadata_props`` of an exported model: flat :data:`FLAT_KEYS` (absent ones left out), the
    preparation and the whole card (:data:`CARD_KEY`)."""
    meta = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key in FLAT_KEYS
        if (value := card.get(key)) is not None
    }
    meta[PREPARATION_KEY] = json.dumps(dict(preparation), sort_keys=True)
    meta[CARD_KEY] = json.dumps(dict(card), sort_keys=True, default=str)
    return meta


@dataclass(frozen=True)
class GraphPrep:
    """The batch preparation done inside the graph, as the scorer's meta reports it."""

    preprocess_name: str | None = None
    fill: str | float = "zero"
    keep_mask: str = "none"
    needs_mask: bool = False


class OnnxModel:
    """An exported model run by ONNX Runtime on CPU: raw stamps ``(B, C, H, W)`` -> ``(B, K)`` float32.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads of the session (None: ONNX Runtime's default).

    Attributes:
        card: the model card from the metadata; prep: :class:`GraphPrep`; metadata: all metadata_props.

    Raises:
        OnnxModelError: the file is missing, not ONNX, or has no stampflow model card.
        ImportError: onnxruntime is not installed.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"no ONNX model at {self.path}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own error types for unreadable models
            raise OnnxModelError(f"{self.path}: not a model ONNX Runtime can load: {err}") from err
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if CARD_KEY not in self.metadata:
            raise OnnxModelError(
                f"{self.path}: no stampflow model card in its metadata (write it with 'stampflow export')"
            )
        self.card: dict[str, Any] = json.loads(self.metadata[CARD_KEY])
        self.prep = GraphPrep(**json.loads(self.metadata.get(PREPARATION_KEY, "{}")))
        self.threads = threads
        self._input = self.session.get_inputs()[0].name

    def predict(self, stamps: np.ndarray) -> np.ndarray:
        """``(B, C, H, W)`` raw stamps (store units, NaN allowed) -> ``(B, K)`` float32 outputs."""
        array = np.ascontiguousarray(stamps, dtype=np.float32)
        return np.asarray(self.session.run(None, {self._input: array})[0], np.float32)


class OnnxScorer(Scorer):
    """The :class:`pipeline.scoring.scorer.Scorer` of an :class:`OnnxModel` (same columns and meta; the
    preparation is inside the graph, so no torch is imported).

    Args:
        model: the loaded ONNX model.
        card: its card (default: the one in its metadata).
    """

    def __init__(self, model: OnnxModel, card: Mapping[str, Any] | None = None):
        self._init_card(card if card is not None else model.card)
        self.model = model
        self.prep = model.prep  # type: ignore[assignment]  # reports what the graph does, for the meta
        self.fast = None

    def prepare(self, stamp_shape: Sequence[int]) -> None:  # type: ignore[override]
        """Nothing to set up: the graph takes any batch size (the stamp shape is checked per batch)."""
        return None

    def _outputs(self, stamps: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        # Masked pixels are stored as 0 and NaN pixels are filled inside the graph; models whose result
        # depends on the mask beyond that are refused at export.
        return self.model.predict(stamps)

    @property
    def inference(self) -> dict[str, Any]:
        """``inference_backend`` = ``onnxruntime``, the model file and its threads."""
        return {
            "inference_backend": "onnxruntime",
            "inference_model": str(self.model.path),
            "inference_threads": self.model.threads,
        }


def load_onnx_scorer(path: str | os.PathLike, threads: int | None = None) -> OnnxScorer:
    """The :class:`OnnxScorer` of an exported ``.onnx`` file (no torch)."""
    return OnnxScorer(OnnxModel(path, threads))
