"""Fine-tuning from a parent checkpoint (:mod:`models.lineage`, ``train_model(init_from=...)``) and recalibration
on a labelled set as a new model version (:mod:`models.calibration`), with real Lightning fits of a few steps
on tiny simulated HiTS-like stores."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from models.calibration import calibrate_checkpoint, store_logits
from models.checkpoints import CheckpointError, load_checkpoint
from models.lineage import read_parent
from models.realbogus import RealBogusModel
from models.realbogus_metrics import fit_temperature
from models.train import train_model
from pipeline.evaluation import threshold_at_fpr
from pipeline.ingest import ingest_labelled_triplets
from pipeline.scoring import score_store
from pipeline.simulate.transients import simulate_transients
from pipeline.store import open_store, sha256_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {"preset": "hits", "max_epochs": 1, "limit_train_batches": 2, "batch_size": 8}


def _store(root, name: str, n: int, seed: int):
    simulate_transients(n, root / f"sim_{name}", survey="hits", seed=seed, workers=1)
    report = ingest_labelled_triplets(root / f"sim_{name}", root / f"{name}.h5")
    assert report.n_ingested == n
    return root / f"{name}.h5"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two labelled stores of simulated HiTS triplets: the parent's training set and the 'broker's' set."""
    root = tmp_path_factory.mktemp("lineage")
    return _store(root, "parent", 40, seed=21), _store(root, "broker", 40, seed=22)


@pytest.fixture(scope="module")
def parent(stores, tmp_path_factory):
    """A Deep-HiTS checkpoint trained for 2 steps on the parent store."""
    out = tmp_path_factory.mktemp("parent_model")
    return Path(train_model("realbogus", [stores[0]], out, seed=0, **TINY).checkpoint)


# ---------------------------------------------------------------------------------------------- init-from
def test_init_from_copies_the_parent_weights_resets_the_temperature_and_refuses_another_net(parent):
    p = read_parent(parent)
    assert float(p.module.temperature) != 1.0
    torch.manual_seed(1)
    child = RealBogusModel("hits", **p.model_overrides({"lr": 0.01}))
    assert child.config.lr == 0.01 and child.config.conv == p.module.config.conv
    p.copy_weights_into(child)
    theirs = p.module.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in child.state_dict().items() if k != "temperature")
    assert float(child.temperature) == 1.0  # the child calibrates on its own validation split
    with pytest.raises(CheckpointError, match=r"stampflow-realbogus-hits .*do not fit the RealBogusModel"):
        p.copy_weights_into(RealBogusModel("hits", merge="mean"))  # another network


def test_a_fine_tuned_child_loads_with_weights_only_and_its_card_names_the_parent(stores, parent, tmp_path):
    parent_module, parent_card = load_checkpoint(parent)
    child = train_model("realbogus", [stores[1]], tmp_path / "child", seed=7, init_from=parent, **TINY)
    module, card = load_checkpoint(child.checkpoint)  # torch.load(weights_only=True)
    assert card["init_from"] == {
        "checkpoint": str(parent),
        "model_name": parent_card["model_name"],
        "model_version": parent_card["model_version"],
        "weights_sha256": parent_card["weights_sha256"],
    }
    assert card["seed"] == 7 and card["model_version"].endswith(f".ft{parent_card['weights_sha256'][:8]}")
    assert card["training_data_sha256"] != parent_card["training_data_sha256"]
    assert card["weights_sha256"] != parent_card["weights_sha256"]  # it trained
    # calibrated on its own validation split: the temperature is its own, the threshold at its rule
    assert card["temperature"] == pytest.approx(float(module.temperature))
    assert card["temperature"] != parent_card["temperature"] and card["threshold_fpr"] == 0.01
    # it started from the parent: after 2 steps it is far closer to the parent than a fresh net of its seed
    scratch = train_model("realbogus", [stores[1]], tmp_path / "scratch", seed=7, **TINY)
    fresh, _ = load_checkpoint(scratch.checkpoint)
    w = next(k for k in module.state_dict() if k.endswith("weight"))  # the first conv layer
    to_parent = float((module.state_dict()[w] - parent_module.state_dict()[w]).abs().mean())
    to_fresh = float((fresh.state_dict()[w] - parent_module.state_dict()[w]).abs().mean())
    assert to_parent < to_fresh / 5


