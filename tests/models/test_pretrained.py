"""The shipped ``ztf_fast`` model (``models/pretrained/ztf_fast/``): listed by ``stampflow models`` with its
card, resolved by name, loadable with ``weights_only`` semantics, and usable as ``--model ztf_fast`` on real
ZTF packets with no training step."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch

from flows.cli import main as cli_main
from models.checkpoints import load_checkpoint
from models.pretrained import SHIPPED_DIR, UnknownModel, resolve_checkpoint, shipped_models
from tests.conftest import ZTF_ALERTS

#: Three real ZTF packets of the samples (tests/data/ztf_alerts/A_ztf-avro-alert).
PACKETS = sorted((ZTF_ALERTS / "A_ztf-avro-alert").glob("*.avro"))[:3]


def test_models_command_lists_ztf_fast_with_its_card(capsys):
    assert cli_main(["models"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    row = rows["ztf_fast"]
    assert (row["task"], row["preset"]) == ("realbogus", "ztf_fast")
    assert 0.0 < row["threshold"] < 1.0
    assert row["training_command"].startswith("python benchmarks/realbogus_real.py --train-all")
    assert "--preset ztf_fast" in row["training_command"]
    assert row["size_bytes"] < 5_000_000  # small enough for the package
    card = json.loads((SHIPPED_DIR / "ztf_fast" / "model_card.json").read_text())
    alerts = card["training_alerts"]
    assert alerts["count"] == alerts["real"] + alerts["bogus"] > 0
    assert len(alerts["candids_sha256"]) == 64 and alerts["nights"] > 1
    if "real_data_metrics" in card:  # present when the card was made with --folds-result
        assert row["real_data_metrics"]["pooled"] == card["real_data_metrics"]["pooled"]


def test_resolve_and_load_with_weights_only():
    path = resolve_checkpoint("ztf_fast")
    assert path == SHIPPED_DIR / "ztf_fast" / "model.ckpt" == shipped_models()["ztf_fast"]
    torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and containers only
    module, card = load_checkpoint(path)
    assert card["architecture"] == "ztf_fast" and not module.training
    assert sum(p.numel() for p in module.parameters()) == card["parameters"]


@pytest.mark.prefect
def test_alerts_score_with_the_shipped_name(tmp_path, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for packet in PACKETS:
        shutil.copy(packet, inbox)
    out = tmp_path / "out"
    code = cli_main(["alerts", "score", str(inbox), "--model", "ztf_fast", "--out", str(out), "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["n_scored"] == 3
    scored = pd.read_parquet(out / "scored.parquet")
    assert len(scored) == 3 and scored["rb"].between(0.0, 1.0).all()


def test_unknown_name_fails_with_exit_2_and_lists_shipped(tmp_path, capsys):
    with pytest.raises(UnknownModel, match="ztf_fast"):
        resolve_checkpoint("no_such_model")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(PACKETS[0], inbox)
    args = ["alerts", "score", str(inbox), "--model", "no_such_model", "--out", str(tmp_path / "o")]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "no_such_model" in err and "ztf_fast" in err
