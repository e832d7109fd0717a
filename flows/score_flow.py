"""The score flow (a stamp store through a checkpoint into a scored catalog) and the report flow (a scored
catalog against labels into a report folder).

Scoring runs in row ranges of ``chunk_rows`` stamps, one cached task each (a Dask cluster scores the ranges
in parallel); with more than one range the Parquet parts are joined in row order
(:func:`pipeline.scoring.chunks.join_parts`), so the catalog is the same whatever the task runner. Tasks are
cached on the sha256 of the checkpoint, its model card and the store. The report task publishes its
headline numbers as Prefect markdown and table artifacts (``report-summary``, ``report-table``).
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Literal

from prefect import task
from prefect.task_runners import TaskRunner

from flows.artifacts import publish_summary
from flows.caching import IO_RETRIES, cached, file_digests, fingerprints, state_dir
from flows.printable_flow import printable_flow
from flows.runners import RunnerOptions, StageResult, make_task_runner, run_tasks
from flows.stages import StageRecorder, stage_counts
from pipeline.runs import (
    MANIFEST_NAME,
    file_record,
    headline_metrics,
    utc_timestamp,
)

#: Stamps per scoring task.
DEFAULT_CHUNK_ROWS = 8192
DEFAULT_BATCH_SIZE = 256


def model_files(model: Path) -> list[Path]:
    """The checkpoint and its model card (an exported ``.onnx`` holds its card)."""
    from pipeline.scoring.onnx_model import is_onnx_model

    if is_onnx_model(model):
        return [Path(model)]
    from models.checkpoints import card_path  # imports torch

    return [Path(model), card_path(model)]


@task(name="score-rows", task_run_name="score-rows-{start}-{stop}", **IO_RETRIES)
def score_rows_task(
    model: Path,
    model_sha256: dict[str, str | None],
    store: Path,
    store_sha256: str | None,
    out: Path,
    start: int,
    stop: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Score rows ``[start, stop)`` of ``store`` into ``out`` (the sha256 arguments are the cache key's
    content part). ``options``: ``device`` and ``threads`` (torch's CPU threads of this process, when
    given), and what else :func:`pipeline.scoring.scorer.score_store` takes (``fmt``, ``batch_size``,
    ``columns``, ``backend``: how the model runs)."""
    from pipeline.scoring import score_store
    from pipeline.scoring.onnx_model import OnnxModel, is_onnx_model

    options = dict(options)
    threads = options.pop("threads", None)
    if is_onnx_model(model):  # ONNX Runtime alone: no torch imported
        module = OnnxModel(model, threads)
        card = module.card
    else:
        import torch

        from models.checkpoints import load_checkpoint

        if threads:
            torch.set_num_threads(threads)
        module, card = load_checkpoint(model, map_location=options.get("device", "cpu"))
    result = score_store(module, card, store, out, start=start, stop=stop, **options)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    return {"result": result.to_dict(), "outputs": fingerprints([out]), "worker": worker}


@task(name="join-scored", **IO_RETRIES)
def join_scored_task(
    parts: list[Path], part_fingerprints: dict[str, Any], out: Path, fmt: str | None = None
) -> dict[str, Any]:
    """Join catalog parts into ``out`` (``part_fingerprints`` is there for the cache key)."""
    from pipeline.scoring import join_parts

    joined = join_parts(parts, out, fmt=fmt)
    return {"result": joined, "outputs": fingerprints([out])}


def _join_ranges(
    runner: TaskRunner, score: Any, calls: list[dict[str, Any]], out: Path, fmt: str | None, progress: bool
) -> tuple[dict[str, Any], list[Any]]:
    """Score each row range into a Parquet part, join the parts into ``out``; (result, outcomes)."""
    desc = f"score ({calls[-1]['stop']} stamps)"
    outcomes = run_tasks(runner, score, calls, desc=desc, progress=progress)
    join = {
        "parts": [c["out"] for c in calls],
        "part_fingerprints": {k: v for o in outcomes for k, v in o.result["outputs"].items()},
        "out": out,
        "fmt": fmt,
    }
    joined = run_tasks(runner, cached(join_scored_task, out.parent), [join])[0]
    result = {
        **outcomes[0].result["result"],
        "catalog": joined.result["result"]["catalog"],
        "n_scored": joined.result["result"]["n_rows"],
        "n_flagged_masked": joined.result["result"]["n_flagged_masked"],
    }
    return result, [*outcomes, joined]


