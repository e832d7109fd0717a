"""The task-specific sections of a report: real-bogus (operating point, missed-real fraction at fixed false
positive rates, ROC and precision-recall) and morphology (RMSE per question, derived classes), each with its
confusion matrices and the gallery of the most confident mistakes, and each task's headline rows.

:data:`TASK_SECTIONS` maps a task to its :class:`TaskSections`; :mod:`pipeline.evaluation.report` puts the
pieces on the page, in ``metrics.json`` and in ``summary.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_catalogs.galaxy_zoo import ANSWER_LABELS, QUESTION_SLICES
from pipeline.evaluation import plots
from pipeline.evaluation.html import esc, figure_html, table_html
from pipeline.evaluation.inputs import ID_COLUMNS
from pipeline.evaluation.metrics import FPR_TARGETS, morphology_metrics, realbogus_metrics, yes_no
from pipeline.scoring import DEFINITIONS, derived_labels
from pipeline.store import open_store

#: (metrics, page sections as (title, html), files written) of one task's part of a report.
Sections = tuple[dict[str, Any], list[tuple[str, str]], list[str]]


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


# ------------------------------------------------------------------------------------------------ real-bogus
def _ranking_rows(m: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Accuracy and the threshold-free ranking numbers of real-bogus metrics."""
    return [
        ("accuracy", m["accuracy"]),
        ("ROC AUC", m["roc_auc"]),
        ("average precision", m["average_precision"]),
    ]


def _missed_real_section(m: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The missed-real fraction at each fixed false positive rate (no section when there is none)."""
    if not m["missed_real_at_fpr"]:
        return []
    rows = [
        (
            r["fpr_target"],
            r["fpr"],
            r["missed_real_fraction"],
            "n/a" if r["threshold"] is None else r["threshold"],
        )
        for r in m["missed_real_at_fpr"]
    ]
    header = ("FPR at most", "FPR reached", "missed-real fraction", "rb threshold")
    return [("Missed-real fraction at fixed false positive rates", table_html(header, rows))]


def _curves_section(
    y: np.ndarray, rb: np.ndarray, m: Mapping[str, Any], meta: Mapping[str, Any], out_dir: Path
) -> tuple[tuple[str, str], list[str]]:
    """ROC and precision-recall of ``rb`` against ``y`` (0/1) with the operating point; (section, files)."""
    title = "ROC and precision-recall"
    if m["roc_auc"] is None:
        return (title, '<p class="note">Only one class in the labels.</p>'), []
    op, threshold = m["operating_point"], float(m["threshold"])
    model = str(meta.get("model_name") or "model")
    roc = plots.curve_png(
        "roc",
        y,
        rb,
        out_dir / "roc.png",
        operating_point=(op["fpr"], op["tpr"]),
        threshold=threshold,
        fpr_targets=FPR_TARGETS,
        name=model,
    )
    pr = plots.curve_png(
        "precision_recall",
        y,
        rb,
        out_dir / "precision_recall.png",
        operating_point=(op["tpr"], op["precision"] or 0.0),
        threshold=threshold,
        name=model,
    )
    body = figure_html(roc, "ROC; dotted lines: the fixed false positive rates; dot: operating point")
    body += figure_html(pr, "Precision-recall of class real; dot: operating point")
    return (title, body), [roc.name, pr.name]


def realbogus_sections(
    scored: pd.DataFrame, truth: np.ndarray, meta: Mapping[str, Any], out_dir: Path, store, n_gallery: int
) -> Sections:
    """Real-bogus part of a report: ``truth`` ``(N,)`` 0/1 (1 = real) against the catalog's ``rb`` and
    ``label`` at the card's threshold (meta ``threshold``, ``bogus_class``)."""
    y = np.asarray(truth).astype(bool).astype(np.int64)
    rb = scored["rb"].to_numpy(np.float64)
    threshold = float(meta.get("threshold", 0.5))
    negative = str(meta.get("bogus_class") or "bogus")
    # Any class but bogus counts as real (multi-class models such as ALeRCE's stamp classifier).
    called_real = scored["label"].astype(str).to_numpy() != negative if "label" in scored else rb >= threshold
    pred = np.where(called_real, "real", negative)
    m = realbogus_metrics(y, rb, pred, threshold, negative)
    truth_names = np.where(y == 1, "real", negative)
    op = m["operating_point"]
    summary = [
        ("stamps", m["n"]),
        ("real", m["n_real"]),
        (negative, m["n_bogus"]),
        ("threshold (rb >=)", threshold),
        *_ranking_rows(m),
        ("false positive rate at threshold", op["fpr"]),
        ("missed-real fraction at threshold", op["missed_real_fraction"]),
        ("precision (real) at threshold", op["precision"]),
    ]
    summary_html = table_html(("quantity", "value"), [(k, "n/a" if v is None else v) for k, v in summary])
    sections = [("Summary", summary_html), *_missed_real_section(m)]
    body, files = _confusion_section("label", truth_names, pred, m, out_dir, "Real-bogus")
    sections.append(("Confusion matrices", body))
    curves, curve_files = _curves_section(y, rb, m, meta, out_dir)
    sections.append(curves)
    files += curve_files
    confidence = np.where(pred == "real", rb, 1.0 - rb)
    pick = _worst(pred != truth_names, confidence, n_gallery)
    ids = scored[_id_column(scored)].astype(str).to_numpy()
    captions = [f"{ids[i]}\ntrue {truth_names[i]}\npred {pred[i]}\nrb={rb[i]:.3f}" for i in pick]
    gallery, name = _gallery(scored, pick, captions, store, out_dir, "Most confident mistakes")
    files += [name] if name else []
    sections.append(("Most confident mistakes", gallery))
    return m, sections, files


def realbogus_headline(m: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Headline rows of real-bogus metrics (``summary.md``)."""
    op = m["operating_point"]
    rows = [
        *_ranking_rows(m),
        ("threshold", m["threshold"]),
        ("false positive rate", op["fpr"]),
        ("missed-real fraction", op["missed_real_fraction"]),
    ]
    return rows + [
        (f"missed-real at FPR <= {r['fpr_target']:g}", r["missed_real_fraction"])
        for r in m["missed_real_at_fpr"]
    ]


# ------------------------------------------------------------------------------------------------ morphology
def morphology_sections(
    scored: pd.DataFrame, truth: np.ndarray, meta: Mapping[str, Any], out_dir: Path, store, n_gallery: int
) -> Sections:
    """Morphology part of a report: ``truth`` ``(N, 37)`` cumulative vote fractions against the catalog's
    37 answer columns and the derived classes of both."""
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


def morphology_headline(m: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Headline rows of morphology metrics (``summary.md``)."""
    rows = [("RMSE (37 answers)", m["rmse"])]
    rows += [(f"RMSE {q}", v) for q, v in m["rmse_per_question"].items()]
    return rows + [(f"accuracy {k}", d["accuracy"]) for k, d in m["derived"].items()]


@dataclass(frozen=True)
class TaskSections:
    """How one task's part of a report is made: ``build(scored, truth, meta, out_dir, store, n_gallery)``
    -> :data:`Sections`, and ``headline(metrics)`` -> (quantity, value) rows."""

    build: Callable[..., Sections]
    headline: Callable[[Mapping[str, Any]], list[tuple[str, Any]]]


#: task -> its report part.
TASK_SECTIONS = {
    "realbogus": TaskSections(realbogus_sections, realbogus_headline),
    "morphology": TaskSections(morphology_sections, morphology_headline),
}
