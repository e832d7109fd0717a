"""Real-bogus metrics and calibration (:mod:`models.realbogus_metrics`): accumulated metrics against sklearn
and the definitions of FPR and FNR, temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from models.realbogus_metrics import RealBogusMetrics, fit_temperature
from pipeline.evaluation import rates_at

pytestmark = pytest.mark.usefixtures("one_torch_thread")
METRICS = ("accuracy", "fpr", "fnr", "auc", "ece", "loss")


def test_metrics_match_sklearn_and_the_definitions_of_fpr_and_fnr():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    p_real = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    probs = torch.from_numpy(np.stack([1 - p_real, p_real], 1)).float()
    metrics = RealBogusMetrics(2, bogus_index=0)
    for sl in (slice(0, 70), slice(70, 200)):  # accumulated over two batches
        logits = probs[sl].log()
        metrics.update(probs[sl], torch.from_numpy(y[sl]), F.cross_entropy(logits, torch.from_numpy(y[sl])))
    values = {k: float(v) for k, v in metrics.compute().items()}
    called = p_real >= 0.5
    assert set(values) == set(METRICS)
    assert values["accuracy"] == pytest.approx(np.mean(called == y))
    assert values["fpr"] == pytest.approx(np.sum(called & (y == 0)) / np.sum(y == 0))
    assert values["fnr"] == pytest.approx(np.sum(~called & (y == 1)) / np.sum(y == 1))
    assert values["auc"] == pytest.approx(roc_auc_score(y, p_real), abs=1e-6)
    assert rates_at(y, p_real, 0.5) == pytest.approx({"fpr": values["fpr"], "fnr": values["fnr"]})


def test_temperature_scaling_recovers_the_temperature_of_overconfident_logits():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(20000, 2, generator=gen) * 2
    y = torch.multinomial(torch.softmax(logits, 1), 1, generator=gen)[:, 0]
    assert fit_temperature(3.0 * logits, y) == pytest.approx(3.0, rel=0.05)
    assert fit_temperature(logits, y) == pytest.approx(1.0, rel=0.05)