def score_stage(
    runner: TaskRunner,
    model: Path,
    store: Path,
    out: Path,
    *,
    fmt: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    columns: list[str] | None = None,
    device: str = "cpu",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threads: int | None = None,
    backend: str = "auto",
    progress: bool = False,
) -> StageResult:
    """Score ``store`` with ``model`` into the catalog ``out`` with tasks on ``runner``.

    The store is cut into equal row ranges of at most ``chunk_rows`` stamps. ``threads`` (torch CPU threads
    of a scoring task) defaults to 1 when there are several ranges, which then run side by side, and to
    torch's default for a single range. The catalog is bit-identical whatever the task runner for the same
    ranges and threads (a different thread count changes float rounding, ~1e-7).

    Returns:
        :class:`flows.runners.StageResult` whose ``result`` is a ScoreResult dict (``catalog``,
        ``task``, ``model_name``, ``model_version``, ``n_scored``, ``n_flagged_masked``, ``seconds``,
        ``stamps_per_s``, and ``workers``: the ``host:pid`` of each process that scored).
    """
    from pipeline.scoring import row_ranges
    from pipeline.store import open_store

    t0 = time.perf_counter()
    out, store, model = Path(out), Path(store), Path(model)
    digests = file_digests([*model_files(model), store])
    with open_store(store) as opened:
        n = opened.n
    ranges = row_ranges(n, math.ceil(n / max(1, math.ceil(n / chunk_rows))) if n else chunk_rows)
    if threads is None and len(ranges) > 1:
        threads = 1  # chunks run side by side (a thread or a Dask worker per core): one torch thread each
    options = {"batch_size": batch_size, "columns": columns, "device": device, "threads": threads}
    options["backend"] = backend
    common = {
        "model": model,
        "model_sha256": {str(p): digests[str(p)] for p in model_files(model)},
        "store": store,
        "store_sha256": digests[str(store)],
    }
    score = cached(score_rows_task, out.parent)
    if len(ranges) == 1:
        (a, b), whole = ranges[0], {**options, "fmt": fmt}
        call = {**common, "out": out, "start": a, "stop": b, "options": whole}
        outcomes = run_tasks(runner, score, [call], desc="score", progress=progress)
        result = dict(outcomes[0].result["result"])
    else:
        parts = state_dir(out.parent) / "chunks"
        calls = [
            {
                **common,
                "out": parts / f"{out.stem}-{a:09d}-{b:09d}.parquet",
                "start": a,
                "stop": b,
                "options": options,
            }
            for a, b in ranges
        ]
        result, outcomes = _join_ranges(runner, score, calls, out, fmt, progress)
    seconds = time.perf_counter() - t0
    result["n_inputs"] = n  # stamps of the store: every one is scored (flagged, never dropped)
    result["workers"] = sorted({o.result["worker"] for o in outcomes if "worker" in o.result})
    result["seconds"] = round(seconds, 3)
    result["stamps_per_s"] = round(result["n_scored"] / seconds, 1) if seconds > 0 else None
    inputs = [file_record(p, d) for p, d in digests.items()]
    return StageResult(result, outcomes, inputs, seconds)


@task(name="report", **IO_RETRIES)
def report_task(
    scored: Path,
    labels: Path,
    out: Path,
    input_sha256: dict[str, str | None],
    store: Path | None = None,
    on: str | None = None,
    n_gallery: int = 12,
) -> dict[str, Any]:
    """Write the report folder of ``scored`` against ``labels`` (``input_sha256`` is there for the cache key).

    Returns the report summary (without the full metrics), its markdown, the headline rows and the
    fingerprints of ``index.html`` and ``metrics.json``.
    """
    from pipeline.evaluation import report_from_files, report_markdown

    result = report_from_files(scored, labels, out, store=store, on=on, n_gallery=n_gallery)
    summary = {k: v for k, v in result.to_dict().items() if k != "metrics"}
    return {
        "result": summary,
        "markdown": report_markdown(result),
        "headline": headline_metrics(result.task, result.metrics),
        "outputs": fingerprints([result.index_html, result.metrics_json]),
    }


