"""The ingest flow: FITS stamps, alert packets, labelled triplets, image cutouts or Galaxy Zoo catalogs
into one stamp store and ``rejects.csv`` (docs/design.md, "Flows").

Many-file sources (``fits``, ``alerts``) are ingested in chunks of ``chunk_files`` files, one task per
chunk, each cached on its files' sha256 (a rerun redoes only the chunks whose files changed); with more
than one chunk the part stores are merged in input order through the StoreBuilder
(:func:`pipeline.store.merge.merge_stores`), so the result is what one pass over all files gives. When no
stamp size is given, the first chunk that ingests anything fixes it (as the first readable file does in
one pass) before the other chunks start. The other sources are one task each.

Parts live in ``<run>/.stampflow/chunks`` and Prefect results in ``<run>/.stampflow/results``, where
``<run>`` is the folder of the store; removing ``.stampflow`` only costs the cache.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import TaskRunner

from flows.artifacts import publish_summary
from flows.caching import (
    IO_RETRIES,
    cached,
    content_key,
    expand_files,
    file_digests,
    fingerprints,
    state_dir,
)
from flows.params import (
    CHUNKED_KINDS,
    AlertSource,
    Compression,
    CutoutSource,
    FitsSource,
    GalaxyZooSource,
    IngestSource,
    LabelledSource,
    source_paths,
)
from flows.runners import RunnerOptions, StageResult, make_task_runner, run_tasks
from pipeline.ingest import expand_inputs
from pipeline.runs import (
    MANIFEST_NAME,
    file_record,
    record_stage,
    stage_record,
    summary_markdown,
    summary_rows,
)
from pipeline.store import IngestReport, combined_sha256, open_store

#: Files per ingest task (docs/design.md: tasks of hundreds to thousands of stamps).
DEFAULT_CHUNK_FILES = 1000


def alert_files(paths: list[Path]) -> list[Path]:
    """Alert packet files of the inputs, as :func:`pipeline.ingest.alert_packets.ingest_alerts` finds them."""
    from pipeline.alerts import expand_alert_inputs

    return expand_alert_inputs(paths)


def run_ingest(
    source: Any,
    files: list[Path] | None,
    out: Path,
    rejects: Path,
    *,
    compression: str = "lzf",
    stamp_shape: tuple[int, int] | None = None,
    pixel_scale_arcsec: float | None = None,
    progress: bool = False,
) -> IngestReport:
    """Call the pipeline ingest of ``source``'s kind (on ``files`` for the many-file kinds)."""
    common = {"rejects_path": rejects, "compression": compression, "progress": progress}
    if isinstance(source, FitsSource):
        from pipeline.ingest import ingest_fits

        return ingest_fits(
            files if files is not None else source.inputs,
            out,
            extensions=source.extensions,
            stamp_shape=stamp_shape or source.stamp_shape,
            size_policy=source.size_policy,
            header_keys=source.header_keys,
            pixel_scale_arcsec=pixel_scale_arcsec or source.pixel_scale_arcsec,
            **common,
        )
    if isinstance(source, AlertSource):
        from pipeline.ingest import ingest_alerts

        return ingest_alerts(
            files if files is not None else source.inputs,
            out,
            stamp_shape=stamp_shape or source.stamp_shape,
            size_policy=source.size_policy,
            **common,
        )
    if isinstance(source, LabelledSource):
        from pipeline.ingest import ingest_labelled_triplets

        return ingest_labelled_triplets(
            source.folder,
            out,
            extensions=source.extensions,
            labels=source.labels,
            labels_csv=source.labels_csv,
            **common,
        )
    if isinstance(source, CutoutSource):
        from pipeline.ingest import ingest_cutouts

        return ingest_cutouts(
            source.image,
            source.catalog,
            out,
            size=source.size,
            ra_col=source.ra_col,
            dec_col=source.dec_col,
            x_col=source.x_col,
            y_col=source.y_col,
            id_col=source.id_col,
            hdu=source.hdu,
            **common,
        )
    if isinstance(source, GalaxyZooSource):
        from pipeline.ingest import ingest_galaxy_zoo

        return ingest_galaxy_zoo(
            source.catalog,
            source.images_dir,
            out,
            format=source.format,
            estimate=source.estimate,
            id_column=source.id_column,
            file_column=source.file_column,
            tol=source.tol,
            stamp_shape=stamp_shape or source.stamp_shape,
            size_policy=source.size_policy,
            **common,
        )
    raise TypeError(f"not an ingest source: {source!r}")


