"""``stampflow score`` and ``stampflow report`` on checkpoints written by ``models.train.train_model``: the
catalog equals the loaded model called directly on the raw stamps, the report folder is complete, and a
store that does not fit the model card is refused with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from astropy.table import Table

from flows.cli import main as cli_main
from models.checkpoints import load_checkpoint
from models.train import train_model
from pipeline.store import StampStoreWriter, open_store
from tests.pipeline.scoring.scoring_helpers import gz_fractions, ztf_like_ids

pytestmark = pytest.mark.slow

HITS_CHANNELS = ["template", "science", "difference", "snr"]


def _write_hits_store(path, n=48, seed=0):
    rng = np.random.default_rng(seed)
    stamps = rng.normal(0, 1, (n, 4, 21, 21)).astype(np.float32)
    real = (np.arange(n) % 2).astype(np.int8)
    yy, xx = np.mgrid[:21, :21]
    stamps[real == 1, 1:] += 5 * np.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 4.0).astype(np.float32)
    mask = np.zeros(stamps.shape, bool)
    mask[5, :, :, :2] = True
    stamps[mask] = 0.0
    catalog = {"object_id": [f"o{i}" for i in range(n)], "source": ["sim"] * n, **ztf_like_ids(n)}
    with StampStoreWriter(path, HITS_CHANNELS, (21, 21), chunk_rows=16) as writer:
        writer.append(stamps, mask, catalog, {"real": real})
    return path


def _write_gz_store(path, n=24, seed=1):
    rng = np.random.default_rng(seed)
    stamps = rng.gamma(2.0, 1.0, (n, 3, 69, 69)).astype(np.float32)
    catalog = {"object_id": [f"g{i}" for i in range(n)], "source": ["sim"] * n, "GalaxyID": np.arange(n) + 7}
    with StampStoreWriter(path, ["g", "r", "i"], (69, 69), chunk_rows=8) as writer:
        writer.append(stamps, None, catalog, {"gz_answers": gz_fractions(n, seed)})
    return path


TASKS = {
    "realbogus": ("hits", _write_hits_store),
    "morphology": ("small", _write_gz_store),
}


@pytest.fixture(scope="module", params=sorted(TASKS))
def trained(request, tmp_path_factory):
    """(task, store, checkpoint) of a quick real training run (1 epoch, 2 batches)."""
    task = request.param
    preset, write = TASKS[task]
    root = tmp_path_factory.mktemp(task)
    store = write(root / "stamps.h5")
    result = train_model(
        task,
        [store],
        root / "model",
        preset=preset,
        max_epochs=1,
        limit_train_batches=2,
        batch_size=8,
        seed=0,
    )
    return task, store, result.checkpoint


def _direct(module, stamps: np.ndarray) -> np.ndarray:
    """The loaded model called directly on raw stamps (both models normalise inside ``forward``)."""
    x = torch.from_numpy(stamps)
    with torch.no_grad():
        out = module.predict_tensor(x) if hasattr(module, "predict_tensor") else module.predict_step(x, 0)
    return out.numpy()


def test_score_and_report_a_trained_checkpoint(trained, tmp_path, capsys):
    task, store, ckpt = trained
    scored = tmp_path / "scored.parquet"
    argv = ["score", "--model", ckpt, "--store", str(store), "--out", str(scored), "--batch-size", "10"]
    assert cli_main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    module, card = load_checkpoint(ckpt)
    with open_store(store) as opened:
        stamps = opened.stamps()
    expected = _direct(module, stamps)
    table = Table.read(scored)
    assert summary["n_scored"] == len(table) == len(stamps)
    assert table.meta["model_version"] == card["model_version"] == summary["model_version"]
    assert table.meta["model_sha256"] == card["weights_sha256"]
    if task == "realbogus":
        bogus = card["output_names"].index("bogus")
        np.testing.assert_allclose(table["rb"], 1 - expected[:, bogus], atol=1e-5)
        threshold = card.get("threshold", 0.5)
        # The label is the threshold applied to the published rb (the fast path may differ from eager
        # PyTorch by ~1e-6, which can flip a score that sits on the threshold).
        assert list(table["label"]) == list(np.where(np.asarray(table["rb"]) >= threshold, "real", "bogus"))
        assert table["flag_masked"].tolist() == [i == 5 for i in range(len(table))]
        assert table["candid"].dtype == np.int64
    else:
        np.testing.assert_allclose(table["Q1_smooth"], expected[:, 0], atol=1e-5)
        np.testing.assert_allclose(table["p_spiral"], expected[:, 7], atol=1e-5)
    report = tmp_path / "report"
    assert cli_main(["report", "--scored", str(scored), "--labels", str(store), "--out", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["n"] == len(stamps)
    assert all((report / name).is_file() for name in metrics["files"])
    assert "gallery.png" in metrics["files"] or "No mistakes" in (report / "index.html").read_text()


def test_score_refuses_a_store_that_does_not_fit_the_card(trained, tmp_path, capsys):
    task, _, ckpt = trained
    other = (
        _write_gz_store(tmp_path / "gz.h5") if task == "realbogus" else _write_hits_store(tmp_path / "rb.h5")
    )
    out = tmp_path / "scored.parquet"
    assert cli_main(["score", "--model", ckpt, "--store", str(other), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "['g', 'r', 'i']" in err and str(HITS_CHANNELS) in err
    assert "69x69" in err and "21x21" in err
    assert not out.exists()
