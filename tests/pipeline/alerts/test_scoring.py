"""Scoring alert packets without a store: a real ``ztf`` checkpoint on real packets into the Parquet
catalog, Avro broker records (published schema) and JSON lines; scores equal the model on the same stamps;
a Fink-style DataFrame scored row by row with rejects kept."""

from __future__ import annotations

import json
import shutil
import subprocess

import fastavro
import numpy as np
import pandas as pd
import pytest
from astropy.table import Table
from fastavro.validation import validate

from data_catalogs.alert_schemas import CLASSIFICATION_SCHEMA_PATH, classification_schema
from models.checkpoints import load_checkpoint
from pipeline.alerts import (
    AlertScorer,
    conform,
    decode_alert_file,
    read_classifications,
    score_alert_files,
    score_alert_frame,
)
from pipeline.scoring import Scorer
from tests.conftest import ZTF_ALERTS
from tests.pipeline.alerts.alert_helpers import manifest, rubin_sample_files, write_ztf_checkpoint
from tests.pipeline.scoring.scoring_helpers import gz_card, gz_model


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    ckpt = write_ztf_checkpoint(tmp_path_factory.mktemp("model") / "model.ckpt")
    module, card = load_checkpoint(ckpt)
    return Scorer(module, card)


@pytest.fixture(scope="module")
def packets(tmp_path_factory):
    """8 ZTF packets (3 cut by the CCD edge), a 30x30 and a 69x69 Rubin packet, and a junk file."""
    folder = tmp_path_factory.mktemp("packets")
    rows = manifest()
    chosen = [r for r in rows if r["shape_sci"] != "63x63"] + [r for r in rows if r["shape_sci"] == "63x63"][
        :5
    ]
    for row in chosen:
        shutil.copy(ZTF_ALERTS / row["file"], folder)
    rubin = {decode_alert_file(p).alerts[0].pixels.shape[1]: p for p in rubin_sample_files()}
    shutil.copy(rubin[30], folder)
    shutil.copy(rubin[69], folder)
    (folder / "junk.avro").write_bytes(b"nope")
    return folder


@pytest.fixture(scope="module")
def scored(scorer, packets, tmp_path_factory):
    out = tmp_path_factory.mktemp("scored")
    return score_alert_files([packets], scorer, out, jsonl=True, batch_alerts=4), out


