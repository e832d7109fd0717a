"""``stampflow simulate galaxies|transients`` through the real CLI entry point."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from flows.cli import main


@pytest.mark.prefect
def test_simulate_transients_cli_writes_fits_and_labels(tmp_path, capsys):
    out = tmp_path / "ztf"
    argv = ["simulate", "transients", "5", "--survey", "ztf", "--out", str(out), "--seed", "2"]
    rc = main([*argv, "--workers", "1", "--json", "-q"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["triplets"] == 5 and summary["survey"] == "ztf"
    labels = pd.read_csv(out / "labels.csv")
    assert list(labels["id"]) == [f"sim-ztf-{i:07d}" for i in range(5)]
    assert {"id", "real", "artifact_type", "flux", "snr"} <= set(labels.columns)
    assert summary["real"] == int(labels["real"].sum())
    assert len(list(out.glob("*.fits.gz"))) == 5


@pytest.mark.prefect
def test_simulate_galaxies_cli_writes_cubes_and_catalogs(tmp_path, capsys):
    out = tmp_path / "gz"
    argv = ["simulate", "galaxies", "3", "--out", str(out), "--seed", "1", "--workers", "1"]
    rc = main([*argv, "--size", "41", "--pixel-scale", "0.5", "-q"])
    assert rc == 0
    assert f"wrote 3 galaxies (41x41 px, g r i) to {out} in " in capsys.readouterr().out
    for name in ("training_solutions.csv", "gz2_catalog.csv", "votes.csv", "truth.csv", "simulation.json"):
        assert (out / name).is_file()
    assert sorted(p.name for p in (out / "images").iterdir()) == ["100000.fits", "100001.fits", "100002.fits"]
    assert json.loads((out / "simulation.json").read_text())["imaging"]["size"] == 41


@pytest.mark.prefect
def test_simulate_without_a_target_prints_help(capsys):
    assert main(["simulate"]) == 2
    assert "galaxies" in capsys.readouterr().out
