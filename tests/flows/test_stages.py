"""The stage recorder of a run folder: each stage's record in manifest.json, the run's timings and task
states, and the whole run as one stage."""

from __future__ import annotations

import json

import pytest

from flows.runners import StageResult, TaskOutcome
from flows.stages import StageRecorder


def _result(states: list[str], seconds: float, path: str) -> StageResult:
    inputs = [{"path": path, "bytes": 1, "sha256": "0" * 64}]
    return StageResult(None, [TaskOutcome(None, s) for s in states], inputs, seconds)


def test_stages_are_recorded_with_their_inputs_tasks_and_timings(tmp_path):
    recorder = StageRecorder(tmp_path / "run" / "manifest.json", seed=7)
    with recorder.stage("simulate", {"n": 3}) as stage:
        stage.add(_result(["Completed", "Cached"], 0.5, "a.fits"))
        stage.add(_result(["Cached"], 0.25, "b.fits"))
        stage.outputs = {"folder": tmp_path / "sim"}
        stage.extra["counts"] = {"n": 3}
    recorder.record("score", _result(["Completed"], 2.0, "c.h5"), config={"model": "m"}, step="scoring")
    with pytest.raises(RuntimeError), recorder.stage("report") as stage:
        raise RuntimeError("a failed stage is not recorded")
    recorder.record_run("run", config={"what": "all"})

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"simulate", "score", "run"}
    simulate = manifest["stages"]["simulate"]
    assert simulate["config"] == {"n": 3} and simulate["seed"] == 7 and simulate["counts"] == {"n": 3}
    assert [r["path"] for r in simulate["inputs"]] == ["a.fits", "b.fits"]
    assert simulate["tasks"] == {"Completed": 1, "Cached": 2}
    assert simulate["outputs"] == {"folder": str(tmp_path / "sim")}
    assert simulate["timings_s"] == {"simulate": simulate["seconds"]}
    score = manifest["stages"]["score"]
    assert score["seconds"] == 2.0 and score["timings_s"] == {"scoring": 2.0}  # the result's own seconds
    assert list(recorder.timings_s) == ["simulate", "score"]
    assert recorder.tasks == {"Completed": 2, "Cached": 2}
    run = manifest["stages"]["run"]
    assert run["started"] == recorder.started and run["tasks"] == {"Completed": 2, "Cached": 2}
    assert run["timings_s"] == pytest.approx(recorder.timings_s, abs=1e-3)
    assert run["seconds"] == pytest.approx(sum(recorder.timings_s.values()), abs=1e-3)


def test_bars_count_stamps_and_log_lines_go_above_them(capsys):
    import logging
    import sys

    from prefect import task
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.runners import run_tasks, work_sizes

    @task
    def score_range(start: int, stop: int) -> int:
        logging.getLogger("pipeline.scoring").warning("scored %d stamps", stop - start)
        return stop - start

    calls = [{"start": 0, "stop": 700}, {"start": 700, "stop": 1000}]
    assert work_sizes(calls) == ([700, 300], "stamp")
    assert work_sizes([{"files": ["a", "b"]}, {"files": ["c"]}]) == ([2, 1], "file")
    assert work_sizes([{"x": 1}]) == ([1], "task")
    console = logging.StreamHandler(sys.stderr)  # the terminal's handler, as the CLI's basicConfig makes
    logging.getLogger().addHandler(console)
    try:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            outcomes = run_tasks(runner, score_range, calls, desc="score", progress=True)
    finally:
        logging.getLogger().removeHandler(console)
    assert [o.result for o in outcomes] == [700, 300]
    err = capsys.readouterr().err
    assert "1000/1000" in err and "stamp/s" in err  # counts stamps, with their rate
    lines = [line.split("\r")[-1] for line in err.splitlines()]
    for n in (700, 300):  # whole lines of their own, never on the bar's line
        (line,) = [line for line in lines if f"scored {n} stamps" in line]
        assert line.endswith(f"scored {n} stamps") and "%|" not in line and "stamp/s" not in line, line