def report_stage(
    runner: TaskRunner,
    scored: Path,
    labels: Path,
    out: Path,
    *,
    store: Path | None = None,
    on: str | None = None,
    n_gallery: int = 12,
) -> StageResult:
    """Write the report folder ``out`` with one task on ``runner``; ``result`` is the task's dict."""
    t0 = time.perf_counter()
    paths = [Path(scored), Path(labels)] + ([Path(store)] if store else [])
    digests = file_digests(paths)
    call = {
        "scored": Path(scored),
        "labels": Path(labels),
        "out": Path(out),
        "input_sha256": digests,
        "store": store,
        "on": on,
        "n_gallery": n_gallery,
    }
    outcomes = run_tasks(runner, cached(report_task, Path(out).parent), [call])
    seconds = time.perf_counter() - t0
    inputs = [file_record(p, d) for p, d in digests.items()]
    return StageResult(outcomes[0].result, outcomes, inputs, seconds)


def publish_report(report: dict[str, Any], key: str = "report") -> dict[str, str]:
    """Publish a report task result as the markdown and table artifacts ``<key>-summary``/``<key>-table``."""
    summary = report["result"]
    description = f"{summary['task']} report of {summary['n']} stamps: {summary['index_html']}"
    return publish_summary(key, report["markdown"], report["headline"], description=description)


@printable_flow(name="score")
def score_flow(
    model: Path,
    store: Path,
    out: Path,
    format: Literal["parquet", "fits", "csv"] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    columns: list[str] | None = None,
    device: str = "cpu",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threads: int | None = None,
    backend: Literal["auto", "onnxruntime", "eager"] = "auto",
    runner: RunnerOptions = RunnerOptions(),  # noqa: B008  (a pydantic default, never mutated)
    manifest: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score a stamp store with a checkpoint (``model.ckpt`` + ``model_card.json``) into a catalog; record
    the ``score`` stage in the run manifest (default ``manifest.json`` beside the catalog).

    Returns:
        The ScoreResult as a dict.
    """
    started = utc_timestamp()
    with make_task_runner(runner) as task_runner:
        stage = score_stage(
            task_runner,
            model,
            store,
            out,
            fmt=format,
            batch_size=batch_size,
            columns=columns,
            device=device,
            chunk_rows=chunk_rows,
            threads=threads,
            backend=backend,
            progress=progress,
        )
    config = {
        "model": str(model),
        "store": str(store),
        "out": str(out),
        "format": format,
        "batch_size": batch_size,
        "columns": columns,
        "device": device,
        "chunk_rows": chunk_rows,
        "threads": threads,
        "backend": backend,
        "runner": runner.model_dump(mode="json"),
    }
    StageRecorder(manifest or Path(out).with_name(MANIFEST_NAME)).record(
        "score",
        stage,
        config=config,
        outputs={"catalog": stage.result["catalog"]},
        started=started,
        model_version=stage.result["model_version"],
        n_scored=stage.result["n_scored"],
        counts=stage_counts(
            stage.result["n_inputs"], stage.result["n_scored"], flagged=stage.result["n_flagged_masked"]
        ),
    )
    return stage.result


@printable_flow(name="report")
def report_flow(
    scored: Path,
    labels: Path,
    out: Path,
    store: Path | None = None,
    on: str | None = None,
    n_gallery: int = 12,
    manifest: Path | None = None,
) -> dict[str, Any]:
    """Write the report folder of a scored catalog against labels (a labelled store or a CSV/Parquet
    table), publish its summary as artifacts and record the ``report`` stage in the run manifest (default
    ``manifest.json`` in the folder that holds the report folder).

    Returns:
        The report summary: ``out_dir``, ``index_html``, ``metrics_json``, ``task``, ``n``, ``files``.
    """
    started = utc_timestamp()
    with make_task_runner(RunnerOptions()) as task_runner:
        stage = report_stage(task_runner, scored, labels, out, store=store, on=on, n_gallery=n_gallery)
    recorder = StageRecorder(manifest or Path(out).parent / MANIFEST_NAME)
    recorder.publish_report(stage.result, key="report")
    config = {
        "scored": scored,
        "labels": labels,
        "out": out,
        "store": store,
        "on": on,
        "n_gallery": n_gallery,
    }
    recorder.record(
        "report",
        stage,
        config=config,
        outputs={"report": stage.result["result"]["index_html"]},
        started=started,
        headline=dict(stage.result["headline"]),
    )
    return stage.result["result"]
