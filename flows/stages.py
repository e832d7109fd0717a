"""The one recorder of a run folder's stages: each stage's wall time, its ``manifest.json`` record
(:mod:`pipeline.runs.manifest`), the final states of its Prefect tasks, and the artifacts it publishes.

A flow makes one :class:`StageRecorder` per run folder and records every stage through it::

    recorder = StageRecorder(out / MANIFEST_NAME, seed=seed)
    with recorder.stage("score", config={"models": [...]}) as stage:
        stage.add(score_stage(runner, ...))  # a flows.runners.StageResult: inputs, task outcomes
        stage.outputs = {"catalog": "..."}
    recorder.timings_s  # {"score": seconds, ...}, in the order the stages ran
    recorder.tasks  # {"Completed": n, "Cached": n, ...} over every stage

A stage whose work is timed by its own :class:`~flows.runners.StageResult` is recorded with
:meth:`StageRecorder.record`; a record made elsewhere (e.g. :func:`flows.ingest_flow.ingest_manifest_record`)
with :meth:`StageRecorder.write`. A stage that raises is not recorded.

Counts: a stage that turns inputs into outputs records ``counts`` (:func:`stage_counts`) with ``inputs``,
``outputs``, ``rejected`` (+ ``reject_reasons``) and ``flagged``: ``inputs == outputs + rejected``, and the
flagged items (e.g. stamps with masked pixels, alerts with a quality flag) are outputs too, a breakdown
(``flagged <= outputs``). Every record written checks its counts (:func:`check_counts`; an ingest's
``ingested`` is its ``outputs``) and a stage whose counts do not add up raises
:class:`StageCountMismatch` instead of being recorded.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.artifacts import publish_summary
from flows.runners import StageResult
from pipeline.runs import record_stage, stage_record, utc_timestamp


class StageCountMismatch(RuntimeError):
    """A stage's counts do not add up (inputs != outputs + rejected, or more flagged than outputs)."""


def stage_counts(
    inputs: int,
    outputs: int,
    *,
    rejected: int = 0,
    flagged: int = 0,
    reject_reasons: Mapping[str, int] | None = None,
    stage: str = "",
    **more: Any,
) -> dict[str, Any]:
    """The ``counts`` of a stage record (module docstring), checked (a mismatch names ``stage``); ``more``:
    further counts kept as given.

    Raises:
        StageCountMismatch: ``inputs != outputs + rejected``, ``flagged > outputs``, or reject reasons that
            do not sum to ``rejected``.
    """
    counts = {
        "inputs": int(inputs),
        "outputs": int(outputs),
        "rejected": int(rejected),
        "flagged": int(flagged),
    }
    if reject_reasons is not None:
        counts["reject_reasons"] = {str(k): int(v) for k, v in reject_reasons.items()}
    return check_counts({**more, **counts}, stage)


#: Names an existing record uses for its outputs count (an ingest's ``ingested``).
_OUTPUT_NAMES = ("outputs", "ingested", "scored", "n_scored")


def check_counts(counts: Mapping[str, Any], stage: str = "") -> dict[str, Any]:
    """``counts`` with ``outputs``, ``rejected`` and ``flagged`` filled in (``outputs`` from an ingest's
    ``ingested``; ``rejected``/``flagged`` 0 when absent) when it has ``inputs``; raises
    :class:`StageCountMismatch` naming ``stage`` when they do not add up. Counts without ``inputs`` (a stage
    that does not turn inputs into outputs) are returned as they are."""
    out = dict(counts)
    if "inputs" not in out:
        return out
    name = next((n for n in _OUTPUT_NAMES if n in out), None)
    if name is None:
        raise StageCountMismatch(f"stage {stage!r}: counts have inputs but no outputs: {dict(counts)}")
    out.setdefault("outputs", out[name])
    out.setdefault("rejected", 0)
    out.setdefault("flagged", 0)
    n_in, n_out, n_rej, n_flag = (int(out[k]) for k in ("inputs", "outputs", "rejected", "flagged"))
    problems = []
    if n_in != n_out + n_rej:
        problems.append(f"inputs {n_in} != outputs {n_out} + rejected {n_rej}")
    if not 0 <= n_flag <= n_out:
        problems.append(f"flagged {n_flag} is not within the {n_out} outputs")
    reasons = out.get("reject_reasons")
    if reasons is not None and sum(int(v) for v in reasons.values()) != n_rej:
        problems.append(f"reject reasons {dict(reasons)} do not sum to rejected {n_rej}")
    if problems:
        raise StageCountMismatch(f"stage {stage!r}: counts do not add up: {'; '.join(problems)}")
    return out


