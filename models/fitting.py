"""Fitting and evaluating a model with a deterministic ``lightning.Trainer`` (the middle of
:func:`models.train.train_model`).

- :class:`FitOptions`: the fit's limits (epochs, steps, wall time, CPU time of the process), validation
  cadence, hardware (accelerator, devices, nodes, strategy) and extra callbacks; builds the trainer.
- :func:`fit_and_evaluate`: fit, then the validation metrics of the final weights, the test metrics and the
  model's ``after_fit`` card fields (:class:`FitOutcome`), with the wall and CPU seconds of fitting.

Under DDP (``strategy="ddp"``) every rank runs all of this; the data module shards the training batches and
gives each rank the whole validation and test splits, so each rank's metrics and ``after_fit`` fields are
those of one process, and :func:`models.train.train_model` writes the outputs on rank 0 only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch

from models.budget import CpuTimeLimit

#: ``check_val_every_n_epoch`` that never comes: validation only after fitting.
NEVER_EPOCHS = 10**9


def _float_metrics(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value)
        elif isinstance(value, (int, float)):
            out[key] = float(value)
    return out


class _LastValidation(L.Callback):
    """Remembers the training step at which validation last ran (-1: never)."""

    def __init__(self) -> None:
        self.step = -1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.step = trainer.global_step


@dataclass(frozen=True)
class FitOptions:
    """How :func:`train_model` fits: limits, validation, hardware and callbacks of the ``lightning.Trainer``.

    Attributes:
        max_epochs: epoch limit.
        max_steps: optimiser-step limit (-1: none); with a fixed seed the numbers are reproducible.
        max_time_s: wall-time limit for fitting, in seconds (None: none).
        max_cpu_time_s: limit on the CPU time of this process while fitting, in CPU-seconds (all its
            threads; "M minutes on K cores" is ``M * 60 * K``); see :class:`models.budget.CpuTimeLimit`.
        val_every_n_epochs: validate every this many epochs while fitting; None: only after fitting (no
            validation cost inside a budget). The validation metrics are always those of the final weights
            (validated once more after fitting when the fit did not end with a validation).
        accelerator, devices, num_nodes, strategy: passed to ``lightning.Trainer`` (DDP runs need training
            to be started as ``python -m models.train``).
        limit_train_batches: cap batches per epoch (quick runs and tests).
        progress: show Lightning's progress bar.
        callbacks: extra Lightning callbacks (e.g. :class:`models.budget.StepClock`).
    """

    max_epochs: int = 10
    max_steps: int = -1
    max_time_s: float | None = None
    max_cpu_time_s: float | None = None
    val_every_n_epochs: int | None = 1
    accelerator: str = "cpu"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    limit_train_batches: int | float | None = None
    progress: bool = False
    callbacks: Sequence[L.Callback] = ()

    def trainer(self, out_dir: Path) -> tuple[L.Trainer, _LastValidation]:
        """A deterministic trainer logging to ``out_dir/logs`` (no checkpointing, no sanity validation) and
        the callback that records the step of its last validation."""
        last_validation = _LastValidation()
        callbacks = [*self.callbacks, last_validation]
        if self.max_cpu_time_s:
            callbacks.append(CpuTimeLimit(self.max_cpu_time_s))
        trainer = L.Trainer(
            max_epochs=self.max_epochs,
            max_steps=self.max_steps,
            max_time=timedelta(seconds=self.max_time_s) if self.max_time_s else None,
            check_val_every_n_epoch=self.val_every_n_epochs or NEVER_EPOCHS,
            callbacks=callbacks,
            accelerator=self.accelerator,
            devices=self.devices,
            num_nodes=self.num_nodes,
            strategy=self.strategy,
            deterministic=True,
            default_root_dir=out_dir,
            enable_checkpointing=False,
            enable_progress_bar=self.progress,
            enable_model_summary=False,
            logger=L.pytorch.loggers.CSVLogger(out_dir, name="logs", version=""),
            limit_train_batches=self.limit_train_batches,
            num_sanity_val_steps=0,
            use_distributed_sampler=False,  # StampDataModule shards its own training batches per rank
        )
        return trainer, last_validation


@dataclass
class FitOutcome:
    """What fitting and evaluating measured: validation and test metrics, the model's ``after_fit`` card
    fields, the epochs and steps done and the wall and CPU seconds of fitting."""

    metrics: dict[str, float]
    extras: dict[str, Any]
    epochs: int
    steps: int
    fit_seconds: float
    fit_cpu_seconds: float
    is_global_zero: bool = True  #: rank 0 of a DDP run (or the one process): it writes the outputs


def fit_and_evaluate(
    model: L.LightningModule, datamodule: L.LightningDataModule, fit: FitOptions, out_dir: Path
) -> FitOutcome:
    """Fit, then the validation metrics of the final weights, the test metrics and ``after_fit`` fields."""
    trainer, last_validation = fit.trainer(out_dir)
    fit_wall0, fit_cpu0 = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=datamodule)
    fit_cpu = time.process_time() - fit_cpu0
    fit_wall = time.perf_counter() - fit_wall0
    if last_validation.step == trainer.global_step:
        val_metrics = _float_metrics(trainer.callback_metrics)
    else:  # validation metrics of the final weights
        val_metrics = _float_metrics(
            (trainer.validate(model, datamodule=datamodule, verbose=False) or [{}])[0]
        )
    # no test split (e.g. the test galaxies are kept in another store): no test metrics
    test_metrics = _float_metrics((trainer.test(model, datamodule=datamodule, verbose=False) or [{}])[0])
    extras = model.after_fit(datamodule) if hasattr(model, "after_fit") else {}
    metrics = {**{k: v for k, v in val_metrics.items() if k.startswith("val/")}, **test_metrics}
    return FitOutcome(
        metrics,
        extras,
        int(trainer.current_epoch),
        int(trainer.global_step),
        fit_wall,
        fit_cpu,
        bool(trainer.is_global_zero),
    )
