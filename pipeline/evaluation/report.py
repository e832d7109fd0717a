"""Evaluation reports of a scored catalog against labels (docs/design.md, "Reports").

A report is a folder with:

- ``index.html``: one self-contained page with everything below (:mod:`pipeline.evaluation.html`);
- ``metrics.json``: every number of the page, for machines (:mod:`pipeline.evaluation.metrics`);
  ``summary.md``: the headline numbers as markdown (what the flows publish as a Prefect artifact);
- PNGs (:mod:`pipeline.evaluation.plots`): raw and row-normalised confusion matrices; for **real-bogus** the ROC
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

from data_catalogs.galaxy_zoo import ANSWER_LABELS, QUESTION_SLICES
from pipeline.evaluation import plots
from pipeline.evaluation.html import esc, figure_html, table_html, write_index
from pipeline.evaluation.inputs import ID_COLUMNS, is_store, load_truth, read_scored, task_of
from pipeline.evaluation.metrics import FPR_TARGETS, morphology_metrics, realbogus_metrics, yes_no
from pipeline.scoring import DEFINITIONS, derived_labels
from pipeline.store import open_store

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


# ------------------------------------------------------------------------------------------------ gallery
def _id_column(scored: pd.DataFrame) -> str:
    return next(c for c in ID_COLUMNS if c in scored.columns)


def _gallery(
    scored: pd.DataFrame,
    pick: np.ndarray,
    captions: list[str],
    store: str | os.PathLike | None,
    out_dir: Path,
    title: str,
) -> tuple[str, str | None]:
    """Write gallery.png of the rows ``pick`` of ``scored``; returns (html, file name or None)."""
    if len(pick) == 0:
        return '<p class="note">No mistakes: nothing to show.</p>', None
    if store is None or not Path(store).exists() or "store_row" not in scored.columns:
        return f'<p class="note">No stamp store available ({esc(store)}): gallery not drawn.</p>', None
    rows = scored["store_row"].to_numpy(np.int64)[pick]
    order = np.argsort(rows)
    with open_store(store) as opened:
        if rows.max() >= opened.n:
            return f'<p class="note">{esc(store)} has fewer stamps than the catalog: no gallery.</p>', None
        if "object_id" in scored.columns:
            ids = opened.catalog(rows[order], ["object_id"])["object_id"].astype(str).to_numpy()
            if not np.array_equal(ids, scored["object_id"].astype(str).to_numpy()[pick][order]):
                return f'<p class="note">{esc(store)} does not hold the scored stamps: no gallery.</p>', None
        stamps = np.empty((len(rows), len(opened.channels), *opened.stamp_shape), np.float32)
        stamps[order] = opened.stamps(rows[order])
        channels = opened.channels
    path = plots.gallery_png(stamps, captions, channels, out_dir / "gallery.png", title=title)
    return figure_html(path, title), path.name


def _worst(mistake: np.ndarray, confidence: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to ``n`` mistakes, most confident first (ties: catalog order)."""
    idx = np.flatnonzero(mistake)
    return idx[np.argsort(-confidence[idx], kind="stable")][:n]


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


def _confusion_section(
    name: str, y_true: np.ndarray, y_pred: np.ndarray, m: Mapping[str, Any], out_dir: Path, title: str
) -> tuple[str, list[str]]:
    raw = plots.confusion_png(y_true, y_pred, m["labels"], out_dir / f"confusion_{name}.png", title=title)
    norm = plots.confusion_png(
        y_true, y_pred, m["labels"], out_dir / f"confusion_{name}_normalized.png", title=title, normalize=True
    )
    report = m["classification_report"]
    rows = [
        (
            label,
            report[label]["precision"],
            report[label]["recall"],
            report[label]["f1-score"],
            int(report[label]["support"]),
        )
        for label in m["labels"]
    ]
    body = (
        figure_html(raw, f"{title}: counts (rows: true, columns: predicted)")
        + figure_html(norm, f"{title}: each row divided by its total")
        + table_html(("class", "precision", "recall", "F1", "support"), rows)
        + f"<p>accuracy {esc(m['accuracy'])}</p>"
    )
    return body, [raw.name, norm.name]