@dataclass
class Stage:
    """A stage being recorded (:meth:`StageRecorder.stage`): what it ran and what its record will say."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    results: list[StageResult] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    #: further fields of the record (counts, metrics...)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, result: StageResult) -> StageResult:
        """Count ``result`` (its input files and task outcomes) in this stage; returns it."""
        self.results.append(result)
        return result


class StageRecorder:
    """Records the stages of one run into its manifest and keeps the run's totals.

    Attributes:
        manifest: the ``manifest.json`` the stages are written to.
        seed: the run's seed, written in every stage record.
        started: ISO time (UTC) the recorder was made: the start of the run.
        timings_s: stage name -> wall seconds, in the order the stages were recorded.
        tasks: task final state -> count, over every recorded stage.
        artifacts: artifact key prefix -> ``{"markdown": key, "table": key}`` of what was published.
    """

    def __init__(self, manifest: str | os.PathLike, *, seed: int | None = None) -> None:
        self.manifest = Path(manifest)
        self.seed = seed
        self.started = utc_timestamp()
        self.timings_s: dict[str, float] = {}
        self.tasks: Counter[str] = Counter()
        self.artifacts: dict[str, dict[str, str]] = {}

    @contextmanager
    def stage(self, name: str, config: Mapping[str, Any] | None = None) -> Iterator[Stage]:
        """Time the block as the stage ``name`` and, when it ends without an error, record what was
        :meth:`Stage.add`-ed to it with its ``config``, ``outputs`` and ``extra`` fields."""
        started, t0 = utc_timestamp(), time.perf_counter()
        stage = Stage(name, dict(config or {}))
        yield stage
        self.record(
            name,
            stage.results,
            config=stage.config,
            outputs=stage.outputs,
            seconds=time.perf_counter() - t0,
            started=started,
            **stage.extra,
        )

    def record(
        self,
        name: str,
        results: StageResult | Sequence[StageResult],
        *,
        config: Mapping[str, Any],
        outputs: Mapping[str, Any] | None = None,
        seconds: float | None = None,
        started: str | None = None,
        step: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Write the stage ``name`` made of ``results``: their input files and task states.

        Args:
            seconds: wall time of the stage (default: the sum of the results' own seconds).
            started: ISO start time (default: now).
            step: the key of the record's ``timings_s`` (default ``name``).
            extra: further fields of the record.

        Returns:
            The record (JSON-safe), as written.
        """
        results = [results] if isinstance(results, StageResult) else list(results)
        seconds = sum(r.seconds for r in results) if seconds is None else seconds
        record = stage_record(
            config=config,
            inputs=[row for r in results for row in r.inputs],
            outputs=outputs,
            seed=self.seed,
            started=started,
            seconds=seconds,
            timings_s={step or name: seconds},
            tasks=dict(sum((Counter(r.tasks) for r in results), Counter())),
            **extra,
        )
        return self.write(name, record)

    def write(self, name: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write a ready-made stage record (:func:`pipeline.runs.stage_record`) under ``name``; its
        ``seconds`` and ``tasks`` count in the run's :attr:`timings_s` and :attr:`tasks`.

        Raises:
            StageCountMismatch: its ``counts`` do not add up (:func:`check_counts`); nothing is written.
        """
        if isinstance(record.get("counts"), Mapping):
            record = {**record, "counts": check_counts(record["counts"], name)}
        self.timings_s[name] = float(record.get("seconds") or 0.0)
        self.tasks.update(record.get("tasks") or {})
        record_stage(self.manifest, name, record)
        return dict(record)

    def record_run(
        self, name: str, *, config: Mapping[str, Any], outputs: Mapping[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Write the whole run as the stage ``name``: started with the recorder, the stages' seconds
        summed, their timings one by one, every task state and the ``extra`` fields."""
        record = stage_record(
            config=config,
            outputs=outputs,
            seed=self.seed,
            started=self.started,
            seconds=sum(self.timings_s.values()),
            timings_s=self.timings_s,
            tasks=dict(self.tasks),
            **extra,
        )
        record_stage(self.manifest, name, record)
        return record

    def publish(
        self, key: str, markdown: str, rows: Sequence[tuple[str, Any]], description: str | None = None
    ) -> dict[str, str]:
        """Publish a summary page and table (:func:`flows.artifacts.publish_summary`); returns their keys."""
        self.artifacts[key] = publish_summary(key, markdown, rows, description=description)
        return self.artifacts[key]

    def publish_report(self, report: Mapping[str, Any], key: str) -> dict[str, str]:
        """Publish a report task's result (:func:`flows.score_flow.publish_report`); returns the keys."""
        from flows.score_flow import publish_report  # imported here: the score flow may record stages

        self.artifacts[key] = publish_report(dict(report), key=key)
        return self.artifacts[key]
