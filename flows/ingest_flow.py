"""The ingest flow: FITS stamps, alert packets, labelled triplets, image cutouts or Galaxy Zoo catalogs
into one stamp store and ``rejects.csv`` (docs/design.md, "Flows").

Every source goes through the reader of its kind (:mod:`pipeline.ingest.registry`, no dispatch here), and
its input files are found once and hashed once by the stage: those digests key the cache, split the chunks
and become the store's ``source_sha256``. Many-file (chunked) sources (``fits``, ``alerts``) are ingested in chunks of ``chunk_files`` files, one task per
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

from prefect import task
from prefect.task_runners import TaskRunner

from flows.caching import (
    IO_RETRIES,
    cached,
    digests_key,
    expand_files,
    file_digests,
    fingerprints,
    state_dir,
)
from flows.params import Compression, IngestSource
from flows.printable_flow import printable, printable_flow
from flows.runners import RunnerOptions, StageResult, make_task_runner, run_tasks
from flows.stages import StageRecorder
from pipeline.ingest import ingest_source, input_name, reader_class
from pipeline.runs import (
    MANIFEST_NAME,
    file_record,
    stage_record,
    summary_markdown,
    summary_rows,
)
from pipeline.store import IngestReport, open_store

#: Files per ingest task (DESIGN.md: tasks of hundreds to thousands of stamps).
DEFAULT_CHUNK_FILES = 1000


def with_store_facts(
    source: IngestSource, stamp_shape: tuple[int, int] | None, pixel_scale_arcsec: float | None
) -> IngestSource:
    """``source`` with the stamp size and pixel scale a first chunk fixed (where it has such options)."""
    facts = {"stamp_shape": stamp_shape, "pixel_scale_arcsec": pixel_scale_arcsec}
    fields = type(source).model_fields
    return source.model_copy(update={k: v for k, v in facts.items() if v is not None and k in fields})


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
    digests: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Ingest one chunk of a source (``files``; None: the whole source) into ``out`` (+ ``rejects``) through
    the source's reader (:func:`pipeline.ingest.registry.ingest_source`). ``content_key`` (the sha256 of
    the chunk's files) is there for the cache key; ``digests`` (input name -> sha256, computed once by the
    stage) give the store's ``source_sha256`` without hashing again. Returns the report and the
    fingerprints of what it wrote."""
    fixed = with_store_facts(source, stamp_shape, pixel_scale_arcsec)
    options = {"rejects_path": rejects, "compression": compression, "progress": progress}
    report = ingest_source(fixed, out, files=files, digests=digests, **options)
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


def _store_facts(store: str | None) -> tuple[tuple[int, int] | None, float | None]:
    if not store:
        return None, None
    with open_store(store) as opened:
        scale = opened.pixel_scale_arcsec
        return opened.stamp_shape, (scale if math.isfinite(scale) else None)


class _Chunks:
    """The chunk tasks of a chunked source: ``files`` in chunks of ``size``, each a task cached on its
    files' sha256 (``digests``, hashed once by the stage), writing a part store unless there is one chunk."""

    def __init__(self, source: IngestSource, files: list[Path], digests: dict[str, str | None], size: int):
        self.source, self.digests = source, digests
        self.files = [files[i : i + size] for i in range(0, len(files), max(1, size))] or [[]]

    def call(
        self, i: int, out: Path, rejects: Path, shape: Any, scale: Any, options: dict[str, Any]
    ) -> dict[str, Any]:
        """The parameters of chunk ``i``'s task (``shape``, ``scale``: what the store has fixed so far)."""
        digests = {name: self.digests[name] for name in map(input_name, self.files[i])}
        single = len(self.files) == 1
        parts = state_dir(out.parent) / "chunks"
        return {
            "source": self.source,
            "files": self.files[i],
            "content_key": digests_key(digests),
            "out": out if single else parts / f"{out.stem}-{i:05d}.h5",
            "rejects": rejects if single else parts / f"{out.stem}-{i:05d}-rejects.csv",
            "stamp_shape": shape,
            "pixel_scale_arcsec": scale,
            "index": i,
            "digests": digests,
            **options,
            "progress": options.get("progress", False) and single,
        }


