"""Figures of the evaluation reports, written as PNG files (matplotlib's Agg canvas, no pyplot state).

Confusion matrices, ROC and precision-recall curves are drawn by scikit-learn's display classes
(``ConfusionMatrixDisplay``, ``RocCurveDisplay``, ``PrecisionRecallDisplay``) on axes created here; stamp
thumbnails are scaled by astropy's ``ZScaleInterval``. Every function returns the path it wrote.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.visualization import ImageNormalize, ZScaleInterval
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

#: Resolution of every PNG, dots per inch.
DPI = 100


def _figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def confusion_png(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    path: str | os.PathLike,
    *,
    normalize: bool = False,
    title: str = "",
) -> Path:
    """A confusion matrix (rows: true class, columns: predicted), raw counts or row-normalised.

    Args:
        y_true, y_pred: ``(N,)`` class names.
        labels: class order of rows and columns.
        path: PNG to write.
        normalize: divide each row by its total (the fraction of each true class given each prediction).
        title: figure title.
    """
    side = 1.8 + 0.6 * len(labels)
    fig = _figure(side + 0.8, side)
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(labels),
        normalize="true" if normalize else None,
        values_format=".3f" if normalize else "d",
        cmap="Blues",
        colorbar=True,
        ax=ax,
    )
    ax.set_title(title + (" (row-normalised)" if normalize else " (counts)"))
    return _save(fig, path)


#: Per curve: scikit-learn display, legend corner, title and axis labels (None: the display's own).
_CURVES: dict[str, tuple[Any, str, str, str | None, str | None]] = {
    "roc": (
        RocCurveDisplay,
        "lower right",
        "ROC",
        "False positive rate (bogus called real)",
        "True positive rate (real kept)",
    ),
    "precision_recall": (PrecisionRecallDisplay, "lower left", "Precision-recall (class real)", None, None),
}


def curve_png(
    curve: str,
    y_true: np.ndarray,
    score: np.ndarray,
    path: str | os.PathLike,
    *,
    operating_point: tuple[float, float],
    threshold: float,
    fpr_targets: Sequence[float] = (),
    name: str = "model",
) -> Path:
    """ROC or precision-recall curve of a binary score with the operating point marked.

    Args:
        curve: ``roc`` or ``precision_recall``.
        y_true: ``(N,)`` 0/1 truth (1 = real).
        score: ``(N,)`` score of class 1 (``rb``).
        path: PNG to write.
        operating_point: the published labels' ``(FPR, TPR)`` (ROC) or ``(recall, precision)``.
        threshold: the threshold of the operating point (for the legend).
        fpr_targets: false positive rates marked by vertical lines (ROC: where the missed-real fraction is
            read).
        name: curve name in the legend.
    """
    display, corner, title, x_label, y_label = _CURVES[curve]
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    display.from_predictions(y_true, score, pos_label=1, name=name, ax=ax, plot_chance_level=True)
    for target in fpr_targets:
        ax.axvline(target, color="0.6", lw=0.8, ls=":")
    x, y = operating_point
    ax.plot([x], [y], "o", color="C3", ms=8, label=f"operating point (rb >= {threshold:g})")
    if x_label and y_label:
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
    ax.legend(loc=corner)
    ax.set_title(title)
    return _save(fig, path)


def rmse_png(rmse_by_question: dict[str, float], overall: float, path: str | os.PathLike) -> Path:
    """Bar chart of the RMSE per Galaxy Zoo question, with the RMSE over all 37 answers as a line."""
    names = list(rmse_by_question)
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    ax.bar(names, [rmse_by_question[n] for n in names], color="C0")
    ax.axhline(overall, color="C3", ls="--", label=f"all 37 answers: {overall:.4f}")
    ax.set_ylabel("RMSE of cumulative vote fractions")
    ax.set_xlabel("question")
    ax.legend()
    ax.set_title("RMSE per question")
    return _save(fig, path)


def gallery_png(
    stamps: np.ndarray,
    captions: Sequence[str],
    channels: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str = "",
    blocks_per_row: int = 2,
) -> Path:
    """Stamp thumbnails: one block of C panels (one per channel, each zscale-stretched) per stamp,
    ``blocks_per_row`` stamps side by side, the caption left of each block.

    Args:
        stamps: ``(K, C, H, W)`` raw stamps (K >= 1); NaN pixels are shown blank.
        captions: ``K`` captions (a few short lines: id, truth, prediction and its probability).
        channels: ``C`` channel names for the panel titles of the first row.
        path: PNG to write.
        title: figure title.
        blocks_per_row: stamps per row of the figure.
    """
    k, c = stamps.shape[:2]
    per_row = max(1, min(blocks_per_row, k))
    n_rows = -(-k // per_row)
    fig = _figure(per_row * (1.3 * c + 1.6), 1.4 * n_rows + 0.6)
    axes = fig.subplots(n_rows, per_row * c, squeeze=False)
    interval = ZScaleInterval()
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(k):
        row, block = divmod(i, per_row)
        for j in range(c):
            ax = axes[row, block * c + j]
            ax.set_axis_on()
            image = stamps[i, j]
            finite = image[np.isfinite(image)]
            norm = ImageNormalize(finite if finite.size else np.zeros(1), interval=interval)
            ax.imshow(image, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(str(channels[j]), fontsize=8)
        axes[row, block * c].set_ylabel(captions[i], fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
