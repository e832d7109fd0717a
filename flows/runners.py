"""Where tasks run: a thread pool on this machine (default) or a Dask cluster (prefect-dask), and the one
helper every flow uses to run a list of task calls with a progress bar and recompute stale cache hits.

- ``threads``: Prefect's ``ThreadPoolTaskRunner`` in the flow's process, one thread per CPU (torch
  releases the GIL in its heavy parts; scoring tasks then use one torch thread each).
- ``dask`` with ``dask_address="tcp://host:port"``: an existing Dask cluster (workers must see the same
  file system: tasks pass paths). Without an address: a local cluster of ``dask_workers`` processes with
  one thread each, started for the flow and closed after it.

Dask worker processes are daemonic and may not start child processes: tasks that would (the simulators'
process pool) check :func:`in_daemon_process` and run in one process there; scoring and ingest use no
DataLoader workers at all, and training runs as its own subprocess (a normal, non-daemonic process whose
data module has ``num_workers=0`` by default).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect.futures import as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import Task
from pydantic import BaseModel, Field, model_validator

from flows.caching import outputs_intact
from flows.progress import logs_above_bars, work_bar

log = logging.getLogger(__name__)


class RunnerOptions(BaseModel):
    """How a flow runs its chunked tasks."""

    task_runner: Literal["threads", "dask"] = Field(
        "threads", description="threads: a thread pool in this process; dask: a Dask cluster"
    )
    dask_address: str | None = Field(
        None, description="scheduler address of an existing Dask cluster (tcp://host:port); none: a local one"
    )
    dask_workers: int = Field(2, ge=1, description="worker processes of the local Dask cluster")
    max_workers: int | None = Field(
        None, ge=1, description="threads of the thread pool (default: one per CPU)"
    )

    @model_validator(mode="after")
    def _address_needs_dask(self) -> RunnerOptions:
        if self.dask_address and self.task_runner != "dask":
            raise ValueError("dask_address is given but task_runner is not 'dask'")
        return self


def make_task_runner(options: RunnerOptions | None = None) -> TaskRunner:
    """A fresh, not yet started task runner for ``options`` (use it as a context manager)."""
    options = options or RunnerOptions()
    if options.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=options.max_workers or os.cpu_count() or 1)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # read by the worker processes
    logging.getLogger("distributed").setLevel(logging.WARNING)
    from prefect_dask import DaskTaskRunner

    if options.dask_address:
        return DaskTaskRunner(address=options.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": options.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        },
    )


def in_daemon_process() -> bool:
    """True inside a daemonic process (a Dask worker), which may not start child processes."""
    return bool(multiprocessing.current_process().daemon)


@dataclass
class TaskOutcome:
    """A finished task call: its result and how its run ended (``Completed``, ``Cached`` or
    ``Recomputed``: a cache hit whose output files had changed, run again)."""

    result: Any
    state: str


def work_sizes(calls: Sequence[Mapping[str, Any]]) -> tuple[list[int], str]:
    """How much work each call is, in one unit: the stamps of a row range (``start``, ``stop``), else the
    files of a file chunk (``files``), else one task each."""
    if calls and all("start" in c and "stop" in c for c in calls):
        return [max(0, int(c["stop"]) - int(c["start"])) for c in calls], "stamp"
    if calls and all(isinstance(c.get("files"), Sequence) for c in calls):
        return [len(c["files"]) for c in calls], "file"
    return [1] * len(calls), "task"


def run_tasks(
    runner: TaskRunner,
    task: Task | Sequence[Task],
    calls: Sequence[Mapping[str, Any]],
    *,
    desc: str | None = None,
    progress: bool = False,
    wait_for: Iterable[Any] | None = None,
) -> list[TaskOutcome]:
    """Submit ``task`` once per parameter mapping of ``calls`` to ``runner`` and wait for all of them
    (``task`` may also be a sequence: one task per call).

    Shows a progress bar when ``progress`` that counts the work done (:func:`work_sizes`: stamps or files,
    with the rate and the time left), with log lines printed above it. A cached result whose output files
    are no longer as the task left them (:func:`flows.caching.outputs_intact`) is recomputed with
    ``refresh_cache``. The first failure is raised (after every call has finished).

    Returns:
        One :class:`TaskOutcome` per call, in the order of ``calls``.
    """
    tasks = list(task) if isinstance(task, Sequence) else [task] * len(calls)
    if len(tasks) != len(calls):
        raise ValueError(f"{len(tasks)} tasks for {len(calls)} calls")
    futures = [
        runner.submit(t, dict(params), wait_for=wait_for) for t, params in zip(tasks, calls, strict=True)
    ]
    sizes, unit = work_sizes(calls)
    size_of = {f.task_run_id: n for f, n in zip(futures, sizes, strict=True)}
    with logs_above_bars(progress), work_bar(desc, sum(sizes), unit, progress) as bar:
        for done in as_completed(futures):
            bar.update(size_of.get(done.task_run_id, 1))
    outcomes = []
    for t, params, future in zip(tasks, calls, futures, strict=True):
        result = future.result()
        state = future.state.name or "Completed"
        if state == "Cached" and not outputs_intact(result):
            log.info("%s: cached outputs changed since; recomputing", t.name)
            result = runner.submit(t.with_options(refresh_cache=True), dict(params)).result()
            state = "Recomputed"
        outcomes.append(TaskOutcome(result, state))
    return outcomes


def state_counts(outcomes: Iterable[TaskOutcome]) -> Counter:
    """How many task runs ended in each state."""
    return Counter(o.state for o in outcomes)


@dataclass
class StageResult:
    """What a stage did: its main result, every task outcome, the input file records, wall seconds."""

    result: Any
    outcomes: list[TaskOutcome] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tasks(self) -> dict[str, int]:
        return dict(state_counts(self.outcomes))