def _realbogus_report(
    scored: pd.DataFrame, truth: np.ndarray, meta: Mapping[str, Any], out_dir: Path, store, n_gallery: int
) -> tuple[dict[str, Any], list[tuple[str, str]], list[str]]:
    y = np.asarray(truth).astype(bool).astype(np.int64)
    rb = scored["rb"].to_numpy(np.float64)
    threshold = float(meta.get("threshold", 0.5))
    negative = str(meta.get("bogus_class") or "bogus")
    # Any class but bogus counts as real (multi-class models such as ALeRCE's stamp classifier).
    called_real = scored["label"].astype(str).to_numpy() != negative if "label" in scored else rb >= threshold
    pred = np.where(called_real, "real", negative)
    m = realbogus_metrics(y, rb, pred, threshold, negative)
    truth_names = np.where(y == 1, "real", negative)
    files: list[str] = []
    op = m["operating_point"]
    summary = [
        ("stamps", m["n"]),
        ("real", m["n_real"]),
        (negative, m["n_bogus"]),
        ("threshold (rb >=)", threshold),
        ("accuracy", m["accuracy"]),
        ("ROC AUC", m["roc_auc"]),
        ("average precision", m["average_precision"]),
        ("false positive rate at threshold", op["fpr"]),
        ("missed-real fraction at threshold", op["missed_real_fraction"]),
        ("precision (real) at threshold", op["precision"]),
    ]
    sections = [
        ("Summary", table_html(("quantity", "value"), [(k, "n/a" if v is None else v) for k, v in summary]))
    ]
    if m["missed_real_at_fpr"]:
        rows = [
            (
                r["fpr_target"],
                r["fpr"],
                r["missed_real_fraction"],
                "n/a" if r["threshold"] is None else r["threshold"],
            )
            for r in m["missed_real_at_fpr"]
        ]
        sections.append(
            (
                "Missed-real fraction at fixed false positive rates",
                table_html(("FPR at most", "FPR reached", "missed-real fraction", "rb threshold"), rows),
            )
        )
    body, names_cm = _confusion_section("label", truth_names, pred, m, out_dir, "Real-bogus")
    files += names_cm
    sections.append(("Confusion matrices", body))
    if m["roc_auc"] is not None:
        model = str(meta.get("model_name") or "model")
        roc = plots.roc_png(
            y,
            rb,
            out_dir / "roc.png",
            operating_point=(op["fpr"], op["tpr"]),
            threshold=threshold,
            fpr_targets=FPR_TARGETS,
            name=model,
        )
        pr = plots.precision_recall_png(
            y,
            rb,
            out_dir / "precision_recall.png",
            operating_point=(op["tpr"], op["precision"] or 0.0),
            threshold=threshold,
            name=model,
        )
        files += [roc.name, pr.name]
        sections.append(
            (
                "ROC and precision-recall",
                figure_html(roc, "ROC; dotted lines: the fixed false positive rates; dot: operating point")
                + figure_html(pr, "Precision-recall of class real; dot: operating point"),
            )
        )
    else:
        sections.append(("ROC and precision-recall", '<p class="note">Only one class in the labels.</p>'))
    confidence = np.where(pred == "real", rb, 1.0 - rb)
    pick = _worst(pred != truth_names, confidence, n_gallery)
    ids = scored[_id_column(scored)].astype(str).to_numpy()
    captions = [f"{ids[i]}\ntrue {truth_names[i]}\npred {pred[i]}\nrb={rb[i]:.3f}" for i in pick]
    gallery, name = _gallery(scored, pick, captions, store, out_dir, "Most confident mistakes")
    files += [name] if name else []
    sections.append(("Most confident mistakes", gallery))
    return m, sections, files


