"""The nightly flow: ingest a night's new inputs -> score them with a fixed model -> report, for survey
operations (cron deployments: ``stampflow serve``).

The night's folder (``run_dir``, default ``runs/nightly/{night}``; :class:`pipeline.runs.NightFolder`)
publishes ``stamps.h5``, ``rejects.csv``, ``scored.parquet``, ``report/`` (when labels are given) and
``manifest.json`` under those names once a run succeeds: each run writes into its own run folder
``runs/<time>-<flow run id>/`` (its ``manifest.json`` with the flow-run id and the stages ``ingest``,
``score``, ``report`` and ``nightly``: timings, task states, status, error) and ``current`` then points to
it, in one atomic rename. A run that fails, a retry or a rerun with other options never mixes with or
destroys the outputs of an earlier good run. One run of a night at a time (``.lock``). ``{night}`` in
``run_dir`` and in the source's paths is replaced by the night: ``night`` if given, else the date of the
flow run's scheduled start in ``timezone`` (a run scheduled for 09:00 America/Santiago on 2026-03-02
processes night ``2026-03-02``).

Before it ingests anything the night checks the model, the label join, the run folder and the inputs
(:mod:`flows.nightly_checks`). One bad file never stops the night: it becomes a row of ``rejects.csv``
and the run goes on. A night that ingests nothing, misses its input or fails in any stage ends Failed
(:class:`flows.night_run.NightFailed`); every night, failed or not, publishes its counts (status, inputs =
ingested + rejected, rejects per reason, scored, flagged, predicted labels, the headline metrics when
labelled, the error, paths as links) as the artifacts ``nightly-summary`` (markdown) and
``nightly-table``, and stampflow's own log lines go to the run's logs in Prefect
(:func:`flows.run_logs.send_logs_to_prefect`). A rerun of the same night with the same inputs and model is
all cache hits and rewrites nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow

from flows.ingest_flow import DEFAULT_CHUNK_FILES, ingest_manifest_record, ingest_stage
from flows.night_run import NightFailed, NightOutcome, NightRun, NothingIngested, finish_night
from flows.nightly_checks import check_night, exit_code_of
from flows.params import IngestSource
from flows.run_logs import send_logs_to_prefect
from flows.runners import RunnerOptions, make_task_runner
from flows.score_flow import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_ROWS, report_stage, score_stage
from flows.stages import stage_counts
from pipeline.runs import NightFolder, catalog_counts
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


def night_folder(run_dir: str | Path, night: str) -> Path:
    """The night's folder: ``run_dir`` with ``{night}`` replaced."""
    return Path(str(run_dir).replace(NIGHT_PLACEHOLDER, night))


def ingest_night(run: NightRun, source: IngestSource, chunk_files: int) -> IngestReport:
    """Ingest the night's ``source`` into ``stamps.h5`` (+ ``rejects.csv``); records the ``ingest`` stage."""
    stage = ingest_stage(run.runner, source, run.store, chunk_files=chunk_files, progress=run.progress)
    report: IngestReport = stage.result
    run.written += [Path(report.rejects)] + ([Path(report.store)] if report.n_ingested else [])
    config = {"source": source.model_dump(mode="json"), "out": run.store, "chunk_files": chunk_files}
    run.recorder.write("ingest", ingest_manifest_record(stage, config, run.recorder.started))
    return report


def require_stamps(night: str, report: IngestReport) -> None:
    """Raises :class:`flows.night_run.NothingIngested` when the night's ingest gave no stamp."""
    if report.n_ingested == 0:
        log.warning("night %s: nothing was ingested (%s)", night, report.summary())
        raise NothingIngested(f"night {night}: nothing was ingested ({report.n_inputs} inputs)")


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
    run.written.append(run.scored)
    counts = catalog_counts(run.scored)
    config = {"model": model, "store": run.store, "batch_size": batch_size, "chunk_rows": chunk_rows}
    run.recorder.record(
        "score",
        scoring,
        config=config,
        outputs={"catalog": run.scored},
        model_version=scoring.result["model_version"],
        counts=stage_counts(
            scoring.result["n_inputs"], counts["n_scored"], flagged=counts["n_flagged_masked"], **counts
        ),
    )
    return scoring.result, counts


def report_night(run: NightRun, labels: Path, label_on: str | None) -> dict[str, Any]:
    """Write ``report/`` of the scored night against ``labels``, publish it (``nightly-report``) and record
    the ``report`` stage; returns the report task's result."""
    reporting = report_stage(run.runner, run.scored, labels, run.report_dir, store=run.store, on=label_on)
    report = reporting.result
    run.written.append(run.report_dir)
    run.recorder.publish_report(report, key="nightly-report")
    run.recorder.record(
        "report",
        reporting,
        config={"scored": run.scored, "labels": labels, "out": run.report_dir, "on": label_on},
        outputs={"report": report["result"]["index_html"]},
        headline=dict(report["headline"]),
    )
    return report


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
    """Check, then ingest ``source``, score it with the checkpoint ``model``, write the report when
    ``labels`` (a labelled store or a CSV/Parquet table joined on ``label_on``) are given, publish the
    night's summary and its outputs (module docstring).

    Returns:
        :func:`flows.night_run.night_result`: ``{"night", "run_dir", "run", "flow_run_id", "status",
        "ingest", "score", "counts", "report", "tasks", "timings_s", "artifacts", ...}``.

    Raises:
        NightFailed: the night failed (after publishing its summary); its ``result`` and ``exit_code``.
    """
    night = resolve_night(night, timezone)
    folder = NightFolder(night_folder(run_dir, night))
    source = with_night(source, night)
    config = {"night": night, "timezone": timezone, "model": model, "labels": labels, "label_on": label_on}
    config |= {"runner": runner.model_dump(mode="json"), "run_dir": folder.root}
    scoring = {"batch_size": batch_size, "chunk_rows": chunk_rows, "threads": threads}
    with send_logs_to_prefect():
        with folder.lock(holder=f"night {night}"):
            run = NightRun.start(night, folder, progress)
            outcome = NightOutcome()
            try:
                check_night(source, model, folder.root, labels, label_on)
                with make_task_runner(runner) as run.runner:
                    outcome.ingest = ingest_night(run, source, chunk_files)
                    require_stamps(night, outcome.ingest)
                    outcome.score, outcome.counts = score_night(run, model, **scoring)
                    if labels is not None:
                        outcome.report = report_night(run, labels, label_on)
            except Exception as err:
                outcome.error = err
            result = finish_night(run, config, outcome)
        if outcome.error is not None:
            log.error("night %s failed: %s (run folder %s)", night, outcome.error_line, run.path)
    if outcome.error is not None:
        message = f"night {night} failed: {outcome.error_line}"
        raise NightFailed(message, result, exit_code_of(outcome.error)) from outcome.error
    return result
