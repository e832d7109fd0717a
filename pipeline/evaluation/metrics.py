"""Numbers of the evaluation reports, computed with scikit-learn (docs/design.md, "Reports").

Real-bogus: confusion matrices (raw and row-normalised), accuracy, sklearn's classification report, ROC AUC,
average precision, the operating point of the published labels (false positive rate, true positive rate,
missed-real fraction = false negative rate, precision) and the missed-real fraction at fixed false positive
rates (:func:`missed_real_at_fpr`).

Morphology: RMSE over all 37 cumulative vote fractions (the Kaggle metric), per question (over that
question's answers and all rows) and per answer; for each derived class (:mod:`pipeline.scoring.morphology_classes`)
the confusion matrices, accuracy and classification report of the true majority vote against the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    classification_report,
    confusion_matrix,
    mean_squared_error,
    roc_auc_score,
    roc_curve,
)

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, QUESTION_SLICES
from pipeline.scoring import BINARY_CLASSES, DEFINITIONS, MORPH_CLASSES, derived_labels

#: False positive rates at which the missed-real fraction is reported.
FPR_TARGETS = (0.001, 0.01, 0.02, 0.05, 0.1)


def threshold_at_fpr(is_real: np.ndarray, score: np.ndarray, fpr: float) -> dict[str, float]:
    """The lowest score threshold whose false positive rate is at most ``fpr`` (sklearn ``roc_curve``).

    The one operating-point rule of stampflow: the model card's threshold (chosen on validation data at
    training) and the report's operating points both come from here.

    Args:
        is_real: ``(N,)`` truth, true or 1 = real; both classes present.
        score: ``(N,)`` real-bogus score ``rb``; a candidate is called real when ``score >= threshold``.
        fpr: the largest false positive rate allowed, in [0, 1].

    Returns:
        ``threshold`` and the ``fpr``, ``tpr`` and ``fnr`` (missed-real fraction) it achieves on these data.
        When even the highest score gives too many false positives, the threshold is just above the highest
        score (nothing is called real).
    """
    score = np.asarray(score, dtype=np.float64)
    fprs, tprs, thresholds = roc_curve(np.asarray(is_real, dtype=int), score, drop_intermediate=False)
    i = int(np.searchsorted(fprs, fpr, side="right")) - 1
    threshold = (
        float(thresholds[i]) if np.isfinite(thresholds[i]) else float(np.nextafter(score.max(), np.inf))
    )
    return {"threshold": threshold, "fpr": float(fprs[i]), "tpr": float(tprs[i]), "fnr": float(1.0 - tprs[i])}


def rates_at(is_real: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """False positive and false negative rates of ``score >= threshold`` (positive = real)."""
    called = np.asarray(score) >= threshold
    tn, fp, fn, tp = confusion_matrix(np.asarray(is_real, dtype=bool), called, labels=[False, True]).ravel()
    return {
        "fpr": float(fp / (fp + tn)) if fp + tn else float("nan"),
        "fnr": float(fn / (fn + tp)) if fn + tp else float("nan"),
    }


def missed_real_at_fpr(
    y_true: np.ndarray, score: np.ndarray, targets: Sequence[float] = FPR_TARGETS
) -> list[dict[str, float]]:
    """The lowest missed-real fraction (false negative rate) with a false positive rate at most each target
    (:func:`threshold_at_fpr` per target).

    Args:
        y_true: ``(N,)`` 0/1 truth (1 = real); both classes present.
        score: ``(N,)`` real-bogus score ``rb``.
        targets: false positive rates in [0, 1].

    Returns:
        one dict per target: ``fpr_target``, the achieved ``fpr``, ``missed_real_fraction`` and the
        ``threshold`` (``rb >= threshold`` is real).
    """
    out = []
    for target in targets:
        point = threshold_at_fpr(y_true, score, target)
        out.append(
            {
                "fpr_target": float(target),
                "fpr": point["fpr"],
                "missed_real_fraction": point["fnr"],
                "threshold": point["threshold"],
            }
        )
    return out


def class_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Confusion matrices (raw, row-normalised), accuracy and sklearn's classification report."""
    return {
        "labels": list(labels),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
        "confusion_matrix_normalized": confusion_matrix(
            y_true, y_pred, labels=list(labels), normalize="true"
        ).tolist(),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "classification_report": classification_report(
            y_true, y_pred, labels=list(labels), output_dict=True, zero_division=0
        ),
    }