def _morphology_report(
    scored: pd.DataFrame, truth: np.ndarray, meta: Mapping[str, Any], out_dir: Path, store, n_gallery: int
) -> tuple[dict[str, Any], list[tuple[str, str]], list[str]]:
    pred = scored[list(ANSWER_LABELS)].to_numpy(np.float64)
    true = np.asarray(truth, np.float64)
    m = morphology_metrics(true, pred)
    t, p = derived_labels(true), derived_labels(pred)
    files: list[str] = []
    summary = [("stamps", m["n"]), ("RMSE, all 37 answers", m["rmse"])]
    summary += [(f"accuracy {name}", d["accuracy"]) for name, d in m["derived"].items()]
    sections = [("Summary", table_html(("quantity", "value"), summary))]
    rmse = plots.rmse_png(m["rmse_per_question"], m["rmse"], out_dir / "rmse_per_question.png")
    files.append(rmse.name)
    sections.append(
        (
            "RMSE per question",
            figure_html(rmse, "RMSE of the cumulative vote fractions per question")
            + table_html(("question", "RMSE"), list(m["rmse_per_question"].items())),
        )
    )
    definitions = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in DEFINITIONS.items())
    body = (
        '<p class="note">True: majority vote of the volunteers; predicted: the same rule applied to the '
        f"predicted fractions.</p><ul>{definitions}</ul>"
    )
    for name, d in m["derived"].items():
        yt, yp = (t[name], p[name]) if name == "morph_class" else (yes_no(t[name]), yes_no(p[name]))
        part, names_cm = _confusion_section(name, yt, yp, d, out_dir, name)
        body += f"<h3>{esc(name)}</h3>{part}"
        files += names_cm
    sections.append(("Derived classes", body))
    q1 = pred[:, QUESTION_SLICES["Q1"]]
    confidence = q1.max(axis=1)
    pick = _worst(t["morph_class"] != p["morph_class"], confidence, n_gallery)
    ids = scored[_id_column(scored)].astype(str).to_numpy()
    captions = [
        f"{ids[i]}\ntrue {t['morph_class'][i]}\npred {p['morph_class'][i]}\np={confidence[i]:.3f}"
        for i in pick
    ]
    gallery, name = _gallery(scored, pick, captions, store, out_dir, "Most confident morph_class mistakes")
    files += [name] if name else []
    sections.append(("Most confident mistakes", gallery))
    return m, sections, files


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
    build = _realbogus_report if task == "realbogus" else _morphology_report
    metrics, sections, files = build(scored, truth, meta, out, store, n_gallery)
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
    metrics_path.write_text(json.dumps(_json_safe(document), indent=2, sort_keys=True) + "\n")
    title = f"stampflow {task} report: {meta.get('model_name', '')} {meta.get('model_version', '')}".strip()
    index = write_index(out, title, sections, intro=f'<p class="note">{len(scored)} labelled stamps.</p>')
    result = ReportResult(
        str(out), str(index), str(metrics_path), task, len(scored), document["files"], metrics
    )
    (out / "summary.md").write_text(summary_markdown(result))
    return result


def summary_markdown(result: ReportResult) -> str:
    """The report's headline numbers as markdown (for a Prefect markdown artifact)."""
    m = result.metrics
    lines = [f"# {result.task} report ({result.n} stamps)", "", "| quantity | value |", "|---|---|"]
    if result.task == "realbogus":
        op = m["operating_point"]
        rows = [
            ("accuracy", m["accuracy"]),
            ("ROC AUC", m["roc_auc"]),
            ("average precision", m["average_precision"]),
            ("threshold", m["threshold"]),
            ("false positive rate", op["fpr"]),
            ("missed-real fraction", op["missed_real_fraction"]),
        ]
        rows += [
            (f"missed-real at FPR <= {r['fpr_target']:g}", r["missed_real_fraction"])
            for r in m["missed_real_at_fpr"]
        ]
    else:
        rows = [("RMSE (37 answers)", m["rmse"])]
        rows += [(f"RMSE {q}", v) for q, v in m["rmse_per_question"].items()]
        rows += [(f"accuracy {k}", d["accuracy"]) for k, d in m["derived"].items()]
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
