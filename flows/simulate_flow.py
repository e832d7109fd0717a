"""The simulate flow: GalSim galaxies with simulated Galaxy Zoo votes, or real/bogus triplets
(:mod:`pipeline.simulate`), one cached task per data set.

A simulation is a pure function of its options and seed (byte-identical files whatever the number of
worker processes), so the task caches on the options alone (plus the library's source): rerunning the
same command reuses the files. Inside a Dask worker, which may not start processes, it runs in one process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import TaskRunner

from flows.caching import cached, fingerprints
from flows.params import SimulateParams
from flows.runners import RunnerOptions, StageResult, in_daemon_process, make_task_runner, run_tasks
from pipeline.runs import MANIFEST_NAME, record_stage, stage_record, utc_timestamp

log = logging.getLogger(__name__)


@task(name="simulate", task_run_name="simulate-{params.what}-{params.n}")
def simulate_task(params: SimulateParams, progress: bool = False) -> dict[str, Any]:
    """Simulate one data set into ``params.out``; returns its summary and the fingerprints of its tables."""
    workers = params.workers
    if in_daemon_process():
        log.info("in a daemonic worker process: simulating in one process")
        workers = 1
    start = time.perf_counter()
    out = Path(params.out)
    if params.what == "galaxies":
        from pipeline.simulate.galaxies import GalaxyImaging, simulate_galaxies

        tables = simulate_galaxies(
            params.n,
            out,
            seed=params.seed,
            imaging=GalaxyImaging(size=params.size, pixel_scale=params.pixel_scale),
            workers=workers,
            chunk_size=params.chunk_size or 50,
            jpeg=params.jpeg,
            progress=progress,
        )
        summary = {
            "galaxies": params.n,
            "out": str(out),
            "seconds": round(time.perf_counter() - start, 2),
            "types": {str(k): int(v) for k, v in tables["truth"]["type"].value_counts().items()},
        }
        written = [out / "training_solutions.csv", out / "truth.csv", out / "simulation.json"]
    else:
        from pipeline.simulate.transients import simulate_transients

        labels = simulate_transients(
            params.n,
            out,
            survey=params.survey,
            seed=params.seed,
            workers=workers,
            chunk_size=params.chunk_size or 500,
            compress=params.compress,
            progress=progress,
        )
        summary = {
            "triplets": params.n,
            "survey": params.survey,
            "out": str(out),
            "seconds": round(time.perf_counter() - start, 2),
            "real": int(labels["real"].sum()),
            "kinds": {str(k): int(v) for k, v in labels["kind"].value_counts().items()},
        }
        written = [out / "labels.csv", out / "simulation.json"]
    return {"result": summary, "outputs": fingerprints(written)}


def simulate_stage(
    runner: TaskRunner, params: list[SimulateParams], *, progress: bool = False
) -> StageResult:
    """Simulate every data set of ``params``; ``result`` is the list of summaries, in order. The cache of
    each lives beside its output folder (``<out>/../.stampflow``)."""
    t0 = time.perf_counter()
    tasks = [cached(simulate_task, Path(p.out).parent) for p in params]
    calls = [{"params": p, "progress": progress and len(params) == 1} for p in params]
    outcomes = run_tasks(runner, tasks, calls, desc="simulate", progress=progress and len(params) > 1)
    return StageResult([o.result["result"] for o in outcomes], outcomes, [], time.perf_counter() - t0)


@flow(name="simulate")
def simulate_flow(
    params: SimulateParams, progress: bool = False, manifest: Path | None = None
) -> dict[str, Any]:
    """Simulate a data set with known truth and record the ``simulate-<folder>`` stage in the run manifest
    (default: ``manifest.json`` in the folder that holds the output folder).

    Returns:
        The summary: counts per type or kind, output folder, seconds.
    """
    started = utc_timestamp()
    with make_task_runner(RunnerOptions()) as runner:
        stage = simulate_stage(runner, [params], progress=progress)
    record = stage_record(
        config=params.model_dump(mode="json"),
        outputs={"folder": params.out},
        seed=params.seed,
        started=started,
        seconds=stage.seconds,
        timings_s={"simulate": stage.seconds},
        tasks=stage.tasks,
    )
    target = manifest or Path(params.out).parent / MANIFEST_NAME
    record_stage(target, f"simulate-{Path(params.out).name}", record)
    return stage.result[0]
