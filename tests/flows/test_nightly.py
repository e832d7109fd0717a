"""The nightly flow (ingest -> score -> report) on a tiny simulated night: a rerun is all cache hits and
rewrites nothing; one bad file is rejected with its reason while the night completes and publishes counts;
an empty or missing night ends Failed with its summary; a failed rerun with old options leaves the good
night's outputs intact; stampflow's log lines reach the run's logs in Prefect; the command checks the
model and the label join before it ingests anything."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from astropy.table import Table

from flows.nightly import nightly_flow
from flows.params import FitsSource
from pipeline.io import REASONS
from pipeline.store import open_store
from tests.flows.conftest import HITS_EXTENSIONS, copy_night
from tests.flows.prefect_api import artifact_markdown, artifact_table, run_log_lines, task_run_states

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
    assert again["counts"] == done["counts"]
    same_report = [json.dumps(r["report"]).replace(r["run"], "<run>") for r in (done, again)]
    assert same_report[0] == same_report[1] and '"<run>/report/index.html"' in same_report[0]
    assert (
        again["run"] != done["run"]
        and (run / "current").resolve() == run / "runs" / again["run"].split("/")[-1]
    )
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["nightly"]["tasks"] == {"Cached": n_tasks}
    assert manifest["stages"]["nightly"]["flow_run_id"] == str(second.state_details.flow_run_id)
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
    assert "night 2026-01-05 completed: inputs=12 ingested=12 rejected=0 scored=12" in printed
    assert (tmp_path / "2026-01-05" / "scored.parquet").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.fits").write_text("not fits")
    argv = ["nightly", str(empty), "--model", str(tiny_rb_model), "--run-dir", str(tmp_path / "e"), "--json"]
    assert main(argv) == 1  # nothing could be ingested: the night fails, exit 1, its rejects kept
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["status"] == "failed" and result["ingest"]["n_rejected"] == 1
    assert len(pd.read_csv(result["ingest"]["rejects"])) == 1
    assert not (tmp_path / "e" / "current").exists()  # nothing published
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nothing was ingested" in errors[0] and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (["--stamp-size", "30"], 2, "stamp size: the model expects 21x21 px"),
        (["--labels", "{truth}", "--on", "candid"], 2, "add --header-keys CANDID"),
        (["--labels", "{truth}", "--on", "nope"], 2, "has no column 'nope'"),
        (["--model", "{missing}"], 2, "no such checkpoint"),
        (["--night", "2026-01-09"], 1, "no such file or folder"),
    ],
)
def test_nightly_command_checks_before_ingest(
    tiny_rb_model, night_folder, tmp_path, capsys, options, code, message
):
    from flows.cli import main

    truth = night_folder.parent / "truth.csv"
    pd.read_csv(truth).assign(candid=range(12)).to_csv(tmp_path / "truth.csv", index=False)
    values = {"truth": str(tmp_path / "truth.csv"), "missing": str(tmp_path / "no.ckpt")}
    argv = [
        "nightly",
        str(tmp_path / "{night}"),
        "--model",
        str(tiny_rb_model),
        "--run-dir",
        str(tmp_path / "r"),
    ]
    argv += ["--extensions", ",".join(HITS_EXTENSIONS)]
    copy_night(night_folder, tmp_path / "2026-01-05")
    argv += ["--night", "2026-01-05"] + [o.format(**values) for o in options]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()  # checked before anything was written


def _failed_night(inputs, model, run, night="2026-01-03"):
    state = nightly_flow(
        source=FitsSource(inputs=[inputs], extensions=HITS_EXTENSIONS),
        model=model,
        run_dir=run,
        night=night,
        return_state=True,
    )
    assert state.is_failed(), state
    return state


def test_empty_and_missing_nights_end_failed_with_their_summary(tiny_rb_model, tmp_path):
    (tmp_path / "empty").mkdir()
    empty = _failed_night(tmp_path / "empty", tiny_rb_model, tmp_path / "run-empty")
    missing = _failed_night(tmp_path / "absent", tiny_rb_model, tmp_path / "run-missing")
    for state, why in ((empty, "nothing was ingested"), (missing, "no such file or folder")):
        flow_run_id = state.state_details.flow_run_id
        table = artifact_table(flow_run_id, "nightly-table")
        values = {row["quantity"]: row["value"] for row in table}
        assert values["status"] == "failed" and why in values["error"], values
        markdown = artifact_markdown(flow_run_id, "nightly-summary")
        assert "failed" in markdown and "](file://" in markdown  # paths as links
        result = state.result(raise_on_failure=False).result
        manifest = json.loads((Path(result["run"]) / "manifest.json").read_text())
        assert manifest["stages"]["nightly"]["status"] == "failed"
        assert manifest["stages"]["nightly"]["flow_run_id"] == str(flow_run_id)
    assert values == {"status": "failed", "error": values["error"]}  # the missing night counted nothing
    lines = run_log_lines(empty.state_details.flow_run_id, "nothing was ingested")
    assert any(name == "flows.nightly" and "nothing was ingested" in m for name, m in lines), lines


def test_failed_rerun_with_old_options_leaves_the_good_night_intact(tiny_rb_model, night_folder, tmp_path):
    inputs = copy_night(night_folder, tmp_path / "in")
    run = tmp_path / "run"
    good = _night(inputs, tiny_rb_model, run, night_folder.parent / "truth.csv")
    assert good.is_completed()
    flow_run_id = good.state_details.flow_run_id
    before, published = _snapshot(run), (run / "current").resolve()
    lines = run_log_lines(flow_run_id, "scored 12 stamps")
    assert any(name.startswith("pipeline.scoring") and "scored 12 stamps" in m for name, m in lines), lines

    # the old night's options: fewer files, and a checkpoint that cannot be loaded (its card is fine)
    old_inputs = tmp_path / "old"
    old_inputs.mkdir()
    for path in sorted(inputs.glob("*.fits.gz"))[:5]:
        (old_inputs / path.name).write_bytes(path.read_bytes())
    broken = tmp_path / "broken" / "model.ckpt"
    broken.parent.mkdir()
    broken.write_bytes(b"not a checkpoint")
    (broken.parent / "model_card.json").write_bytes((tiny_rb_model.parent / "model_card.json").read_bytes())
    old = _failed_night(old_inputs, broken, run, night="2026-01-02")

    assert _snapshot(run) == before and (run / "current").resolve() == published
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["nightly"]["flow_run_id"] == str(flow_run_id)
    assert manifest["stages"]["ingest"]["counts"]["ingested"] == 12
    failed = Path(old.result(raise_on_failure=False).result["run"])
    assert failed.parent == run / "runs" and failed != published
    with open_store(failed / "stamps.h5") as store:  # the failed run kept what it wrote, apart
        assert store.n == 5
    assert json.loads((failed / "manifest.json").read_text())["stages"]["nightly"]["status"] == "failed"