def _ingest_chunked(
    runner: TaskRunner, chunks: _Chunks, out: Path, rejects: Path, options: dict[str, Any]
) -> tuple[IngestReport, list]:
    """Run the chunk tasks (the first chunk that ingests fixes the stamp size when none is given, as the
    first readable file does in one pass) and merge their parts in input order."""
    source, run_dir = chunks.source, out.parent
    chunk_task = cached(ingest_chunk, run_dir)
    shape = source.stamp_shape
    scale = getattr(source, "pixel_scale_arcsec", None)
    if len(chunks.files) == 1:
        outcomes = run_tasks(runner, chunk_task, [chunks.call(0, out, rejects, shape, scale, options)])
        return IngestReport(**outcomes[0].result["report"]), outcomes
    outcomes, first = [], 0
    while shape is None and first < len(chunks.files):
        outcomes += run_tasks(runner, chunk_task, [chunks.call(first, out, rejects, None, scale, options)])
        shape, found_scale = _store_facts(outcomes[-1].result["report"]["store"])
        scale = scale or found_scale
        first += 1
    desc = f"ingest {source.kind} ({sum(map(len, chunks.files))} files)"
    rest = [chunks.call(i, out, rejects, shape, scale, options) for i in range(first, len(chunks.files))]
    outcomes += run_tasks(runner, chunk_task, rest, desc=desc, progress=options.get("progress", False))
    reports = [o.result["report"] for o in outcomes]
    merge = {
        "parts": [r["store"] for r in reports],
        "rejects": [r["rejects"] for r in reports],
        "part_fingerprints": {k: v for o in outcomes for k, v in o.result["outputs"].items()},
        "out": out,
        "rejects_path": rejects,
        # where a stamp's catalog source is its file, the merge combines the accepted files' digests as
        # one pass does; otherwise the parts' own source_sha256 values are combined
        "digests": chunks.digests if reader_class(source.kind).sources_are_files else None,
        "stamp_shape": shape,
        "size_policy": getattr(source, "size_policy", "reject"),
        "compression": options["compression"],
    }
    merged = run_tasks(runner, cached(merge_chunks, run_dir), [merge])
    return IngestReport(**merged[0].result["report"]), outcomes + merged


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

    Every input file is found once (the reader's rule for chunked sources, every file of the named paths
    otherwise) and hashed once (:func:`flows.caching.file_digests`); those digests key the cache, split
    the chunks and become the store's ``source_sha256``. A file that cannot be read or named gets no
    digest here and becomes a reject in its chunk.

    Returns:
        :class:`StageResult` whose ``result`` is the :class:`IngestReport` (seconds: the stage's wall time).
    """
    t0 = time.perf_counter()
    out = Path(out)
    rejects = Path(rejects) if rejects else out.with_name("rejects.csv")
    options = {"compression": compression, "progress": progress}
    reader = reader_class(source.kind)
    if reader.chunked:
        files = reader.input_files(source)
        digests = file_digests(files)
        report, outcomes = _ingest_chunked(
            runner, _Chunks(source, files, digests, chunk_files), out, rejects, options
        )
    else:
        digests = file_digests(expand_files(source.input_paths()))
        call = {"source": source, "files": None, "content_key": digests_key(digests), "out": out}
        call.update(rejects=rejects, index=0, digests=digests, **options)
        outcomes = run_tasks(runner, cached(ingest_chunk, out.parent), [call], desc=f"ingest {source.kind}")
        report = IngestReport(**outcomes[0].result["report"])
    report.seconds = time.perf_counter() - t0
    inputs = [
        file_record(p, d) if d else {"path": p, "bytes": None, "sha256": None} for p, d in digests.items()
    ]
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


@printable_flow(name="ingest")
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
        "source": printable(source.model_dump(mode="json")),
        "out": str(out),
        "rejects": report.rejects,
        "compression": compression,
        "chunk_files": chunk_files,
        "runner": runner.model_dump(mode="json"),
    }
    recorder = StageRecorder(manifest or Path(out).with_name(MANIFEST_NAME))
    recorder.write("ingest", ingest_manifest_record(stage, config, started))
    rows = summary_rows(ingest=report.to_dict())
    recorder.publish(
        "ingest", summary_markdown(f"ingest into {out}", rows), rows, description=report.summary()
    )
    return report.to_dict()
