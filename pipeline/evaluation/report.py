"""Evaluation reports of a scored catalog against labels (docs/design.md, "Reports").

A report is a folder with:

- ``index.html``: one self-contained page with everything below (:mod:`pipeline.evaluation.html`);
- ``metrics.json``: every number of the page, for machines (:mod:`pipeline.evaluation.metrics`);
  ``summary.md``: the headline numbers as markdown (what the flows publish as a Prefect artifact);
- PNGs (:mod:`pipeline.evaluation.plots`, per task :mod:`pipeline.evaluation.sections`): raw and row-normalised confusion matrices; for **real-bogus** the ROC
  and precision-recall curves with the operating point (the published ``label``, i.e. ``rb >= threshold``)
  marked; for **morphology** the RMSE per Galaxy Zoo question and the confusion matrices of the derived
  classes (true majority vote against predicted, :mod:`pipeline.scoring.morphology_classes`); ``gallery.png``, the
  most confident mistakes as stamp thumbnails read from the stamp store.

Inputs are read by :mod:`pipeline.evaluation.inputs`. The scored catalog is read whole: reports are for
labelled evaluation sets, not for nightly catalogs of millions of rows.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.evaluation.html import table_html, write_index
from pipeline.evaluation.inputs import is_store, load_truth, read_scored, task_of
from pipeline.evaluation.sections import TASK_SECTIONS
from pipeline.io import write_text

log = logging.getLogger(__name__)

#: Stamps in the gallery of most confident mistakes.
N_GALLERY = 12
#: File names of the figures a report writes (removed before a rerun into the same folder).
FIGURE_PATTERNS = (
    "confusion_*.png",
    "roc.png",
    "precision_recall.png",
    "rmse_per_question.png",
    "gallery.png",
)


@dataclass
class ReportResult:
    """What :func:`write_report` wrote."""

    out_dir: str
    index_html: str
    metrics_json: str
    task: str
    n: int
    files: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ report
def _model_rows(meta: Mapping[str, Any], sources: Mapping[str, Any]) -> list[tuple[str, Any]]:
    keys = (
        "task",
        "model_name",
        "model_version",
        "model_sha256",
        "architecture",
        "training_data_sha256",
        "threshold",
        "preprocess",
        "input",
        "input_sha256",
        "config_hash",
        "code_version",
    )
    rows = [(k, meta[k]) for k in keys if meta.get(k) not in (None, "")]
    return rows + [(k, v) for k, v in sources.items() if v is not None]


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # strict JSON has no NaN
    return value


def write_report(
    scored: pd.DataFrame,
    truth: np.ndarray,
    out_dir: str | os.PathLike,
    *,
    meta: Mapping[str, Any] | None = None,
    store: str | os.PathLike | None = None,
    n_gallery: int = N_GALLERY,
    sources: Mapping[str, Any] | None = None,
) -> ReportResult:
    """Write the report folder of a scored catalog against its labels.

    Args:
        scored: the scored catalog (:mod:`pipeline.scoring.scorer` columns), N rows.
        truth: ``(N,)`` 0/1 (real-bogus) or ``(N, 37)`` cumulative fractions (morphology), row-aligned.
        out_dir: the report folder (created).
        meta: the catalog meta (task, model name/version/checksum, threshold, input store...).
        store: stamp store for the gallery thumbnails (default: the catalog's ``input`` when it exists).
        n_gallery: stamps in the gallery.
        sources: extra provenance rows for the page and metrics.json (e.g. the file names read).
    """
    meta = dict(meta or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for pattern in FIGURE_PATTERNS:  # a rerun into the same folder leaves no figure of the last run behind
        for old in out.glob(pattern):
            old.unlink()
    task = task_of(scored, meta)
    if len(truth) != len(scored):
        raise ValueError(f"{len(truth)} labels for {len(scored)} scored rows")
    store = store if store is not None else meta.get("input")
    metrics, sections, files = TASK_SECTIONS[task].build(scored, truth, meta, out, store, n_gallery)
    sources = dict(sources or {})
    sections.append(("Model and data", table_html(("item", "value"), _model_rows(meta, sources))))
    model = {k: meta.get(k) for k in ("model_name", "model_version", "model_sha256", "architecture")}
    document = {
        "task": task,
        "n": len(scored),
        "model": model,
        "sources": sources,
        "metrics": metrics,
        "files": sorted([*files, "index.html", "metrics.json", "summary.md"]),
    }
    metrics_path = out / "metrics.json"
    write_text(metrics_path, json.dumps(_json_safe(document), indent=2, sort_keys=True) + "\n")
    title = f"stampflow {task} report: {meta.get('model_name', '')} {meta.get('model_version', '')}".strip()
    index = write_index(out, title, sections, intro=f'<p class="note">{len(scored)} labelled stamps.</p>')
    result = ReportResult(
        str(out), str(index), str(metrics_path), task, len(scored), document["files"], metrics
    )
    write_text(out / "summary.md", report_markdown(result))
    return result


def report_markdown(result: ReportResult) -> str:
    """The report's headline numbers as markdown (for a Prefect markdown artifact and ``summary.md``)."""
    rows = TASK_SECTIONS[result.task].headline(result.metrics)
    lines = [f"# {result.task} report ({result.n} stamps)", "", "| quantity | value |", "|---|---|"]
    lines += [
        f"| {k} | {'n/a' if v is None else f'{v:.4g}' if isinstance(v, float) else v} |" for k, v in rows
    ]
    lines += ["", f"Full report: {result.index_html}", ""]
    return "\n".join(lines)


def report_from_files(
    scored_path: str | os.PathLike,
    labels: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    store: str | os.PathLike | None = None,
    on: str | None = None,
    n_gallery: int = N_GALLERY,
) -> ReportResult:
    """Read a scored catalog and its labels, and write the report folder (:func:`write_report`).

    The gallery reads stamps from ``store``, else from ``labels`` when it is a stamp store, else from the
    store recorded in the catalog's meta (``input``).
    """
    scored, meta = read_scored(scored_path)
    task = task_of(scored, meta)
    truth = load_truth(scored, task, labels, on)
    if store is None and is_store(labels):
        store = labels
    sources = {"scored_catalog": str(scored_path), "labels": str(labels)}
    return write_report(scored, truth, out_dir, meta=meta, store=store, n_gallery=n_gallery, sources=sources)
