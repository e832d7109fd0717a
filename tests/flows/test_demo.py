"""A tiny-sized demo (``python -m flows.demo --quick``): every stage runs through the flows' stages, the
real ZTF alerts are ingested, both models are trained and scored, both reports written, and the summary
prints where everything is and the wall time per stage. (The full demo is measured, not tested.)"""

from __future__ import annotations

import json

import pytest

from flows import demo
from flows.demo import main

STAGES = ("simulate", "ingest", "train", "score", "report")


@pytest.mark.slow
def test_quick_demo_runs_every_stage(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(demo.QUICK, "train_minutes", 0.05)
    out = tmp_path / "demo"
    assert main(["--quick", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ingest ztf_alerts: inputs=97 ingested=97 rejected=0" in printed
    assert "ingest galaxies_real: inputs=100 ingested=100 rejected=0" in printed
    for stage in STAGES:
        assert f"    {stage}" in printed
    for path in (
        out / "galaxies_test" / "scored.parquet",
        out / "ztf_alerts" / "scored.parquet",
        out / "galaxies_test" / "report" / "index.html",
        out / "ztf_alerts" / "report" / "index.html",
        out / "checkpoints" / "morphology" / "model.ckpt",
        out / "checkpoints" / "realbogus" / "model.ckpt",
    ):
        assert path.is_file()
        assert path.name == "model.ckpt" or str(path) in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(STAGES) <= set(manifest["stages"])
    assert all(manifest["stages"][s]["seconds"] > 0 for s in STAGES)
    assert len(manifest["stages"]["ingest"]["inputs"]) > 97  # the real alerts and the simulated files
    metrics = json.loads((out / "ztf_alerts" / "report" / "metrics.json").read_text())
    assert metrics["task"] == "realbogus" and metrics["n"] == 97
    real = json.loads((out / "galaxies_real" / "report" / "metrics.json").read_text())
    # the shipped gz_sdss model on 100 real galaxies it never trained on: well below the RMSE of predicting
    # the training mean (0.176 on the benchmark's test galaxies)
    assert real["task"] == "morphology" and real["n"] == 100 and real["metrics"]["rmse"] < 0.15
    assert "100 real SDSS galaxies" in printed
