"""Every stage accounts for every input: inputs = outputs + rejected, flagged a subset of the outputs, in the
run manifest of the ingest, score and alert-scoring runs (real FITS triplets, a real tiny model, real alert
packets with a junk file and a duplicate); counts that do not add up raise instead of being recorded."""

from __future__ import annotations

import json
import shutil

import pytest

from flows.cli import main as cli_main
from flows.ingest_flow import ingest_flow
from flows.params import FitsSource
from flows.score_flow import score_flow
from flows.stages import StageCountMismatch, StageRecorder, check_counts, stage_counts
from pipeline.alerts import AlertScoreReport
from pipeline.alerts.outputs import CountMismatch
from pipeline.runs import MANIFEST_NAME
from tests.conftest import ZTF_ALERTS
from tests.pipeline.alerts.alert_helpers import manifest, write_ztf_checkpoint
from tests.pipeline.store.test_merge import triplet_folder


def _stages(path) -> dict:
    return json.loads(path.read_text())["stages"]


def _adds_up(counts: dict) -> bool:
    return (
        counts["inputs"] == counts["outputs"] + counts["rejected"]
        and 0 <= counts["flagged"] <= counts["outputs"]
    )


def test_counts_that_do_not_add_up_are_not_recorded(tmp_path):
    recorder = StageRecorder(tmp_path / MANIFEST_NAME)
    recorder.record(
        "good", [], config={}, counts=stage_counts(5, 3, rejected=2, flagged=1, reject_reasons={"x": 2})
    )
    assert _stages(tmp_path / MANIFEST_NAME)["good"]["counts"] == {
        "inputs": 5,
        "outputs": 3,
        "rejected": 2,
        "flagged": 1,
        "reject_reasons": {"x": 2},
    }
    with pytest.raises(StageCountMismatch, match="inputs 5 != outputs 3 \\+ rejected 1"):
        stage_counts(5, 3, rejected=1)
    with pytest.raises(StageCountMismatch, match="flagged 4"):
        stage_counts(3, 3, flagged=4)
    with pytest.raises(StageCountMismatch, match="reject reasons"):
        stage_counts(5, 3, rejected=2, reject_reasons={"x": 1})
    with pytest.raises(StageCountMismatch, match="'bad'"):  # a ready-made record is checked too
        recorder.write("bad", {"seconds": 0.0, "counts": {"inputs": 4, "ingested": 2, "rejected": 1}})
    assert set(_stages(tmp_path / MANIFEST_NAME)) == {"good"}
    # an ingest's record names its outputs "ingested"
    assert check_counts({"inputs": 4, "ingested": 3, "rejected": 1})["outputs"] == 3


def test_ingest_and_score_stages_add_up(tmp_path, tiny_rb_model, tiny_rb_store):
    folder = triplet_folder(tmp_path / "in", 6, "bad.fits")
    source = FitsSource(inputs=[folder], extensions=["SCIENCE", "TEMPLATE", "DIFFERENCE"], size_policy="pad")
    ingest_flow(source=source, out=tmp_path / "ingest" / "stamps.h5")
    ingest = _stages(tmp_path / "ingest" / MANIFEST_NAME)["ingest"]["counts"]
    assert _adds_up(ingest) and ingest["rejected"] >= 1 and ingest["outputs"] == ingest["ingested"] == 6
    out = tmp_path / "score" / "scored.parquet"
    result = score_flow(model=tiny_rb_model, store=tiny_rb_store, out=out, chunk_rows=16, backend="eager")
    score = _stages(out.with_name(MANIFEST_NAME))["score"]["counts"]
    assert score == {"inputs": 40, "outputs": 40, "rejected": 0, "flagged": result["n_flagged_masked"]}


def test_alert_scoring_stage_adds_up(tmp_path, capsys):
    ckpt = write_ztf_checkpoint(tmp_path / "model.ckpt")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = manifest()
    files = {r["file"] for r in rows if r["shape_sci"] != "63x63"} | {r["file"] for r in rows[:4]}
    for name in files:  # among them the 3 CCD-edge stamps: flagged
        shutil.copy(ZTF_ALERTS / name, inbox)
    n = len(files)
    shutil.copy(ZTF_ALERTS / rows[0]["file"], inbox / "copy_of_first.avro")  # a duplicate alert
    (inbox / "junk.avro").write_bytes(b"junk")
    out = tmp_path / "out"
    assert cli_main(["alerts", "score", str(inbox), "--model", str(ckpt), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {
        "inputs": n + 2,
        "scored": n,
        "flagged": report["n_flagged"],
        "rejected": {"not_avro": 1},
        "duplicates": 1,
    }
    assert report["flag_counts"]["flag_edge"] == 3 and report["n_flagged"] >= 3
    assert json.loads((out / "summary.json").read_text())["counts"] == report["counts"]
    stage = _stages(out / MANIFEST_NAME)["alerts_score"]
    assert _adds_up(stage["counts"]) and stage["counts"]["duplicates"] == 1
    counts = stage["counts"]
    assert (counts["inputs"], counts["outputs"], counts["rejected"]) == (n + 2, n, 2)
    assert stage["config"]["quality_thresholds"]["nbad"] == {"max": 0}
    # the report itself refuses counts that do not add up
    broken = AlertScoreReport(str(out), n_inputs=9, n_scored=7, n_rejected=1, reject_reasons={"not_avro": 1})
    with pytest.raises(CountMismatch, match="inputs 9 != scored 7"):
        broken.check()
