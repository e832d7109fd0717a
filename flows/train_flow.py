"""The train flow: ``python -m models.train`` as a subprocess, one cached task per model.

Training runs in its own process so that Lightning DDP, which re-executes its entry point on every device
and node, works from a flow (``--accelerator gpu --devices 4 --strategy ddp`` in :class:`TrainParams`), and
so that a crash or a CUDA context stays out of the flow's process. The task is cached on the options and
the sha256 of the training stores: a rerun with the same stores and options reuses the checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import TaskRunner

from flows.caching import REPO, cached, file_digests, fingerprints
from flows.params import TrainParams
from flows.runners import RunnerOptions, StageResult, make_task_runner, run_tasks
from flows.stages import StageRecorder
from pipeline.runs import MANIFEST_NAME, file_record

#: Lines of a failed training's log quoted in the error.
LOG_TAIL_LINES = 15


class TrainingFailed(RuntimeError):
    """``python -m models.train`` exited with an error (the message quotes its last log lines)."""


def train_command(params: TrainParams) -> list[str]:
    """The command line that trains ``params`` in a fresh Python process.

    Without ``threads``, the subprocess gets this process's torch thread count (in a fresh process that is
    torch's default, as the subprocess would choose; a process that changed it passes the change on, so
    that training gives the same numbers as it would in this process).
    """
    if params.threads is None:
        import torch

        params = params.model_copy(update={"threads": torch.get_num_threads()})
    return [sys.executable, "-m", "models.train", *params.argv()]


def last_json_object(text: str) -> dict[str, Any]:
    """The last JSON object printed at the start of a line in ``text`` (the training result)."""
    decoder = json.JSONDecoder()
    for start in reversed([i for i, c in enumerate(text) if c == "{" and (i == 0 or text[i - 1] == "\n")]):
        try:
            value, _ = decoder.raw_decode(text[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("no JSON result in the training output")


def _tail(path: Path | None, text: str | None) -> str:
    source = path.read_text(errors="replace") if path and path.exists() else (text or "")
    return "\n".join(source.splitlines()[-LOG_TAIL_LINES:])


@task(name="train", task_run_name="train-{params.task}-{params.preset}")
def train_task(
    params: TrainParams,
    store_sha256: dict[str, str | None],
    log_file: Path | None = None,
    parent_sha256: str | None = None,
) -> dict[str, Any]:
    """Train in a subprocess; its stderr goes to ``log_file`` (None: this process's stderr).

    ``store_sha256`` (the stores' content) and ``parent_sha256`` (the content of the ``init_from``
    checkpoint, when fine-tuning) are there for the cache key. Returns the training result
    (``checkpoint``, ``model_card``, ``metrics``, ``seconds``, ``epochs``) and the checkpoint's fingerprint.

    Raises:
        TrainingFailed: the subprocess failed; the message has its exit code and last log lines.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") if log_file else open(os.devnull, "w") as log:
        proc = subprocess.run(
            train_command(params),
            stdout=subprocess.PIPE,
            stderr=log if log_file else None,
            text=True,
            env=env,
            check=False,
        )
    if proc.returncode != 0:
        where = f"; log: {log_file}" if log_file else ""
        raise TrainingFailed(
            f"training {params.task} ({params.preset}) on {[str(s) for s in params.stores]} exited with "
            f"code {proc.returncode}{where}\n{_tail(log_file, proc.stdout)}"
        )
    result = last_json_object(proc.stdout)
    return {"result": result, "outputs": fingerprints([result["checkpoint"], result["model_card"]])}


def train_stage(
    runner: TaskRunner,
    params: Sequence[TrainParams],
    *,
    log_files: Sequence[Path | None] | None = None,
    progress: bool = False,
) -> StageResult:
    """Train every model of ``params`` (at once, as the runner allows); ``result`` is the list of
    training results in the order of ``params``."""
    t0 = time.perf_counter()
    stores = sorted({str(s) for p in params for s in p.stores})
    digests = file_digests(stores)
    parents = file_digests(sorted({str(p.init_from) for p in params if p.init_from is not None}))
    logs = list(log_files) if log_files is not None else [None] * len(params)
    calls = [
        {
            "params": p,
            "store_sha256": {str(s): digests[str(s)] for s in p.stores},
            "log_file": log,
            "parent_sha256": parents[str(p.init_from)] if p.init_from is not None else None,
        }
        for p, log in zip(params, logs, strict=True)
    ]
    tasks = [cached(train_task, p.out) for p in params]  # each model caches in its own folder
    outcomes = run_tasks(runner, tasks, calls, desc="train", progress=progress)
    seconds = time.perf_counter() - t0
    inputs = [file_record(p, d) for p, d in {**digests, **parents}.items()]
    return StageResult([o.result["result"] for o in outcomes], outcomes, inputs, seconds)


@flow(name="train")
def train_flow(
    params: TrainParams, log_file: Path | None = None, manifest: Path | None = None
) -> dict[str, Any]:
    """Train one model as a subprocess (``python -m models.train``) and record the ``train`` stage in the
    run manifest (default: ``manifest.json`` in the folder that holds the output folder).

    Returns:
        The training result: ``checkpoint``, ``model_card``, ``metrics``, ``seconds``, ``epochs``.
    """
    recorder = StageRecorder(manifest or Path(params.out).parent / MANIFEST_NAME, seed=params.seed)
    with make_task_runner(RunnerOptions()) as runner:
        stage = train_stage(runner, [params], log_files=[log_file])
    result = stage.result[0]
    recorder.record(
        "train",
        stage,
        config=params.model_dump(mode="json"),
        outputs={"checkpoint": result["checkpoint"], "model_card": result["model_card"]},
        started=recorder.started,
        metrics=result.get("metrics", {}),
    )
    return result


@task(name="calibrate", task_run_name="calibrate-{out.name}")
def calibrate_task(
    model: Path, store: Path, out: Path, labels_column: str | None = None, fpr: float | None = None
) -> dict[str, Any]:
    """:func:`models.calibration.calibrate_checkpoint`: a new version of ``model`` in ``out``, its temperature
    and threshold fitted on the labelled ``store``."""
    from models.calibration import calibrate_checkpoint

    return calibrate_checkpoint(model, store, out, labels_column=labels_column, fpr=fpr)


@flow(name="calibrate")
def calibrate_flow(
    model: Path, store: Path, out: Path, labels_column: str | None = None, fpr: float | None = None
) -> dict[str, Any]:
    """Recalibrate a real-bogus checkpoint on a labelled store into a new model version (``out/model.ckpt``
    and its card) and record the ``calibrate`` stage in the run manifest (``manifest.json`` in the folder
    that holds ``out``).

    Returns:
        :func:`models.calibration.calibrate_checkpoint`'s summary: the new checkpoint, card, name, version,
        parent version, the calibration data, the rule and the metrics before and after.
    """
    config = {
        "model": str(model),
        "store": str(store),
        "out": str(out),
        "labels_column": labels_column,
        "fpr": fpr,
    }
    recorder = StageRecorder(Path(out).parent / MANIFEST_NAME)
    with recorder.stage("calibrate", config) as stage:
        t0 = time.perf_counter()
        digests = file_digests([str(model), str(store)])
        result = calibrate_task(Path(model), Path(store), Path(out), labels_column, fpr)
        inputs = [file_record(p, d) for p, d in digests.items()]
        stage.add(StageResult(result, [], inputs, time.perf_counter() - t0))
        stage.outputs = {"checkpoint": result["checkpoint"], "model_card": result["model_card"]}
        stage.extra = {"metrics": {"before": result["before"], "after": result["after"]}}
    return result
