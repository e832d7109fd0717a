"""``stampflow alerts score`` (once and --follow), ``stampflow alerts ingest`` and the Spark-facing
``score_alerts(frame)`` on real packets with a real ``ztf`` checkpoint."""

from __future__ import annotations

import json
import shutil

import fastavro
import pandas as pd
import pytest

from flows.cli import main as cli_main
from models import alert_scoring
from pipeline.store import open_store
from tests.conftest import ZTF_ALERTS
from tests.pipeline.alerts.alert_helpers import manifest, write_ztf_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_ztf_checkpoint(tmp_path_factory.mktemp("model") / "model.ckpt")


@pytest.fixture()
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    for row in manifest()[40:46]:
        shutil.copy(ZTF_ALERTS / row["file"], folder)
    (folder / "junk.avro").write_bytes(b"junk")
    return folder


def test_score_once(ckpt, inbox, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main(
        ["alerts", "score", str(inbox), "--model", str(ckpt), "--out", str(out), "--jsonl", "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["n_inputs"], report["n_scored"], report["reject_reasons"]) == (7, 6, {"not_avro": 1})
    assert len(pd.read_parquet(out / "scored.parquet")) == 6
    assert len((out / "classifications.jsonl").read_text().splitlines()) == 6
    with open(out / "classifications.avro", "rb") as fh:
        assert len(list(fastavro.reader(fh))) == 6


def test_exit_codes(ckpt, inbox, tmp_path, capsys):
    assert (
        cli_main(
            [
                "alerts",
                "score",
                str(inbox),
                "--model",
                str(tmp_path / "no.ckpt"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no checkpoint" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.avro").write_bytes(b"nope")
    assert cli_main(["alerts", "score", str(junk), "--model", str(ckpt), "--out", str(tmp_path / "o2")]) == 1
    assert "nothing could be scored" in capsys.readouterr().err
    file_input = str(next(inbox.glob("*.avro")))
    assert (
        cli_main(
            ["alerts", "score", file_input, "--model", str(ckpt), "--out", str(tmp_path / "o3"), "--follow"]
        )
        == 1
    )


def test_follow_then_restart(ckpt, inbox, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["alerts", "score", str(inbox), "--model", str(ckpt), "--out", str(out), "--follow", "--json"]
    fast = ["--poll", "0.05", "--settle", "0.1", "--idle-exit", "0.5", "--max-batch-files", "4"]
    assert cli_main(args + fast) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["batches"], first["files"]) == (2, 7)
    batches = sorted(out.glob("batches/*"))
    assert [b.name for b in batches] == ["000001", "000002"]  # 7 files, at most 4 per batch
    scored = pd.concat(pd.read_parquet(b / "scored.parquet") for b in batches)
    assert len(scored) == scored["candid"].nunique() == 6
    assert cli_main(args + fast) == 0  # restart: nothing new, nothing rescored
    assert json.loads(capsys.readouterr().out)["batches"] == 0
    assert [b.name for b in sorted(out.glob("batches/*"))] == ["000001", "000002"]


def test_ingest_command(tmp_path, capsys):
    out = tmp_path / "stamps.h5"
    assert (
        cli_main(["alerts", "ingest", str(ZTF_ALERTS / "A_ztf-avro-alert"), "--out", str(out), "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["n_ingested"] == 16 and report["n_inputs"] == 16
    with open_store(out) as store:
        assert store.n == 16 and store.stamp_shape == (63, 63)


def test_score_alerts_frame_with_the_model_from_the_environment(ckpt, monkeypatch):
    rows = []
    for row in manifest()[:3]:
        with open(ZTF_ALERTS / row["file"], "rb") as fh:
            rec = next(fastavro.reader(fh))
        rows.append(
            {
                k: rec[k]
                for k in (
                    "objectId",
                    "candid",
                    "candidate",
                    "cutoutScience",
                    "cutoutTemplate",
                    "cutoutDifference",
                )
            }
        )
    frame = pd.DataFrame(rows)
    monkeypatch.delenv(alert_scoring.MODEL_ENV, raising=False)
    with pytest.raises(ValueError, match="STAMPFLOW_ALERT_MODEL"):
        alert_scoring.score_alerts(frame)
    monkeypatch.setenv(alert_scoring.MODEL_ENV, str(ckpt))
    alert_scoring._cached_scorer.cache_clear()
    first = alert_scoring.score_alerts(frame)
    second = alert_scoring.score_alerts(frame.iloc[1:])
    info = alert_scoring._cached_scorer.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # loaded once per process
    assert list(first["candid"]) == [int(r["candid"]) for r in manifest()[:3]]
    assert first["reason"].eq("").all() and first["rb"].between(0, 1).all()
    pd.testing.assert_series_equal(second["rb"], first["rb"].iloc[1:])
