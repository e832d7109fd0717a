"""The parts the flows are made of: content keys, cached outputs that changed, retries on transient I/O
errors, chunked ingest equal to one pass (FITS and alert packets), training as a subprocess, command-line
options handed on, deployments with cron schedules, the night placeholder."""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from prefect.states import Completed, Failed

from flows.caching import content_key, fingerprints, outputs_intact, retry_on_transient_io
from flows.cli import main as cli_main
from flows.cli_common import extra_argv
from flows.ingest_flow import ingest_chunk, ingest_flow
from flows.nightly import resolve_night, with_night
from flows.params import AlertSource, FitsSource, TrainParams
from flows.serve import DeploymentSpec, load_specs, to_deployment
from flows.train_flow import last_json_object, train_command
from models.train_options import add_train_arguments
from pipeline.ingest import ingest_source
from pipeline.store import open_store
from tests.conftest import ZTF_TRIPLETS
from tests.pipeline.store.test_merge import triplet_folder

ZTF_EXTENSIONS = ["SCIENCE", "TEMPLATE", "DIFFERENCE"]


def _same_stores(a_path, b_path) -> None:
    with open_store(a_path) as a, open_store(b_path) as b:
        assert np.array_equal(a.stamps(), b.stamps()) and np.array_equal(a.mask(), b.mask())
        assert a.catalog().equals(b.catalog()) and a.channels == b.channels
        assert a.attrs["source_sha256"] == b.attrs["source_sha256"]


def test_content_key_follows_the_bytes_and_fingerprints_the_outputs(tmp_path):
    (tmp_path / "a").write_bytes(b"one")
    key = content_key([tmp_path])
    (tmp_path / "a").write_bytes(b"two")
    assert content_key([tmp_path]) != key
    (tmp_path / "a").write_bytes(b"one")
    assert content_key([tmp_path]) == key
    result = {"outputs": fingerprints([tmp_path / "a"])}
    assert outputs_intact(result)
    (tmp_path / "a").write_bytes(b"other length")
    assert not outputs_intact(result)
    (tmp_path / "a").unlink()
    assert not outputs_intact(result) and outputs_intact({"outputs": fingerprints([tmp_path / "a"])})


def test_only_transient_io_errors_are_retried():
    assert retry_on_transient_io(None, None, Failed(data=ConnectionResetError("reset by peer")))
    assert retry_on_transient_io(None, None, Failed(data=OSError(5, "Input/output error")))
    assert not retry_on_transient_io(None, None, Failed(data=FileNotFoundError("gone")))
    assert not retry_on_transient_io(None, None, Failed(data=ValueError("bad input")))
    assert not retry_on_transient_io(None, None, Completed(data=1))


def test_ingest_task_unit(tmp_path):
    files = sorted(ZTF_TRIPLETS.glob("*.fits.gz"))[:3]
    source = FitsSource(inputs=files, extensions=ZTF_EXTENSIONS, stamp_shape=(63, 63), size_policy="pad")
    out = tmp_path / "s.h5"
    result = ingest_chunk.fn(source, files, "key", out, tmp_path / "r.csv")
    assert result["report"]["n_ingested"] == 3 and result["report"]["store"] == str(out)
    assert set(result["outputs"]) == {str(out), str(tmp_path / "r.csv")} and outputs_intact(result)


def test_chunked_fits_ingest_equals_one_pass_and_a_changed_output_is_recomputed(tmp_path):
    folder = triplet_folder(tmp_path / "in", 12, "bad.fits")
    # no stamp size given: the first chunk fixes it (63x63); CCD-edge stamps later are padded
    source = FitsSource(inputs=[folder], extensions=ZTF_EXTENSIONS, size_policy="pad")
    out = tmp_path / "run" / "stamps.h5"
    report = ingest_flow(source=source, out=out, chunk_files=4)
    one = ingest_source(source, tmp_path / "one" / "stamps.h5")
    assert (report["n_inputs"], report["n_ingested"], report["n_rejected"]) == (13, 12, 1)
    _same_stores(out, one.store)
    pd.testing.assert_frame_equal(pd.read_csv(report["rejects"]), pd.read_csv(one.rejects))
    manifest = json.loads((out.parent / "manifest.json").read_text())["stages"]["ingest"]
    assert manifest["tasks"] == {"Completed": 5} and manifest["counts"]["inputs"] == 13
    # the store is replaced behind the cache's back: the cached merge is not trusted, it runs again
    shutil.copy(one.store, out)
    ingest_flow(source=source, out=out, chunk_files=4)
    manifest = json.loads((out.parent / "manifest.json").read_text())["stages"]["ingest"]
    assert manifest["tasks"] == {"Cached": 4, "Recomputed": 1}


