"""The nightly flow: ingest a night's new inputs -> score them with a fixed model -> report, into one run
folder, for survey operations (cron deployments: ``stampflow serve``).

Run folder (``run_dir``, default ``runs/nightly/{night}``): ``stamps.h5``, ``rejects.csv``,
``scored.parquet``, ``report/`` (when labels are given) and ``manifest.json`` with the stages ``ingest``,
``score``, ``report`` and ``nightly`` (timings per stage, how many tasks ran and how many came from the
cache). ``{night}`` in ``run_dir`` and in the source's paths is replaced by the night: ``night`` if given,
else the date of the flow run's scheduled start in ``timezone`` (a run scheduled for 09:00 America/Santiago
on 2026-03-02 processes night ``2026-03-02``).

One bad file never stops the night: it becomes a row of ``rejects.csv`` and the run goes on. The counts
(inputs = ingested + rejected, rejects per reason, scored, flagged, predicted labels, and the headline
metrics when labelled) are published as the artifacts ``nightly-summary`` (markdown) and ``nightly-table``.
A rerun of the same night with the same inputs and model is all cache hits and rewrites nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow
from prefect.task_runners import TaskRunner

from flows.ingest_flow import DEFAULT_CHUNK_FILES, ingest_manifest_record, ingest_stage
from flows.params import IngestSource
from flows.runners import RunnerOptions, make_task_runner
from flows.score_flow import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_ROWS, report_stage, score_stage
from flows.stages import StageRecorder
from pipeline.runs import MANIFEST_NAME, catalog_counts, summary_markdown, summary_rows
from pipeline.store import IngestReport

log = logging.getLogger(__name__)
NIGHT_PLACEHOLDER = "{night}"


def resolve_night(night: str | None, timezone: str = "UTC") -> str:
    """``night`` if given, else the ISO date of the flow run's scheduled start (now outside a deployment
    run) in ``timezone``."""
    if night:
        return night
    when = None
    try:
        from prefect.runtime import flow_run

        when = flow_run.scheduled_start_time
    except Exception:  # outside a flow run
        when = None
    when = when or datetime.now(ZoneInfo("UTC"))
    return when.astimezone(ZoneInfo(timezone)).date().isoformat()


def with_night(source: Any, night: str) -> Any:
    """``source`` with ``{night}`` replaced by ``night`` in every string (paths) it holds."""
    text = source.model_dump_json().replace(NIGHT_PLACEHOLDER, night)
    return type(source).model_validate_json(text)


@dataclass
class NightRun:
    """One night's run: the night, its run folder, the task runner and the stage recorder."""

    night: str
    run_dir: Path
    runner: TaskRunner
    recorder: StageRecorder
    progress: bool = False

    @property
    def store(self) -> Path:
        return self.run_dir / "stamps.h5"

    @property
    def scored(self) -> Path:
        return self.run_dir / "scored.parquet"

    @property
    def report_dir(self) -> Path:
        return self.run_dir / "report"


def ingest_night(run: NightRun, source: IngestSource, chunk_files: int) -> IngestReport:
    """Ingest the night's ``source`` into ``stamps.h5`` (+ ``rejects.csv``); records the ``ingest`` stage."""
    stage = ingest_stage(run.runner, source, run.store, chunk_files=chunk_files, progress=run.progress)
    config = {"source": source.model_dump(mode="json"), "out": run.store, "chunk_files": chunk_files}
    run.recorder.write("ingest", ingest_manifest_record(stage, config, run.recorder.started))
    return stage.result


