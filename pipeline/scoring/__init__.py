"""Trained models applied to stamps: scored catalogs (docs/design.md, "Scored catalog").

- :mod:`pipeline.scoring.scorer`: :class:`Scorer` (batches -> score columns) and :func:`score_store`.
- :mod:`pipeline.scoring.inputs`: :class:`StampBatch` es of a store.
- :mod:`pipeline.scoring.model_inputs`: stamps checked against the model card (:func:`check_inputs`), and
  fitted to it for scoring (:func:`plan_inputs`: channels reordered by name, the card's frame applied).
- :mod:`pipeline.scoring.heads`: the task heads (real-bogus, morphology): the columns, descriptions and meta
  each task adds; :func:`head_for` picks one by the model card's ``task``.
- :mod:`pipeline.scoring.contract`: :class:`ScoringModel`, what a model must offer the scorer, and
  :func:`model_outputs`, its prediction.
- :mod:`pipeline.scoring.chunks`: row ranges of a store (each scored by :func:`score_store`) and the parts
  joined.
- :mod:`pipeline.scoring.backends`: backend names and the rule ``auto`` follows for small stores.
- :mod:`pipeline.scoring.fast_inference`: the ONNX Runtime fast path, checked against PyTorch.
- :mod:`pipeline.scoring.morphology_classes`: derived morphology classes from the 37 Galaxy Zoo answers.
- :mod:`pipeline.scoring.onnx_model`: self-describing ``.onnx`` models (card in the metadata) scored by ONNX
  Runtime alone (:class:`OnnxModel`, :class:`OnnxScorer`; no torch).
- :mod:`pipeline.scoring.onnx_export`: a checkpoint's model and preparation exported to one (torch).
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "join_parts": "chunks",
    "row_ranges": "chunks",
    "ScoringModel": "contract",
    "model_outputs": "contract",
    "AUTO_ONNX_MIN_STAMPS": "backends",
    "BACKENDS": "backends",
    "backend_for": "backends",
    "EXACT_ATOL": "fast_inference",
    "FastInference": "fast_inference",
    "FastPathError": "fast_inference",
    "InferenceOptions": "fast_inference",
    "MorphologyHead": "heads",
    "RealBogusHead": "heads",
    "TASKS": "heads",
    "TaskHead": "heads",
    "head_for": "heads",
    "BINARY_CLASSES": "morphology_classes",
    "DEFINITIONS": "morphology_classes",
    "MORPH_CLASSES": "morphology_classes",
    "derived_labels": "morphology_classes",
    "derived_probabilities": "morphology_classes",
    "StampBatch": "inputs",
    "iter_store_batches": "inputs",
    "InputPlan": "model_inputs",
    "ModelInputMismatch": "model_inputs",
    "UNKNOWN_FRAME": "model_inputs",
    "check_inputs": "model_inputs",
    "plan_inputs": "model_inputs",
    "plan_store_inputs": "model_inputs",
    "OnnxExportError": "onnx_export",
    "export_model": "onnx_export",
    "OnnxModel": "onnx_model",
    "OnnxModelError": "onnx_model",
    "OnnxScorer": "onnx_model",
    "is_onnx_model": "onnx_model",
    "load_onnx_scorer": "onnx_model",
    "Scorer": "scorer",
    "score_batches": "scorer",
    "probe_stamps": "scorer",
    "score_store": "scorer",
    "scoring_prep": "scorer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
