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
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow

from flows.artifacts import publish_summary
from flows.ingest_flow import DEFAULT_CHUNK_FILES, ingest_manifest_record, ingest_stage
from flows.params import IngestSource
from flows.runners import RunnerOptions, make_task_runner
from flows.score_flow import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHUNK_ROWS,
    publish_report,
    report_stage,
    score_stage,
)
from pipeline.runs import (
    MANIFEST_NAME,
    catalog_counts,
    record_stage,
    stage_record,
    summary_markdown,
    summary_rows,
    utc_timestamp,
)

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
    started = utc_timestamp()
    night = resolve_night(night, timezone)
    source = with_night(source, night)
    run_dir = Path(str(run_dir).replace(NIGHT_PLACEHOLDER, night))
    store, scored, report_dir = run_dir / "stamps.h5", run_dir / "scored.parquet", run_dir / "report"
    manifest = run_dir / MANIFEST_NAME
    timings: dict[str, float] = {}
    tasks: dict[str, int] = {}
    score_result, counts, report = None, None, None

    def count(stage) -> None:
        for state, n in stage.tasks.items():
            tasks[state] = tasks.get(state, 0) + n

    with make_task_runner(runner) as task_runner:
        ingest = ingest_stage(task_runner, source, store, chunk_files=chunk_files, progress=progress)
        timings["ingest"] = ingest.seconds
        count(ingest)
        config = {"source": source.model_dump(mode="json"), "out": store, "chunk_files": chunk_files}
        record_stage(manifest, "ingest", ingest_manifest_record(ingest, config, started))
        if ingest.result.n_ingested == 0:
            log.warning(
                "night %s: nothing was ingested (%s); nothing to score", night, ingest.result.summary()
            )
        else:
            t = time.perf_counter()
            scoring = score_stage(
                task_runner,
                model,
                store,
                scored,
                batch_size=batch_size,
                chunk_rows=chunk_rows,
                threads=threads,
                progress=progress,
            )
            score_result = scoring.result
            count(scoring)
            counts = catalog_counts(scored)
            timings["score"] = time.perf_counter() - t
            record_stage(
                manifest,
                "score",
                stage_record(
                    config={
                        "model": model,
                        "store": store,
                        "batch_size": batch_size,
                        "chunk_rows": chunk_rows,
                    },
                    inputs=scoring.inputs,
                    outputs={"catalog": scored},
                    seconds=scoring.seconds,
                    timings_s={"score": scoring.seconds},
                    tasks=scoring.tasks,
                    model_version=score_result["model_version"],
                    counts=counts,
                ),
            )
            if labels is not None:
                reporting = report_stage(task_runner, scored, labels, report_dir, store=store, on=label_on)
                report = reporting.result
                count(reporting)
                timings["report"] = reporting.seconds
                publish_report(report, key="nightly-report")
                record_stage(
                    manifest,
                    "report",
                    stage_record(
                        config={"scored": scored, "labels": labels, "out": report_dir, "on": label_on},
                        inputs=reporting.inputs,
                        outputs={"report": report["result"]["index_html"]},
                        seconds=reporting.seconds,
                        timings_s={"report": reporting.seconds},
                        tasks=reporting.tasks,
                        headline=dict(report["headline"]),
                    ),
                )
    rows = summary_rows(
        ingest=ingest.result.to_dict(), counts=counts, metrics=dict(report["headline"]) if report else None
    )
    links = {
        "store": ingest.result.store,
        "rejects": ingest.result.rejects,
        "catalog": score_result["catalog"] if score_result else None,
        "report": report["result"]["index_html"] if report else None,
    }
    markdown = summary_markdown(f"stampflow nightly {night}", rows, links)
    artifacts = publish_summary(
        "nightly", markdown, rows, description=f"night {night}: {ingest.result.summary()}"
    )
    record_stage(
        manifest,
        "nightly",
        stage_record(
            config={
                "night": night,
                "timezone": timezone,
                "model": model,
                "labels": labels,
                "runner": runner.model_dump(mode="json"),
                "run_dir": run_dir,
            },
            outputs={k: v for k, v in links.items() if v},
            started=started,
            seconds=sum(timings.values()),
            timings_s=timings,
            tasks=tasks,
        ),
    )
    return {
        "night": night,
        "run_dir": str(run_dir),
        "ingest": ingest.result.to_dict(),
        "score": score_result,
        "counts": counts,
        "report": report["result"] if report else None,
        "tasks": tasks,
        "timings_s": timings,
        "artifacts": artifacts,
    }
