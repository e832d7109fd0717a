"""Evaluation reports of a scored catalog against labels (docs/design.md, "Reports").

- :mod:`pipeline.evaluation.report`: :func:`report_from_files` writes ``index.html``, ``metrics.json``, PNGs;
  :func:`report_markdown` gives its headline numbers as markdown.
- :mod:`pipeline.evaluation.sections`: each task's part of a report (real-bogus, morphology) and headline.
- :mod:`pipeline.evaluation.metrics`: the numbers (scikit-learn), including the threshold at a target FPR.
- :mod:`pipeline.evaluation.inputs`: a scored catalog and the labels of its rows.
- :mod:`pipeline.evaluation.plots`: confusion matrices, ROC, precision-recall, RMSE, the gallery (PNG).
- :mod:`pipeline.evaluation.html`: the self-contained ``index.html``.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "missed_real_at_fpr": "metrics",
    "rates_at": "metrics",
    "threshold_at_fpr": "metrics",
    "morphology_metrics": "metrics",
    "realbogus_metrics": "metrics",
    "report_from_files": "report",
    "report_markdown": "report",
    "ID_COLUMNS": "inputs",
    "is_store": "inputs",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
