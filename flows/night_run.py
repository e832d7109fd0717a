"""One run of a night (:mod:`flows.nightly`): its versioned run folder, what it wrote, and how it ends: the
outputs kept in its run folder, the summary published as Prefect artifacts whatever happened, the
``nightly`` record of its manifest, and the night's outputs published when it succeeded
(:class:`pipeline.runs.NightFolder`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.task_runners import TaskRunner

from flows.cli_common import EXIT_FAILED
from flows.stages import StageRecorder
from pipeline.runs import MANIFEST_NAME, NightFolder, run_name, summary_markdown, summary_rows
from pipeline.store import IngestReport


class NightFailed(RuntimeError):
    """A night that ended Failed: its message, the night's result (:func:`night_result`) and the exit code
    the CLI gives for it (:func:`flows.nightly_checks.exit_code_of`)."""

    def __init__(self, message: str, result: dict[str, Any] | None = None, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.result = result
        self.exit_code = exit_code

    def __reduce__(self):  # picklable with its result and exit code
        return (type(self), (str(self), self.result, self.exit_code))


class NothingIngested(RuntimeError):
    """The night had no input that could be ingested (an empty folder, or every file rejected)."""


def flow_run_id() -> str | None:
    """The id of the flow run in progress (None outside one)."""
    try:
        from prefect.runtime import flow_run

        return str(flow_run.id) if flow_run.id else None
    except Exception:  # outside a flow run
        return None


@dataclass
class NightRun:
    """One run of a night: the night, its folder, its own run folder (``runs/<run id>``), the task runner
    and the stage recorder (writing the run folder's ``manifest.json``), and what its stages wrote."""

    night: str
    folder: NightFolder
    path: Path
    recorder: StageRecorder
    runner: TaskRunner | None = None
    progress: bool = False
    flow_run_id: str | None = None
    #: outputs this run wrote, under the night's ``work/`` folder
    written: list[Path] = field(default_factory=list)

    @classmethod
    def start(cls, night: str, folder: NightFolder, progress: bool = False) -> NightRun:
        """A new run of ``night`` in ``folder``: its run folder made, its recorder ready."""
        run_id = flow_run_id()
        path = folder.new_run(run_name(run_id))
        return cls(
            night, folder, path, StageRecorder(path / MANIFEST_NAME), progress=progress, flow_run_id=run_id
        )

    @property
    def store(self) -> Path:
        return self.folder.work / "stamps.h5"

    @property
    def scored(self) -> Path:
        return self.folder.work / "scored.parquet"

    @property
    def report_dir(self) -> Path:
        return self.folder.work / "report"

    def kept(self, path: str | Path | None) -> str | None:
        """Where ``path`` (an output under ``work/``) is kept in this run's folder."""
        return None if path is None else str(self.path / Path(path).relative_to(self.folder.work))


@dataclass
class NightOutcome:
    """What a night's stages gave (None: the stage did not run) and the error it failed with."""

    ingest: IngestReport | None = None
    score: dict[str, Any] | None = None
    counts: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    error: BaseException | None = None

    @property
    def status(self) -> str:
        return "completed" if self.error is None else "failed"

    @property
    def error_line(self) -> str | None:
        return None if self.error is None else f"{type(self.error).__name__}: {self.error}"


def _links(run: NightRun, outcome: NightOutcome) -> dict[str, str | None]:
    """Role -> path in the run folder of what the night wrote."""
    ingest, report = outcome.ingest, outcome.report
    return {
        "run folder": str(run.path),
        "store": run.kept(ingest.store) if ingest and ingest.n_ingested else None,
        "rejects": run.kept(ingest.rejects) if ingest else None,
        "catalog": run.kept(outcome.score["catalog"]) if outcome.score else None,
        "report": run.kept(report["result"]["index_html"]) if report else None,
        "manifest": str(run.recorder.manifest),
    }


def finish_night(run: NightRun, config: dict[str, Any], outcome: NightOutcome) -> dict[str, Any]:
    """End the run: keep what it wrote in its run folder, publish the summary (``nightly-summary``,
    ``nightly-table``: status, counts, reject reasons, metrics, the error, paths as links), write the
    ``nightly`` record of its manifest and, when it succeeded, publish it as the night's outputs.

    Returns:
        :func:`night_result`.
    """
    run.folder.keep(run.path, run.written)
    links = _links(run, outcome)
    headline = dict(outcome.report["headline"]) if outcome.report else None
    ingest = outcome.ingest.to_dict() if outcome.ingest else None
    rows: list[tuple[str, Any]] = [("status", outcome.status)]
    rows += summary_rows(ingest=ingest, counts=outcome.counts, metrics=headline)
    rows += [("error", outcome.error_line)] if outcome.error is not None else []
    title = f"stampflow nightly {run.night}: {outcome.status}"
    markdown = summary_markdown(title, rows, links)
    what = outcome.ingest.summary() if outcome.ingest else outcome.error_line
    run.recorder.publish("nightly", markdown, rows, description=f"night {run.night} {outcome.status}: {what}")
    run.recorder.record_run(
        "nightly",
        config=config,
        outputs={k: v for k, v in links.items() if v},
        flow_run_id=run.flow_run_id,
        run=run.path.name,
        status=outcome.status,
        error=outcome.error_line,
    )
    if outcome.error is None:
        run.folder.publish(run.path)
    return night_result(run, outcome, links)


def night_result(run: NightRun, outcome: NightOutcome, links: dict[str, str | None]) -> dict[str, Any]:
    """The night's result: ``{"night", "run_dir", "run", "flow_run_id", "status", "error", "ingest",
    "score", "counts", "report", "tasks", "timings_s", "artifacts"}``; its paths name the run folder."""
    ingest = outcome.ingest.to_dict() if outcome.ingest else None
    if ingest:
        ingest |= {"store": links["store"], "rejects": links["rejects"]}
    score = dict(outcome.score, catalog=links["catalog"]) if outcome.score else None
    report = {k: _in_run(run, v) for k, v in outcome.report["result"].items()} if outcome.report else None
    return {
        "night": run.night,
        "run_dir": str(run.folder.root),
        "run": str(run.path),
        "flow_run_id": run.flow_run_id,
        "status": outcome.status,
        "error": outcome.error_line,
        "ingest": ingest,
        "score": score,
        "counts": outcome.counts,
        "report": report,
        "tasks": dict(run.recorder.tasks),
        "timings_s": run.recorder.timings_s,
        "artifacts": run.recorder.artifacts.get("nightly", {}),
    }


def _in_run(run: NightRun, value: Any) -> Any:
    """``value`` with the paths under ``work/`` it holds (a path or a list of them) named in the run folder."""
    if isinstance(value, list):
        return [_in_run(run, v) for v in value]
    if isinstance(value, str) and Path(value).is_relative_to(run.folder.work):
        return run.kept(value)
    return value