def test_alert_packets_are_ingested_in_chunks(tmp_path, ztf_alert_paths):
    folder = tmp_path / "alerts"
    folder.mkdir()
    for path in ztf_alert_paths:
        shutil.copy(path, folder)
    report = ingest_flow(
        source=AlertSource(inputs=[folder]), out=tmp_path / "run" / "stamps.h5", chunk_files=3
    )
    one = ingest_source(AlertSource(inputs=[folder]), tmp_path / "one" / "stamps.h5")
    assert report["n_inputs"] == one.n_inputs == report["n_ingested"] + report["n_rejected"]
    assert report["n_ingested"] == one.n_ingested > 0
    with open_store(report["store"]) as a, open_store(one.store) as b:
        assert np.array_equal(a.stamps(), b.stamps()) and a.catalog().equals(b.catalog())


def test_training_command_and_its_result():
    params = TrainParams(task="realbogus", stores=[Path("a.h5"), Path("b.h5")], out=Path("m"), preset="hits")
    command = train_command(params.model_copy(update={"threads": 1, "extra_args": ["--max-steps", "7"]}))
    assert command[1:4] == ["-m", "models.train", "realbogus"]
    assert command[command.index("--store") + 1] == "a.h5" and command.count("--store") == 2
    assert command[-2:] == ["--max-steps", "7"] and command[command.index("--threads") + 1] == "1"
    assert "--threads" in train_command(params)  # this process's thread count is handed on
    text = 'GPU available: False\n{\n  "checkpoint": "m/model.ckpt",\n  "metrics": {"a": 1}\n}\n'
    assert last_json_object(text) == {"checkpoint": "m/model.ckpt", "metrics": {"a": 1}}
    with pytest.raises(ValueError, match="no JSON"):
        last_json_object("Traceback ...")


def test_new_training_options_are_handed_on_verbatim():
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    parser.add_argument("--fancy", action="store_true")
    args = parser.parse_args(
        ["--store", "s.h5", "--out", "o", "--preset", "p", "--max-epochs", "3", "--fancy"]
    )
    assert extra_argv(parser, args, {"store", "out", "preset", "max_epochs"}) == ["--fancy"]


def test_deployments_file_and_cron_schedule(tmp_path):
    path = tmp_path / "deployments.json"
    spec = {"flow": "nightly", "name": "ztf", "cron": "0 9 * * *", "timezone": "America/Santiago"}
    path.write_text(json.dumps({"deployments": [{**spec, "parameters": {"model": "m.ckpt"}}]}))
    (loaded,) = load_specs(path)
    deployment = to_deployment(loaded)
    schedule = deployment.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("0 9 * * *", "America/Santiago")
    assert deployment.entrypoint == "flows.serve.served_nightly" and deployment.parameters == {
        "model": "m.ckpt"
    }
    path.write_text(json.dumps([{"flow": "nope", "name": "x"}]))
    with pytest.raises(ValueError, match="flow"):
        load_specs(path)
    assert to_deployment(DeploymentSpec(flow="score", name="adhoc")).schedules == []
    assert cli_main(["serve", "--config", str(tmp_path / "missing.json")]) == 2


def test_the_night_placeholder():
    assert resolve_night("2026-01-02") == "2026-01-02"
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    assert resolve_night(None, "Pacific/Kiritimati") == today
    source = with_night(FitsSource(inputs=[Path("/data/{night}/a"), Path("/b")]), "2026-03-02")
    assert source.inputs == [Path("/data/2026-03-02/a"), Path("/b")]


def test_unreadable_and_non_utf8_inputs_are_rejects_in_the_chunked_flow(tmp_path):
    from tests.pipeline.ingest.test_driver import _folder_with_bad_inputs

    folder = tmp_path / "in"
    folder.mkdir()
    expected = _folder_with_bad_inputs(folder)
    out = tmp_path / "run" / "stamps.h5"
    try:
        report = ingest_flow(source=FitsSource(inputs=[folder]), out=out, chunk_files=2)
        again = ingest_flow(source=FitsSource(inputs=[folder]), out=out, chunk_files=2)
    finally:
        (folder / "locked.fits").chmod(0o644)
    assert report["n_inputs"] == 6 == report["n_ingested"] + report["n_rejected"]
    assert report["n_rejected"] == len(expected) and again["n_ingested"] == report["n_ingested"]
    rejects = pd.read_csv(report["rejects"])
    assert {Path(s).name: r for s, r in zip(rejects["source"], rejects["reason"], strict=True)} == expected
    manifest = json.loads((out.parent / "manifest.json").read_text())["stages"]["ingest"]
    assert set(manifest["tasks"]) == {"Cached"}  # the rerun does no work twice
    assert len(manifest["inputs"]) == 6
