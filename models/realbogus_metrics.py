"""Metrics and calibration of the real-bogus model (:class:`models.realbogus.RealBogusModel`).

- :class:`RealBogusMetrics`: accumulated classification and real-bogus metrics of one stage (accuracy,
  FPR and FNR of the ``score >= 0.5`` decision, ROC AUC, expected calibration error, loss).
- :func:`fit_temperature`: temperature scaling on validation logits (Guo et al. 2017); :func:`nll` and
  :func:`ece`: the negative log-likelihood and expected calibration error of ``softmax(logits / T)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryStatScores,
    MulticlassAccuracy,
    MulticlassCalibrationError,
)


class RealBogusMetrics(nn.Module):
    """Accumulated classification and real-bogus metrics of one stage (torchmetrics: synced across DDP ranks).

    ``update(probs (B, K), y (B,) int64, loss)``; ``compute()`` -> ``accuracy``, ``fpr``, ``fnr`` (real-bogus
    decision ``score >= 0.5``, positive = real), ``auc`` (only when both real and bogus were seen), ``ece``,
    ``loss`` (mean cross-entropy).
    """

    def __init__(self, n_classes: int, bogus_index: int, ece_bins: int = 15):
        super().__init__()
        self.bogus_index = int(bogus_index)
        self.accuracy = MulticlassAccuracy(num_classes=n_classes, average="micro")
        self.stats = BinaryStatScores(threshold=0.5)
        self.auroc = BinaryAUROC()
        self.ece = MulticlassCalibrationError(num_classes=n_classes, n_bins=ece_bins, norm="l1")
        self.loss = MeanMetric()
        self.seen = 0  # stamps seen by this process since the last reset

    def update(self, probs: Tensor, y: Tensor, loss: Tensor) -> None:
        score = 1.0 - probs[:, self.bogus_index]
        is_real = (y != self.bogus_index).long()
        self.accuracy.update(probs, y)
        self.stats.update(score, is_real)
        self.auroc.update(score, is_real)
        self.ece.update(probs, y)
        self.loss.update(loss.detach(), weight=len(y))
        self.seen += len(y)

    def compute(self) -> dict[str, Tensor]:
        tp, fp, tn, fn, _ = self.stats.compute().double()
        out = {
            "accuracy": self.accuracy.compute(),
            "fpr": fp / (fp + tn) if fp + tn > 0 else torch.tensor(float("nan")),
            "fnr": fn / (fn + tp) if fn + tp > 0 else torch.tensor(float("nan")),
            "ece": self.ece.compute(),
            "loss": self.loss.compute(),
        }
        if fp + tn > 0 and fn + tp > 0:
            out["auc"] = self.auroc.compute()
        return {k: v.float() for k, v in out.items() if not torch.isnan(v)}

    def reset(self) -> None:
        for metric in (self.accuracy, self.stats, self.auroc, self.ece, self.loss):
            metric.reset()
        self.seen = 0


def fit_temperature(logits: Tensor, y: Tensor, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature ``T`` minimising the mean cross-entropy of ``softmax(logits / T)`` (Guo et al. 2017).

    Args:
        logits: ``(M, K)`` validation logits; y: ``(M,)`` class indices.
        bounds: search range of ``T`` (searched in log ``T`` with scipy's bounded Brent method).
    """
    result = minimize_scalar(
        lambda log_t: nll(logits, y, math.exp(log_t)),
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
    )
    return float(math.exp(result.x))


def nll(logits: Tensor, y: Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (cross-entropy, nats) of ``softmax(logits / T)`` for labels ``y``."""
    return float(F.cross_entropy(logits.double() / temperature, y.long()))


def ece(logits: Tensor, y: Tensor, temperature: float = 1.0, bins: int = 15) -> float:
    """Expected calibration error (top-label, ``bins`` equal-width bins) of ``softmax(logits / T)``."""
    metric = MulticlassCalibrationError(num_classes=logits.shape[1], n_bins=bins, norm="l1")
    return float(metric(torch.softmax(logits.double() / temperature, dim=-1).float(), y))