def test_a_parent_of_another_preset_or_stamp_size_is_refused_naming_both(stores, parent, tmp_path):
    with pytest.raises(CheckpointError, match=r"preset 'hits'.*preset 'ztf'"):
        train_model(
            "realbogus", [stores[1]], tmp_path / "ztf", seed=0, init_from=parent, **{**TINY, "preset": "ztf"}
        )
    assert not (tmp_path / "ztf" / "model.ckpt").exists()
    p = read_parent(parent)
    with pytest.raises(CheckpointError, match=r"21x21 px.*63x63 px"):
        p.check_fits("realbogus", "hits", p.card["channels"], (4, 63, 63), "a 63x63 store")
    with pytest.raises(CheckpointError, match=r"channels: the model expects \['TEMPLATE'.*has \['science'"):
        p.check_fits("realbogus", "hits", ["science", "template", "difference", "snr"], (4, 21, 21), "s")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_parent(tmp_path / "missing.ckpt")


# ------------------------------------------------------------------------------------------- calibration
def test_calibrate_writes_a_new_version_with_the_fitted_temperature_and_threshold(stores, parent, tmp_path):
    broker = stores[1]
    parent_bytes = (parent.parent / "model_card.json").read_bytes()
    module, card = load_checkpoint(parent)
    summary = calibrate_checkpoint(parent, broker, tmp_path / "cal", fpr=0.1)
    new, new_card = load_checkpoint(summary["checkpoint"])  # still loads with weights_only=True
    # the same fit, by hand, on the same data
    logits, y, data = store_logits(module, card, broker, "real")
    temperature = fit_temperature(logits, y)
    rb = (1 - torch.softmax(logits.double() / temperature, dim=-1)[:, 0]).numpy()
    assert new_card["temperature"] == pytest.approx(temperature) == pytest.approx(float(new.temperature))
    assert new_card["threshold"] == threshold_at_fpr(y.numpy() == 1, rb, 0.1)["threshold"]
    calibration = new_card["calibration"]
    with open_store(broker) as store:
        assert calibration["data"]["source_sha256"] == store.attrs["source_sha256"]
        assert calibration["data"]["n_per_class"] == {
            "bogus": int((store.labels("real") == 0).sum()),
            "real": int((store.labels("real") == 1).sum()),
        }
    assert calibration["data"]["file_sha256"] == sha256_file(broker) and data == calibration["data"]
    assert (
        calibration["rule"] == {"rule": "threshold_at_fpr", "fpr": 0.1} and new_card["threshold_fpr"] == 0.1
    )
    assert calibration["before"]["temperature"] == pytest.approx(card["temperature"])
    assert calibration["before"]["threshold"] == card["threshold"]
    assert calibration["after"]["fpr"] <= 0.1 and calibration["after"]["nll"] <= calibration["before"]["nll"]
    for point in ("before", "after"):
        assert {"nll", "ece", "roc_auc", "fpr", "fnr"} <= set(calibration[point])
    # a new version with the same network weights, naming its parent; the parent is untouched
    assert new_card["calibrated_from"]["weights_sha256"] == card["weights_sha256"]
    assert new_card["model_version"] == f"{card['model_version']}.cal{sha256_file(broker)[:8]}"
    assert (
        "threshold_val_fpr" not in new_card
        and "threshold_val_fpr" in new_card["calibrated_from"]["training_calibration"]
    )
    same = {k: v for k, v in module.state_dict().items() if k != "temperature"}
    assert all(torch.equal(v, new.state_dict()[k]) for k, v in same.items())
    assert (parent.parent / "model_card.json").read_bytes() == parent_bytes
    # scores are never dropped: every row keeps rb whatever its label
    score_store(new, new_card, broker, tmp_path / "scored.parquet", backend="eager")
    table = pd.read_parquet(tmp_path / "scored.parquet")
    assert len(table) == 40 and table["rb"].notna().all()
    assert set(table["label"]) <= {"real", "bogus"}
    assert np.array_equal(table["label"] == "real", table["rb"] >= new_card["threshold"])


def test_calibrate_refuses_its_parents_folder_and_one_class_data(stores, parent, tmp_path):
    with pytest.raises(CheckpointError, match="is the folder of"):
        calibrate_checkpoint(parent, stores[1], parent.parent)
    one_class = tmp_path / "real_only.h5"
    shutil.copy(stores[1], one_class)
    with h5py.File(one_class, "r+") as f:
        f["labels/real"][...] = 1
    with pytest.raises(CheckpointError, match=r"40 real and 0 bogus .*needs both"):
        calibrate_checkpoint(parent, one_class, tmp_path / "cal")
    assert not (tmp_path / "cal" / "model.ckpt").exists()
