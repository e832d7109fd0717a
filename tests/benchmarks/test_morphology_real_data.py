"""The data side of the real-galaxy morphology benchmark (benchmarks/morphology_real_data.py): the split is
by galaxy id, seeded and disjoint, the stores hold only their subset, and a test galaxy in a training store
is caught. Real Kaggle label rows (tests/data/galaxy_zoo) with small seeded JPEGs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.morphology_real_data import (
    CATALOG_NAME,
    StoreCache,
    check_no_leak,
    read_dev_catalog,
    split_dev,
    store_ids,
    write_splits,
)
from benchmarks.morphology_real_rows import cnn_row, mean_row, ridge_row, rmse_facts
from pipeline.prep import IngestFrame
from pipeline.store import open_store

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "galaxy_zoo" / "kaggle_training_solutions_sample.csv"


@pytest.fixture
def dev(tmp_path) -> Path:
    """A dev-set folder: the 6 real Kaggle rows and a 48 px seeded JPEG per galaxy."""
    folder = tmp_path / "dev"
    (folder / "images").mkdir(parents=True)
    shutil.copy(SAMPLE, folder / CATALOG_NAME)
    for seed, line in enumerate(SAMPLE.read_text().splitlines()[1:]):
        pixels = np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{line.split(',')[0]}.jpg", quality=95)
    return folder


def test_the_split_is_by_id_seeded_disjoint_and_nested(dev):
    catalog = read_dev_catalog(dev)
    assert catalog.ids == sorted(["100008", "100143", "100134", "100123", "100445", "135453"])
    split = split_dev(catalog.ids, n_test=2, seed=0, val_fraction=0.25)
    assert split == split_dev(list(reversed(catalog.ids)), n_test=2, seed=0, val_fraction=0.25)
    assert len(split.test) == 2 and not set(split.test) & set(split.train_order)
    assert set(split.test) | set(split.train_order) == set(catalog.ids)
    fit, val = split.training()
    assert len(val) == 1 and sorted([*fit, *val]) == sorted(split.train_order)
    fit3, val3 = split.training(3)
    assert set(fit3) | set(val3) < set(fit) | set(val)  # curve points are nested
    others = {split_dev(catalog.ids, 2, seed).test for seed in range(1, 6)}
    assert others - {split.test}  # another seed gives another split
    with pytest.raises(ValueError, match="repeat"):
        split_dev([*catalog.ids, catalog.ids[0]], 2, 0)


def test_stores_hold_only_their_galaxies_and_a_test_galaxy_in_training_is_caught(dev, tmp_path):
    catalog = read_dev_catalog(dev)
    split = split_dev(catalog.ids, n_test=2, seed=1, val_fraction=0.25)
    fit, val = split.training()
    cache = StoreCache(catalog, tmp_path / "work")
    frame = IngestFrame(crop=40, size=20)
    train = cache.store("train", [*fit, *val], frame)
    test = cache.store("test", split.test, frame)
    assert sorted(store_ids(train)) == sorted([*fit, *val]) and sorted(store_ids(test)) == list(split.test)
    with open_store(test) as s:  # labels are the catalog rows of those galaxies
        order = store_ids(test)
        np.testing.assert_allclose(s.labels("gz_answers"), catalog.answers(order), atol=1e-6)
    splits = write_splits(train, fit, val, tmp_path / "run" / "splits.csv")
    check_no_leak(split.test, [train], [splits])
    with pytest.raises(AssertionError, match="test galaxies"):
        check_no_leak(split.test, [train, test], [splits])
    with pytest.raises(ValueError, match="outside its fit"):
        write_splits(test, fit, val, tmp_path / "bad.csv")
    row = mean_row(train, test, fit)
    assert row["fit_galaxies"] == len(fit) and 0 < row["rmse"] < 1
    assert set(row["rmse_per_question"]) == {f"q{k}" for k in range(1, 12)}


def test_rmse_over_answers_and_per_question():
    true = np.zeros((4, 37))
    pred = np.zeros((4, 37))
    pred[:, 0] = 0.37  # only Class1.1 is off
    facts = rmse_facts(pred, true)
    assert facts["rmse"] == pytest.approx(0.37 / np.sqrt(37), abs=1e-5)
    assert facts["rmse_per_question"]["q1"] == pytest.approx(0.37 / np.sqrt(3), abs=1e-5)
    assert facts["rmse_per_question"]["q2"] == 0


@pytest.fixture
def torch_threads_restored():
    """The rows train with one torch thread (``threads=1``); the test process gets its setting back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("torch_threads_restored")
def test_rows_train_without_test_galaxies_and_score_the_test_store(dev, tmp_path):
    catalog = read_dev_catalog(dev)
    split = split_dev(catalog.ids, n_test=2, seed=1, val_fraction=0.25)
    cache = StoreCache(catalog, tmp_path / "work")
    frame = IngestFrame(crop=48, size=32)  # the 32 px frame of resnet18 with input_size 32
    train = cache.store("train", [*split.training()[0], *split.training()[1]], frame)
    test = cache.store("test", split.test, frame)
    row = cnn_row("r", "resnet18", {"input_size": 32, "resnet_widths": [16, 32, 64, 128]}, train, test, split.training(), tmp_path / "runs",
                  budget_s=0.5, seed=0)  # fmt: skip
    assert row["steps"] >= 1 and row["fit_galaxies"] == 3 and row["val_galaxies"] == 1
    assert 0 < row["rmse"] < 1 and len(row["rmse_per_question"]) == 11
    card = json.loads((tmp_path / "runs" / "r" / "model_card.json").read_text())
    assert not any(k.startswith("test/") for k in card["metrics"])  # the run never saw a test galaxy
    ridge = ridge_row(train, test, split.training()[0], side=4, alphas=[1.0, 10.0])
    assert ridge["alpha"] in (1.0, 10.0) and ridge["fit_galaxies"] == 3 and 0 < ridge["rmse"] < 1
