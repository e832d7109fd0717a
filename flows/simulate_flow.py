"""The simulate flow: GalSim galaxies with simulated Galaxy Zoo votes, or real/bogus triplets
(:mod:`pipeline.simulate`), one cached task per data set.

A simulation is a pure function of its options and seed (byte-identical files whatever the number of
worker processes), so the task caches on the options alone (plus the library's source, and the content of
the background alerts and labels a real-background set reads): rerunning the same command reuses the files. Inside a Dask worker, which may not start processes, it runs in one process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import TaskRunner

from flows.caching import cached, content_key, fingerprints
from flows.params import SimulateParams
from flows.runners import RunnerOptions, StageResult, in_daemon_process, make_task_runner, run_tasks
from flows.stages import StageRecorder
from pipeline.runs import MANIFEST_NAME

log = logging.getLogger(__name__)


#: Objects per process-pool chunk of each simulator, unless ``params.chunk_size`` says.
DEFAULT_CHUNK_SIZE = {"galaxies": 50, "transients": 500}


def _where(params: SimulateParams, start: float) -> dict[str, Any]:
    return {"out": str(params.out), "seconds": round(time.perf_counter() - start, 2)}


def simulate_galaxies_into(params: SimulateParams, start: float, **common: Any) -> tuple[dict, list[str]]:
    """Galaxies with simulated votes (:func:`pipeline.simulate.galaxies.dataset.simulate_galaxies`); returns the
    summary (``galaxies``, ``out``, ``seconds`` since ``start``, ``types``) and the tables written."""
    from pipeline.simulate.galaxies import GalaxyImaging, simulate_galaxies

    imaging = GalaxyImaging(size=params.size, pixel_scale=params.pixel_scale)
    tables = simulate_galaxies(
        params.n, params.out, imaging=imaging, jpeg=params.jpeg, style=params.style, **common
    )
    types = tables["truth"]["type"].value_counts()
    summary = {
        "galaxies": params.n,
        "style": params.style,
        **_where(params, start),
        "types": {str(k): int(v) for k, v in types.items()},
    }
    return summary, ["training_solutions.csv", "truth.csv", "simulation.json"]


def simulate_transients_into(params: SimulateParams, start: float, **common: Any) -> tuple[dict, list[str]]:
    """Real/bogus triplets (:func:`pipeline.simulate.transients.dataset.simulate_transients`); returns the summary
    (``triplets``, ``survey``, ``out``, ``seconds`` since ``start``, ``real``, ``kinds``) and the tables
    written."""
    from pipeline.simulate.transients import simulate_transients

    labels = simulate_transients(
        params.n,
        params.out,
        survey=params.survey,
        compress=params.compress,
        backgrounds=params.backgrounds,
        labels_csv=params.labels,
        real_fraction=params.real_fraction,
        **common,
    )
    summary = {
        "triplets": params.n,
        "survey": params.survey,
        **_where(params, start),
        "real": int(labels["real"].sum()),
        "kinds": {str(k): int(v) for k, v in labels["kind"].value_counts().items()},
    }
    if params.backgrounds:
        summary["on_backgrounds"] = int(labels["background"].notna().sum())
    return summary, ["labels.csv", "simulation.json"]


def inputs_key(params: SimulateParams) -> str:
    """Content key of the files a simulation reads (the backgrounds and their labels; '' for none), so that
    a changed background file under the same name is simulated again."""
    if not params.backgrounds:
        return ""
    return content_key([*params.backgrounds, *([params.labels] if params.labels else [])])


@task(name="simulate", task_run_name="simulate-{params.what}-{params.n}")
def simulate_task(params: SimulateParams, progress: bool = False, inputs: str = "") -> dict[str, Any]:
    """Simulate one data set into ``params.out``; returns its summary (counts per type or kind, ``out``,
    ``seconds``) and the fingerprints of its tables. ``inputs`` (:func:`inputs_key`) is only part of the
    cache key."""
    workers = params.workers
    if in_daemon_process():
        log.info("in a daemonic worker process: simulating in one process")
        workers = 1
    simulate = simulate_galaxies_into if params.what == "galaxies" else simulate_transients_into
    summary, written = simulate(
        params,
        time.perf_counter(),
        seed=params.seed,
        workers=workers,
        chunk_size=params.chunk_size or DEFAULT_CHUNK_SIZE[params.what],
        progress=progress,
    )
    return {"result": summary, "outputs": fingerprints([Path(params.out) / name for name in written])}


def simulate_stage(
    runner: TaskRunner, params: list[SimulateParams], *, progress: bool = False
) -> StageResult:
    """Simulate every data set of ``params``; ``result`` is the list of summaries, in order. The cache of
    each lives beside its output folder (``<out>/../.stampflow``)."""
    t0 = time.perf_counter()
    tasks = [cached(simulate_task, Path(p.out).parent) for p in params]
    calls = [
        {"params": p, "progress": progress and len(params) == 1, "inputs": inputs_key(p)} for p in params
    ]
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
    recorder = StageRecorder(manifest or Path(params.out).parent / MANIFEST_NAME, seed=params.seed)
    with make_task_runner(RunnerOptions()) as runner:
        stage = simulate_stage(runner, [params], progress=progress)
    recorder.record(
        f"simulate-{Path(params.out).name}",
        stage,
        config=params.model_dump(mode="json"),
        outputs={"folder": params.out},
        started=recorder.started,
        step="simulate",
    )
    return stage.result[0]