def realbogus_metrics(
    y_true: np.ndarray,
    rb: np.ndarray,
    y_pred: np.ndarray,
    threshold: float,
    negative: str = "bogus",
    fpr_targets: Sequence[float] = FPR_TARGETS,
) -> dict[str, Any]:
    """Every real-bogus number of a report.

    Args:
        y_true: ``(N,)`` 0/1 truth (1 = real).
        rb: ``(N,)`` real-bogus score.
        y_pred: ``(N,)`` predicted class names (``real`` or ``negative``), the catalog's ``label``.
        threshold: the threshold the labels were made with.
        negative: name of the non-real class.
        fpr_targets: false positive rates for :func:`missed_real_at_fpr`.
    """
    labels = [negative, "real"]
    truth = np.where(np.asarray(y_true).astype(bool), "real", negative)
    m = class_metrics(truth, y_pred, labels)
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    both = 0 < int(np.sum(y_true)) < len(y_true)
    m.update(
        {
            "n": len(truth),
            "n_real": int(tp + fn),
            "n_bogus": int(tn + fp),
            "threshold": float(threshold),
            "operating_point": {
                "threshold": float(threshold),
                "fpr": fp / (fp + tn) if fp + tn else None,
                "tpr": tp / (tp + fn) if tp + fn else None,
                "missed_real_fraction": fn / (tp + fn) if tp + fn else None,
                "precision": tp / (tp + fp) if tp + fp else None,
            },
            "roc_auc": float(roc_auc_score(y_true, rb)) if both else None,
            "average_precision": float(average_precision_score(y_true, rb)) if both else None,
            "missed_real_at_fpr": missed_real_at_fpr(y_true, rb, fpr_targets) if both else [],
        }
    )
    return m


def morphology_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Every morphology number of a report.

    Args:
        true: ``(N, 37)`` volunteer cumulative vote fractions (Kaggle order).
        pred: ``(N, 37)`` predicted cumulative fractions.

    Returns:
        ``rmse`` (all 37 answers, the Kaggle metric), ``rmse_per_question`` (Q1..Q11), ``rmse_per_answer``,
        and ``derived``: per derived class its confusion matrices, accuracy and classification report
        (true majority vote against predicted).
    """
    mse = mean_squared_error(true, pred, multioutput="raw_values")  # (37,), each over the N rows
    per_question = {q: float(np.sqrt(mse[sl].mean())) for q, sl in QUESTION_SLICES.items()}
    t, p = derived_labels(true), derived_labels(pred)
    derived = {"morph_class": class_metrics(t["morph_class"], p["morph_class"], MORPH_CLASSES)}
    for name in BINARY_CLASSES:
        derived[name] = class_metrics(yes_no(t[name]), yes_no(p[name]), ("no", "yes"))
    return {
        "n": len(true),
        "rmse": float(np.sqrt(mse.mean())),
        "rmse_per_question": per_question,
        "rmse_per_answer": {a: float(np.sqrt(v)) for a, v in zip(ANSWER_COLUMNS, mse, strict=True)},
        "derived": derived,
        "derived_definitions": dict(DEFINITIONS),
    }


def yes_no(flags: np.ndarray) -> np.ndarray:
    """``(N,)`` bool -> ``(N,)`` ``"yes"``/``"no"`` (class names of the binary derived classes)."""
    return np.where(flags, "yes", "no")
