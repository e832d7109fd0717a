"""Trained models applied to stamps: scored catalogs (docs/design.md, "Scored catalog").

- :mod:`pipeline.scoring.scorer`: :class:`Scorer` (batches -> score columns) and :func:`score_store`.
- :mod:`pipeline.scoring.chunks`: a store scored in row ranges and the parts joined.
- :mod:`pipeline.scoring.fast_inference`: the ONNX Runtime fast path, checked against PyTorch.
- :mod:`pipeline.scoring.morphology_classes`: derived morphology classes from the 37 Galaxy Zoo answers.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "join_parts": "chunks",
    "row_ranges": "chunks",
    "score_rows": "chunks",
    "EXACT_ATOL": "fast_inference",
    "FastInference": "fast_inference",
    "FastPathError": "fast_inference",
    "InferenceOptions": "fast_inference",
    "model_outputs": "fast_inference",
    "BINARY_CLASSES": "morphology_classes",
    "DEFINITIONS": "morphology_classes",
    "MORPH_CLASSES": "morphology_classes",
    "derived_labels": "morphology_classes",
    "derived_probabilities": "morphology_classes",
    "ModelInputMismatch": "scorer",
    "Scorer": "scorer",
    "StampBatch": "scorer",
    "score_batches": "scorer",
    "score_store": "scorer",
    "scoring_prep": "scorer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