def score_night(
    run: NightRun, model: Path, *, batch_size: int, chunk_rows: int, threads: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score the night's store with the checkpoint ``model`` into ``scored.parquet``; records the ``score``
    stage. Returns the score result and the catalog's counts (:func:`pipeline.runs.catalog_counts`)."""
    scoring = score_stage(
        run.runner,
        model,
        run.store,
        run.scored,
        batch_size=batch_size,
        chunk_rows=chunk_rows,
        threads=threads,
        progress=run.progress,
    )
    counts = catalog_counts(run.scored)
    config = {"model": model, "store": run.store, "batch_size": batch_size, "chunk_rows": chunk_rows}
    run.recorder.record(
        "score",
        scoring,
        config=config,
        outputs={"catalog": run.scored},
        model_version=scoring.result["model_version"],
        counts=counts,
    )
    return scoring.result, counts


def report_night(run: NightRun, labels: Path, label_on: str | None) -> dict[str, Any]:
    """Write ``report/`` of the scored night against ``labels``, publish it (``nightly-report``) and record
    the ``report`` stage; returns the report task's result."""
    reporting = report_stage(run.runner, run.scored, labels, run.report_dir, store=run.store, on=label_on)
    report = reporting.result
    run.recorder.publish_report(report, key="nightly-report")
    run.recorder.record(
        "report",
        reporting,
        config={"scored": run.scored, "labels": labels, "out": run.report_dir, "on": label_on},
        outputs={"report": report["result"]["index_html"]},
        headline=dict(report["headline"]),
    )
    return report


def publish_night(
    run: NightRun,
    config: dict[str, Any],
    ingest: IngestReport,
    score: dict[str, Any] | None,
    counts: dict[str, Any] | None,
    report: dict[str, Any] | None,
) -> dict[str, str]:
    """Publish the night's counts (``nightly-summary``, ``nightly-table``) and record the whole night as the
    ``nightly`` stage (its ``config``, what it wrote, timings per stage, every task state); returns the
    artifact keys."""
    headline = dict(report["headline"]) if report else None
    rows = summary_rows(ingest=ingest.to_dict(), counts=counts, metrics=headline)
    links = {
        "store": ingest.store,
        "rejects": ingest.rejects,
        "catalog": score["catalog"] if score else None,
        "report": report["result"]["index_html"] if report else None,
    }
    markdown = summary_markdown(f"stampflow nightly {run.night}", rows, links)
    artifacts = run.recorder.publish(
        "nightly", markdown, rows, description=f"night {run.night}: {ingest.summary()}"
    )
    run.recorder.record_run("nightly", config=config, outputs={k: v for k, v in links.items() if v})
    return artifacts


@flow(name="nightly")
def nightly_flow(
    source: IngestSource,
    model: Path,
    run_dir: Path = Path("runs/nightly/{night}"),
    labels: Path | None = None,
    label_on: str | None = None,
    night: str | None = None,
    timezone: str = "UTC",
    chunk_files: int = DEFAULT_CHUNK_FILES,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int | None = None,
    runner: RunnerOptions = RunnerOptions(),  # noqa: B008  (a pydantic default, never mutated)
    progress: bool = False,
) -> dict[str, Any]:
    """Ingest ``source`` into ``run_dir``, score it with the checkpoint ``model``, write the report when
    ``labels`` (a labelled store or a CSV/Parquet table joined on ``label_on``) are given, publish the
    night's summary and write the manifest (module docstring).

    Returns:
        ``{"night", "run_dir", "ingest", "score", "counts", "report", "tasks", "timings_s", "artifacts"}``.
    """
    night = resolve_night(night, timezone)
    run_dir = Path(str(run_dir).replace(NIGHT_PLACEHOLDER, night))
    recorder = StageRecorder(run_dir / MANIFEST_NAME)
    score, counts, report = None, None, None
    with make_task_runner(runner) as task_runner:
        run = NightRun(night, run_dir, task_runner, recorder, progress)
        ingest = ingest_night(run, with_night(source, night), chunk_files)
        if ingest.n_ingested == 0:
            log.warning("night %s: nothing was ingested (%s); nothing to score", night, ingest.summary())
        else:
            scoring = {"batch_size": batch_size, "chunk_rows": chunk_rows, "threads": threads}
            score, counts = score_night(run, model, **scoring)
            if labels is not None:
                report = report_night(run, labels, label_on)
    config = {"night": night, "timezone": timezone, "model": model, "labels": labels}
    config |= {"runner": runner.model_dump(mode="json"), "run_dir": run_dir}
    artifacts = publish_night(run, config, ingest, score, counts, report)
    return {
        "night": night,
        "run_dir": str(run_dir),
        "ingest": ingest.to_dict(),
        "score": score,
        "counts": counts,
        "report": report["result"] if report else None,
        "tasks": dict(recorder.tasks),
        "timings_s": recorder.timings_s,
        "artifacts": artifacts,
    }
