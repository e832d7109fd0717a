"""The nightly flow (ingest -> score -> report) on a tiny simulated night: a rerun is all cache hits and
rewrites nothing; one bad file is rejected with its reason while the night completes and publishes counts."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from astropy.table import Table

from flows.nightly import nightly_flow
from flows.params import FitsSource
from pipeline.io import REASONS
from pipeline.store import open_store
from tests.flows.conftest import HITS_EXTENSIONS, copy_night
from tests.flows.prefect_api import artifact_markdown, artifact_table, task_run_states

OUTPUTS = ("stamps.h5", "rejects.csv", "scored.parquet", "report/index.html", "report/metrics.json")


def _snapshot(run):
    return {name: ((run / name).read_bytes(), (run / name).stat().st_mtime_ns) for name in OUTPUTS}


def _night(inputs, model, run, truth, **extra):
    return nightly_flow(
        source=FitsSource(inputs=[inputs], extensions=HITS_EXTENSIONS),
        model=model,
        run_dir=run,
        labels=truth,
        night="2026-01-02",
        return_state=True,
        **extra,
    )


def test_nightly_rerun_recomputes_nothing_and_writes_identical_outputs(tiny_rb_model, night_folder, tmp_path):
    inputs = copy_night(night_folder, tmp_path / "in")
    truth = night_folder.parent / "truth.csv"
    run = tmp_path / "run"
    chunks = {"chunk_files": 5, "chunk_rows": 5}  # 12 files, 12 stamps: 3 chunks each, then merge/join
    first = _night(inputs, tiny_rb_model, run, truth, **chunks)
    assert first.is_completed()
    done = first.result()
    n_tasks = 3 + 1 + 3 + 1 + 1  # ingest chunks, merge, score chunks, join, report
    assert done["tasks"] == {"Completed": n_tasks}
    assert done["ingest"]["n_ingested"] == 12 and done["score"]["n_scored"] == 12
    before = _snapshot(run)
    with open_store(run / "stamps.h5") as store:  # the merged store is in input (file name) order
        assert list(store.catalog()["object_id"]) == sorted(p.name[:-8] for p in inputs.glob("*.fits.gz"))

    second = _night(inputs, tiny_rb_model, run, truth, **chunks)
    assert second.is_completed()
    again = second.result()
    assert again["tasks"] == {"Cached": n_tasks}
    states = task_run_states(second.state_details.flow_run_id, expected=n_tasks)
    assert len(states) == n_tasks and set(states.values()) == {"Cached"}, states
    assert _snapshot(run) == before  # same bytes, never rewritten
    assert again["counts"] == done["counts"] and again["report"] == done["report"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["nightly"]["tasks"] == {"Cached": n_tasks}
    inputs_listed = {r["path"]: r["sha256"] for r in manifest["stages"]["ingest"]["inputs"]}
    assert len(inputs_listed) == 12 and all(len(d) == 64 for d in inputs_listed.values())

    # a changed input file is recomputed (its chunk, the merge, and everything downstream)
    victim = sorted(inputs.glob("*.fits.gz"))[0]
    victim.write_bytes(sorted(inputs.glob("*.fits.gz"))[1].read_bytes())
    third = _night(inputs, tiny_rb_model, run, truth, **chunks).result()
    assert third["tasks"]["Cached"] == 2  # the two untouched ingest chunks
    assert third["tasks"]["Completed"] == n_tasks - 2


def test_one_bad_file_is_rejected_and_the_night_completes_with_counts(tiny_rb_model, night_folder, tmp_path):
    inputs = copy_night(night_folder, tmp_path / "in")
    (inputs / "broken.fits").write_bytes(b"SIMPLE  =   garbage")
    run = tmp_path / "run"
    state = _night(inputs, tiny_rb_model, run, night_folder.parent / "truth.csv")
    assert state.is_completed()
    result = state.result()
    assert (result["ingest"]["n_inputs"], result["ingest"]["n_ingested"], result["ingest"]["n_rejected"]) == (
        13,
        12,
        1,
    )
    rejects = pd.read_csv(run / "rejects.csv")
    assert len(rejects) == 1 and rejects["source"][0] == str(inputs / "broken.fits")
    reason = rejects["reason"][0]
    assert reason in REASONS and "broken.fits" in rejects["error"][0]
    assert len(Table.read(run / "scored.parquet")) == 12

    flow_run_id = state.state_details.flow_run_id
    table = artifact_table(flow_run_id, "nightly-table")
    assert table is not None
    values = {row["quantity"]: row["value"] for row in table}
    assert values["inputs"] == 13 and values["ingested"] == 12 and values["rejected"] == 1
    assert values[f"rejected: {reason}"] == 1 and values["scored"] == 12
    assert "ROC AUC" in values  # the labelled night also carries the report's headline numbers
    markdown = artifact_markdown(flow_run_id, "nightly-summary")
    assert markdown is not None and "| inputs | 13 |" in markdown and "| rejected | 1 |" in markdown


@pytest.mark.parametrize("night", ["2026-03-02"])
def test_night_placeholder_names_the_run_folder_and_inputs(tiny_rb_model, night_folder, tmp_path, night):
    copy_night(night_folder, tmp_path / "incoming" / night)
    result = nightly_flow(
        source=FitsSource(inputs=[tmp_path / "incoming" / "{night}"], extensions=HITS_EXTENSIONS),
        model=tiny_rb_model,
        run_dir=tmp_path / "runs" / "{night}",
        night=night,
    )
    assert result["run_dir"] == str(tmp_path / "runs" / night)
    assert result["ingest"]["n_ingested"] == 12 and result["report"] is None
    assert (tmp_path / "runs" / night / "scored.parquet").is_file()


def test_nightly_command(tiny_rb_model, night_folder, tmp_path, capsys):
    from flows.cli import main

    inputs = copy_night(night_folder, tmp_path / "in")
    argv = ["nightly", str(inputs), "--model", str(tiny_rb_model), "--run-dir", str(tmp_path / "{night}")]
    argv += ["--night", "2026-01-05", "--extensions", ",".join(HITS_EXTENSIONS)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "night 2026-01-05: inputs=12 ingested=12 rejected=0 scored=12" in printed
    assert (tmp_path / "2026-01-05" / "scored.parquet").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.fits").write_text("not fits")
    argv = ["nightly", str(empty), "--model", str(tiny_rb_model), "--run-dir", str(tmp_path / "e"), "--json"]
    assert main(argv) == 1  # nothing could be ingested: the night completes, exit 1, rejects written
    assert json.loads(capsys.readouterr().out)["ingest"]["n_rejected"] == 1
    assert len(pd.read_csv(tmp_path / "e" / "rejects.csv")) == 1