def test_counts_and_outputs(scored):
    report, out = scored
    assert report.n_inputs == report.n_scored + report.n_rejected == 11
    assert report.n_scored == 9 and report.reject_reasons == {"not_avro": 1, "wrong_shape": 1}
    assert {p.name for p in out.iterdir()} == {
        "scored.parquet",
        "classifications.avro",
        "classifications.jsonl",
        "rejects.csv",
        "summary.json",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_scored"] == 9 and summary["model_name"] == "stampflow-realbogus-ztf"
    rejects = pd.read_csv(out / "rejects.csv")
    assert sorted(rejects["reason"]) == ["not_avro", "wrong_shape"]
    assert rejects.loc[rejects["reason"] == "wrong_shape", "error"].str.contains("69x69").all()


def test_scores_equal_the_model_on_the_same_stamps(scored, scorer):
    _report, out = scored
    table = Table.read(out / "scored.parquet")  # astropy: units, descriptions, meta kept
    assert table["ra"].unit == "deg" and table["jd"].unit == "d"
    assert table.meta["model_name"] == "stampflow-realbogus-ztf" and table.meta["task"] == "realbogus"
    df = table.to_pandas()
    for name in ("objectId", "candid", "rb", "rb_input", "drb", "p_bogus", "p_real", "label", "scored_at"):
        assert name in df.columns
    alerts = [decode_alert_file(s.split("#")[0]).alerts[0] for s in df["source"]]
    stamps = np.stack([conform(a.pixels, a.mask, (63, 63), a.row)[0] for a in alerts])
    masks = np.stack([conform(a.pixels, a.mask, (63, 63), a.row)[1] for a in alerts])
    expected = scorer.predict(stamps, masks)
    np.testing.assert_allclose(df[["p_bogus", "p_real"]].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(df["rb"], 1 - expected[:, 0], rtol=1e-5, atol=1e-6)
    ztf = df[df["survey"] == "ztf"]
    truth = {int(r["candid"]): float(r["rb"]) for r in manifest()}
    assert all(truth[c] == pytest.approx(v) for c, v in zip(ztf["candid"], ztf["rb_input"], strict=True))
    assert (df["n_masked"] > 0).sum() >= 4  # edge stamps (padding) and the Rubin 30x30 one


def test_broker_records_follow_the_published_schema(scored):
    _report, out = scored
    schema = classification_schema()
    assert CLASSIFICATION_SCHEMA_PATH.name == "stampflow.classification.avsc"
    assert [f["name"] for f in schema["fields"]] == [
        "objectId",
        "candid",
        "classifier_name",
        "classifier_version",
        "classifications",
        "scored_at",
    ]
    with open(out / "classifications.avro", "rb") as fh:
        reader = fastavro.reader(fh)
        assert reader.writer_schema["name"] == "stampflow.classification"
        records = list(reader)
    parsed = fastavro.parse_schema(schema)
    assert all(validate(r, parsed) for r in records)
    catalog = pd.read_parquet(out / "scored.parquet")
    assert [r["candid"] for r in records] == catalog["candid"].tolist()
    for rec, (_, row) in zip(records, catalog.iterrows(), strict=True):
        assert rec["objectId"] == row["objectId"] and rec["classifier_version"] == "0.0.0+untrained.s0"
        probs = {c["class_name"]: c["probability"] for c in rec["classifications"]}
        assert probs == pytest.approx({"bogus": row["p_bogus"], "real": row["p_real"]}, abs=1e-6)
        assert sum(probs.values()) == pytest.approx(1, abs=1e-5)
        assert rec["scored_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ") == row["scored_at"]
    lines = read_classifications(out / "classifications.jsonl")
    assert [ln["candid"] for ln in lines] == [r["candid"] for r in records]
    assert lines[0]["scored_at"] == catalog["scored_at"].iloc[0]


def test_frame_scoring_like_a_spark_udf(scored, scorer):
    """Fink's columns: cutouts as bytes or {fileName, stampData} structs, a candidate struct."""
    _, out = scored
    catalog = pd.read_parquet(out / "scored.parquet")
    ztf = catalog[catalog["survey"] == "ztf"].head(4)
    rows = []
    for k, source in enumerate(ztf["source"]):
        with open(source.split("#")[0], "rb") as fh:
            rec = next(fastavro.reader(fh))
        row = {"objectId": rec["objectId"], "candid": rec["candid"], "candidate": rec["candidate"]}
        for field in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            row[field] = rec[field] if k % 2 else rec[field]["stampData"]  # struct or bytes
        rows.append(row)
    rows.append({**rows[0], "cutoutScience": b"\xff\xd8\xff\xe0JFIF" + bytes(50)})  # a JPEG stamp
    rows.append({**rows[1], "cutoutTemplate": None})
    frame = pd.DataFrame(rows, index=[10, 11, 12, 13, 14, 15])
    result = score_alert_frame(frame, scorer)
    assert list(result.index) == [10, 11, 12, 13, 14, 15]
    np.testing.assert_allclose(result["rb"].iloc[:4], ztf["rb"], rtol=1e-5, atol=1e-6)
    assert list(result["candid"].iloc[:4]) == list(ztf["candid"])
    assert list(result["reason"]) == ["", "", "", "", "not_fits", "no_cutouts"]
    assert result["rb"].iloc[4:].isna().all() and "JPEG" in result.loc[14, "error"]
    assert set(result["classifier_name"]) == {"stampflow-realbogus-ztf"}


def test_only_real_bogus_models_score_alerts():
    with pytest.raises(ValueError, match="real-bogus"):
        AlertScorer(Scorer(gz_model(), gz_card()))


def test_a_rerun_removes_the_partial_files_of_a_killed_run(scorer, packets, tmp_path):
    """A killed ``stampflow alerts score`` leaves hidden ``.<name>.partial-<pid>`` files; the next run
    deletes those of processes that are gone and keeps those of a writer still running."""
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    running = subprocess.Popen(["sleep", "60"])
    names = ["classifications.avro", "classifications.jsonl", "scored.parquet", "rejects.csv", "summary.json"]
    try:
        for name in names:
            (out / f".{name}.partial-{gone.pid}").touch()
            (out / f".{name}.partial-{running.pid}").touch()
        report = score_alert_files([packets], scorer, out, jsonl=True)
        left = sorted(p.name for p in out.glob(".*.partial-*"))
    finally:
        running.kill()
        running.wait()
    assert report.n_scored > 0
    assert left == sorted(f".{name}.partial-{running.pid}" for name in names)
