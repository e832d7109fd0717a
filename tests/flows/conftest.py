"""Shared fixtures of the flow tests: a tiny real real-bogus model trained for a few steps on simulated HiTS
triplets, and a night of simulated inputs. (The one session-scoped Prefect test harness is in
tests/conftest.py: every CLI command runs through its flow, so tests outside tests/flows need it too.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

HITS_EXTENSIONS = ["TEMPLATE", "SCIENCE", "DIFFERENCE", "SNR"]


@pytest.fixture(scope="session")
def tiny_rb_model(tmp_path_factory) -> Path:
    """A Deep-HiTS checkpoint (model.ckpt + model_card.json) trained for 2 steps on 40 simulated triplets."""
    from models.train import train_model
    from pipeline.ingest import ingest_labelled_triplets
    from pipeline.simulate.transients import simulate_transients

    root = tmp_path_factory.mktemp("tiny_rb")
    simulate_transients(40, root / "sim", survey="hits", seed=0, workers=1)
    ingest_labelled_triplets(root / "sim", root / "train" / "stamps.h5")
    result = train_model(
        "realbogus",
        [root / "train" / "stamps.h5"],
        root / "model",
        preset="hits",
        max_epochs=1,
        limit_train_batches=2,
        batch_size=8,
        seed=0,
    )
    return Path(result.checkpoint)


@pytest.fixture(scope="session")
def tiny_rb_store(tiny_rb_model) -> Path:
    """The labelled store (40 HiTS triplets, 4x21x21) the tiny model was trained on."""
    return tiny_rb_model.parent.parent / "train" / "stamps.h5"


@pytest.fixture(scope="session")
def night_folder(tmp_path_factory) -> Path:
    """A night of 12 simulated HiTS triplets (FITS files) and ``truth.csv`` (``object_id``, ``real``)."""
    from pipeline.simulate.transients import simulate_transients

    root = tmp_path_factory.mktemp("night")
    labels = simulate_transients(12, root / "sim", survey="hits", seed=1, workers=1)
    night = root / "night"
    night.mkdir()
    for path in sorted((root / "sim").glob("*.fits.gz")):
        shutil.copy(path, night / path.name)
    pd.DataFrame({"object_id": labels["id"], "real": labels["real"]}).to_csv(root / "truth.csv", index=False)
    return night


def copy_night(night_folder: Path, dest: Path) -> Path:
    """A fresh copy of the night's files (tests change their copy)."""
    shutil.copytree(night_folder, dest)
    return dest
