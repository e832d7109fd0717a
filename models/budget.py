"""Compute budgets for training measured in CPU time, which other jobs on the machine do not change.

A wall-clock limit (Lightning's ``max_time``) gives a model fewer steps when other processes share the
cores, so two models trained "for 5 minutes" one after the other get different compute. CPU time of the
training process (:func:`time.process_time`: user + system time of all its threads, not of child processes
such as DataLoader workers) counts only the work this process did, whatever the load.

- :class:`CpuTimeLimit`: a Lightning callback that stops fitting once the process has used ``budget_s``
  CPU-seconds since fitting started (checked after every training step), and tells the model how much of the
  budget is used (:meth:`CpuTimeLimit.fraction_used`, which ``MorphologyModel.training_progress`` follows
  for its learning-rate drops). The stopping step varies from run to run.
- :class:`StepClock`: records the CPU and wall time of every training step; :func:`steps_for_budget` turns
  such a measurement into a fixed number of steps, so that a budget can be spent reproducibly (a step limit
  gives the same numbers for the same seed; a CPU-time limit does not).

A budget of "M minutes on K cores" is ``M * 60 * K`` CPU-seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import lightning as L


def cpu_budget_s(minutes: float, cores: int = 2) -> float:
    """CPU-seconds of a budget of ``minutes`` of wall time on ``cores`` fully used cores."""
    if minutes <= 0 or cores < 1:
        raise ValueError(f"a budget needs minutes > 0 and cores >= 1, got {minutes} min on {cores} cores")
    return float(minutes) * 60.0 * int(cores)


class CpuTimeLimit(L.Callback):
    """Stop fitting after ``budget_s`` CPU-seconds of this process (``time.process_time``) since fit start.

    Checked after each training batch, so a run overshoots by at most one step (plus validation and
    end-of-epoch work that happens in between). ``cpu_seconds`` is the CPU time used by the fit so far.
    """

    def __init__(self, budget_s: float):
        super().__init__()
        if not budget_s > 0:
            raise ValueError(f"the CPU-time budget must be > 0 s, got {budget_s}")
        self.budget_s = float(budget_s)
        self._start: float | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.process_time()

    @property
    def cpu_seconds(self) -> float:
        """CPU-seconds used since fit start (0 before it)."""
        return 0.0 if self._start is None else time.process_time() - self._start

    def fraction_used(self) -> float:
        """Used fraction of the budget, in [0, 1]."""
        return min(self.cpu_seconds / self.budget_s, 1.0)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if self.cpu_seconds >= self.budget_s and not trainer.should_stop:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, float]:
        return {"budget_s": self.budget_s}


class StepClock(L.Callback):
    """Record ``time.process_time()`` and ``time.perf_counter()`` at the start of every training batch.

    ``cpu[k]`` / ``wall[k]`` are taken when batch ``k`` starts, after the batch was loaded, so the difference
    between two entries covers loading, forward, backward and the optimiser step of the batches between them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        self.cpu.append(time.process_time())
        self.wall.append(time.perf_counter())

    def cpu_per_step(self, skip: int = 5) -> float:
        """Mean CPU-seconds per step over the recorded steps after the first ``skip`` (warm-up)."""
        return _mean_step(self.cpu, skip)

    def wall_per_step(self, skip: int = 5) -> float:
        """Mean wall seconds per step over the recorded steps after the first ``skip``."""
        return _mean_step(self.wall, skip)


def _mean_step(stamps: Sequence[float], skip: int) -> float:
    n = len(stamps) - skip - 1
    if n < 1:
        raise ValueError(f"need more than {skip + 1} recorded steps, got {len(stamps)}")
    return (stamps[-1] - stamps[skip]) / n


def steps_for_budget(budget_s: float, cpu_per_step_s: float) -> int:
    """Whole training steps that fit in ``budget_s`` CPU-seconds at ``cpu_per_step_s`` each (at least 1)."""
    if not cpu_per_step_s > 0 or not math.isfinite(cpu_per_step_s):
        raise ValueError(f"CPU time per step must be a positive number, got {cpu_per_step_s}")
    return max(1, int(budget_s / cpu_per_step_s))