@task(name="ingest-chunk", task_run_name="ingest-{source.kind}-{index}", **IO_RETRIES)
def ingest_chunk(
    source: IngestSource,
    files: list[Path] | None,
    content_key: str,
    out: Path,
    rejects: Path,
    compression: str = "lzf",
    stamp_shape: tuple[int, int] | None = None,
    pixel_scale_arcsec: float | None = None,
    index: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Ingest one chunk of a source into ``out`` (+ ``rejects``); ``content_key`` (the sha256 of the
    chunk's files) is there for the cache key. Returns the report and the fingerprints of what it wrote."""
    report = run_ingest(
        source,
        files,
        out,
        rejects,
        compression=compression,
        stamp_shape=stamp_shape,
        pixel_scale_arcsec=pixel_scale_arcsec,
        progress=progress,
    )
    return {"report": report.to_dict(), "outputs": fingerprints([rejects, report.store])}


@task(name="merge-chunks", **IO_RETRIES)
def merge_chunks(
    parts: list[Path | None],
    rejects: list[Path],
    part_fingerprints: dict[str, Any],
    out: Path,
    rejects_path: Path,
    digests: dict[str, str | None] | None = None,
    stamp_shape: tuple[int, int] | None = None,
    size_policy: str = "reject",
    compression: str = "lzf",
) -> dict[str, Any]:
    """Merge chunk stores and rejects (``part_fingerprints`` is there for the cache key)."""
    from pipeline.store import merge_stores

    usable = None if digests is None else {k: v for k, v in digests.items() if v}
    report = merge_stores(
        parts,
        rejects,
        out,
        rejects_path=rejects_path,
        digests=usable,
        stamp_shape=stamp_shape,
        size_policy=size_policy,
        compression=compression,
    )
    return {"report": report.to_dict(), "outputs": fingerprints([rejects_path, report.store])}


def _chunk_files(source: Any) -> list[Path]:
    return expand_inputs(source.inputs) if isinstance(source, FitsSource) else alert_files(source.inputs)


def _store_facts(store: str | None) -> tuple[tuple[int, int] | None, float | None]:
    if not store:
        return None, None
    with open_store(store) as opened:
        scale = opened.pixel_scale_arcsec
        return opened.stamp_shape, (scale if math.isfinite(scale) else None)


def ingest_stage(
    runner: TaskRunner,
    source: Any,
    out: Path,
    *,
    rejects: Path | None = None,
    compression: str = "lzf",
    chunk_files: int = DEFAULT_CHUNK_FILES,
    progress: bool = False,
) -> StageResult:
    """Ingest ``source`` into the store ``out`` with tasks on ``runner`` (module docstring).

    Returns:
        :class:`StageResult` whose ``result`` is the :class:`IngestReport` (seconds: the stage's wall time).
    """
    t0 = time.perf_counter()
    out = Path(out)
    run_dir = out.parent
    rejects = Path(rejects) if rejects else out.with_name("rejects.csv")
    chunk_task = cached(ingest_chunk, run_dir)
    common = {"source": source, "compression": compression}
    if source.kind not in CHUNKED_KINDS:
        digests = file_digests(expand_files(source_paths(source)))
        call = {**common, "files": None, "content_key": content_key(source_paths(source)), "out": out}
        call.update(rejects=rejects, index=0, progress=progress)
        outcomes = run_tasks(runner, chunk_task, [call], desc=f"ingest {source.kind}", progress=False)
        report = IngestReport(**outcomes[0].result["report"])
    else:
        files = _chunk_files(source)
        digests = file_digests(files)
        chunks = [files[i : i + chunk_files] for i in range(0, len(files), max(1, chunk_files))] or [[]]

        def call(i: int, shape, scale, single: bool = False) -> dict[str, Any]:
            key = combined_sha256(f"{p}:{digests[str(p)]}" for p in chunks[i])
            parts = state_dir(run_dir) / "chunks"
            return {
                **common,
                "files": chunks[i],
                "content_key": key,
                "out": out if single else parts / f"{out.stem}-{i:05d}.h5",
                "rejects": rejects if single else parts / f"{out.stem}-{i:05d}-rejects.csv",
                "stamp_shape": shape,
                "pixel_scale_arcsec": scale,
                "index": i,
                "progress": progress and single,
            }

        shape = source.stamp_shape
        scale = getattr(source, "pixel_scale_arcsec", None)
        if len(chunks) == 1:
            outcomes = run_tasks(runner, chunk_task, [call(0, shape, scale, single=True)])
            report = IngestReport(**outcomes[0].result["report"])
        else:
            outcomes, first = [], 0
            while shape is None and first < len(chunks):  # the first chunk that ingests fixes the size
                outcomes += run_tasks(runner, chunk_task, [call(first, None, scale)])
                shape, found_scale = _store_facts(outcomes[-1].result["report"]["store"])
                scale = scale or found_scale
                first += 1
            desc = f"ingest {source.kind} ({len(files)} files)"
            rest = [call(i, shape, scale) for i in range(first, len(chunks))]
            outcomes += run_tasks(runner, chunk_task, rest, desc=desc, progress=progress)
            reports = [o.result["report"] for o in outcomes]
            merge = {
                "parts": [r["store"] for r in reports],
                "rejects": [r["rejects"] for r in reports],
                "part_fingerprints": {k: v for o in outcomes for k, v in o.result["outputs"].items()},
                "out": out,
                "rejects_path": rejects,
                "digests": digests if isinstance(source, FitsSource) else None,
                "stamp_shape": shape,
                "size_policy": getattr(source, "size_policy", "reject"),
                "compression": compression,
            }
            merged = run_tasks(runner, cached(merge_chunks, run_dir), [merge])
            outcomes += merged
            report = IngestReport(**merged[0].result["report"])
    report.seconds = time.perf_counter() - t0
    inputs = [file_record(p, d) for p, d in digests.items()]
    return StageResult(report, outcomes, inputs, report.seconds)


def ingest_manifest_record(stage: StageResult, config: dict[str, Any], started: str) -> dict[str, Any]:
    """The manifest stage record of an ingest."""
    report: IngestReport = stage.result
    return stage_record(
        config=config,
        inputs=stage.inputs,
        outputs={"store": report.store, "rejects": report.rejects},
        started=started,
        seconds=stage.seconds,
        timings_s={"ingest": stage.seconds},
        tasks=stage.tasks,
        counts={
            "inputs": report.n_inputs,
            "ingested": report.n_ingested,
            "rejected": report.n_rejected,
            "reject_reasons": report.reject_reasons,
        },
    )


@flow(name="ingest")
def ingest_flow(
    source: IngestSource,
    out: Path,
    rejects: Path | None = None,
    compression: Compression = "lzf",
    chunk_files: int = DEFAULT_CHUNK_FILES,
    runner: RunnerOptions = RunnerOptions(),  # noqa: B008  (a pydantic default, never mutated)
    manifest: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Ingest a source into the stamp store ``out`` and ``rejects.csv``; write the run manifest
    (default ``manifest.json`` beside the store) and publish the counts as artifacts (``ingest-summary``,
    ``ingest-table``).

    Returns:
        The :class:`IngestReport` as a dict (``n_inputs == n_ingested + n_rejected``).
    """
    from pipeline.runs import utc_timestamp

    started = utc_timestamp()
    with make_task_runner(runner) as task_runner:
        stage = ingest_stage(
            task_runner,
            source,
            out,
            rejects=rejects,
            compression=compression,
            chunk_files=chunk_files,
            progress=progress,
        )
    report: IngestReport = stage.result
    config = {
        "source": source.model_dump(mode="json"),
        "out": str(out),
        "rejects": report.rejects,
        "compression": compression,
        "chunk_files": chunk_files,
        "runner": runner.model_dump(mode="json"),
    }
    record_stage(
        manifest or Path(out).with_name(MANIFEST_NAME),
        "ingest",
        ingest_manifest_record(stage, config, started),
    )
    rows = summary_rows(ingest=report.to_dict())
    publish_summary(
        "ingest", summary_markdown(f"ingest into {out}", rows), rows, description=report.summary()
    )
    return report.to_dict()
