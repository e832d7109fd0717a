"""``stampflow train realbogus --init-from CKPT`` and ``stampflow calibrate``: the path a broker with its own
labels takes. Both exit 0 and print a JSON summary; the child card names its parent; the calibrated version
loads with ``weights_only=True``, keeps the parent's network weights and records its data, rule and metrics;
a store without the label is refused with exit code 2."""

from __future__ import annotations

import json

import pytest
import torch

from flows.cli import main as cli_main
from models.checkpoints import load_checkpoint, read_card
from pipeline.ingest import ingest_labelled_triplets
from pipeline.runs import MANIFEST_NAME
from pipeline.simulate.transients import simulate_transients
from pipeline.store import sha256_file


@pytest.fixture(scope="module")
def broker_store(tmp_path_factory):
    """A 'broker's' labelled store: 30 simulated HiTS triplets the tiny model never saw."""
    root = tmp_path_factory.mktemp("broker")
    simulate_transients(30, root / "sim", survey="hits", seed=9, workers=1)
    ingest_labelled_triplets(root / "sim", root / "stamps.h5")
    return root / "stamps.h5"


def _json_out(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_train_init_from_fine_tunes_the_parent_and_names_it(tiny_rb_model, broker_store, tmp_path, capsys):
    out = tmp_path / "child"
    argv = ["train", "realbogus", "--store", str(broker_store), "--preset", "hits", "--out", str(out)]
    argv += ["--max-epochs", "1", "--max-steps", "2", "--batch-size", "8", "--seed", "3"]
    assert cli_main([*argv, "--init-from", str(tiny_rb_model), "--threads", "1"]) == 0
    result = _json_out(capsys)
    assert result["checkpoint"] == str(out / "model.ckpt") and result["steps"] == 2
    parent = read_card(tiny_rb_model)
    _, card = load_checkpoint(out / "model.ckpt")
    assert card["init_from"]["weights_sha256"] == parent["weights_sha256"]
    assert card["init_from"]["model_version"] == parent["model_version"] and card["seed"] == 3
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    inputs = {r["path"] for r in manifest["stages"]["train"]["inputs"]}
    assert str(tiny_rb_model) in inputs  # the parent is an input of the stage (and of its cache key)


def test_calibrate_writes_a_new_version_and_prints_its_summary(tiny_rb_model, broker_store, tmp_path, capsys):
    out = tmp_path / "calibrated"
    argv = ["calibrate", "--model", str(tiny_rb_model), "--store", str(broker_store), "--out", str(out)]
    assert cli_main([*argv, "--fpr", "0.05"]) == 0
    summary = _json_out(capsys)
    assert summary["checkpoint"] == str(out / "model.ckpt")
    assert summary["rule"] == {"rule": "threshold_at_fpr", "fpr": 0.05}
    assert summary["data"]["file_sha256"] == sha256_file(broker_store) and summary["data"]["n_labelled"] == 30
    assert summary["after"]["fpr"] <= 0.05 and set(summary["before"]) == set(summary["after"])
    module, card = load_checkpoint(out / "model.ckpt")
    parent, parent_card = load_checkpoint(tiny_rb_model)
    assert card["calibrated_from"]["model_version"] == parent_card["model_version"] == summary["parent"]
    assert (
        card["threshold"] == summary["after"]["threshold"]
        and card["temperature"] == summary["after"]["temperature"]
    )
    theirs = parent.net.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in module.net.state_dict().items())  # the same network
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["stages"]["calibrate"]["outputs"]["checkpoint"] == str(out / "model.ckpt")


def test_calibrate_refuses_a_store_without_the_label_with_exit_code_2(
    tiny_rb_model, broker_store, tmp_path, capsys
):
    argv = [
        "calibrate",
        "--model",
        str(tiny_rb_model),
        "--store",
        str(broker_store),
        "--out",
        str(tmp_path / "c"),
    ]
    assert cli_main([*argv, "--labels-column", "drb"]) == 2
    assert "no label 'drb'" in capsys.readouterr().err
    assert not (tmp_path / "c" / "model.ckpt").exists()
