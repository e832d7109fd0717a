"""pipeline.evaluation.metrics: the one threshold-at-FPR rule shared by the model card and the report."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation import rates_at, realbogus_metrics, threshold_at_fpr


def test_threshold_gives_at_most_the_requested_false_positive_rate():
    bogus = np.arange(100) / 100.0  # 100 bogus scores 0.00 .. 0.99
    real = np.linspace(0.5, 1.0, 50)
    is_real = np.r_[np.zeros(100), np.ones(50)].astype(bool)
    score = np.r_[bogus, real]
    choice = threshold_at_fpr(is_real, score, 0.05)
    # the lowest threshold that lets through only the bogus 0.95 .. 0.99: the real score just above 0.94
    assert choice["fpr"] == 0.05 and 0.94 < choice["threshold"] <= 0.95 and choice["threshold"] in real
    assert rates_at(is_real, score, choice["threshold"])["fpr"] == 0.05
    assert choice["tpr"] == pytest.approx(np.mean(real >= choice["threshold"]))
    none = threshold_at_fpr(is_real, np.r_[np.ones(100), np.zeros(50)], 0.01)  # every bogus scores highest
    assert none["threshold"] > 1.0 and none["fpr"] == 0.0 and none["tpr"] == 0.0


def test_card_threshold_equals_the_report_operating_point_on_the_same_data():
    rng = np.random.default_rng(3)
    is_real = rng.random(2000) < 0.4
    score = np.clip(np.where(is_real, rng.normal(0.7, 0.15, 2000), rng.normal(0.3, 0.15, 2000)), 0, 1)
    card = threshold_at_fpr(is_real, score, 0.01)  # what training writes into model_card.json
    report = realbogus_metrics(
        is_real.astype(int), score, np.where(score >= card["threshold"], "real", "bogus"), card["threshold"]
    )
    point = {r["fpr_target"]: r for r in report["missed_real_at_fpr"]}[0.01]
    assert point["threshold"] == card["threshold"]
    assert point["missed_real_fraction"] == pytest.approx(card["fnr"])
    assert report["operating_point"]["fpr"] == pytest.approx(card["fpr"])
