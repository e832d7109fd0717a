"""Train a model on stamp stores and write a checkpoint with its model card.

:func:`train_model` is the one training entry point for every task: it seeds everything, builds the task's
LightningModule from a preset (:data:`models.checkpoints.MODEL_CLASSES`), the data module from the model's
``data_config()``, fits with a deterministic ``lightning.Trainer`` (optionally bounded in wall time), runs
the test split, lets the model add card fields computed on validation data (``after_fit``: thresholds,
calibration) and writes ``<out_dir>/model.ckpt`` and ``model_card.json``.

Training is bounded by epochs, by steps (``max_steps``: reproducible), by wall time (``max_time_s``: depends
on the machine and its load) and/or by CPU time of the training process (``max_cpu_time_s``,
:class:`models.budget.CpuTimeLimit`: the same compute whatever the load, but a variable stopping step). The
result records both the wall and the CPU seconds of fitting.

``python -m models.train TASK --store S ...`` runs the same thing as a script: flows start training as a
subprocess so that Lightning DDP, which re-executes its entry point, works on several GPUs or nodes.

The model contract (see models/morphology.py, models/realbogus.py): ``cls(preset=..., **overrides)`` with
``save_hyperparameters()``; class attributes ``TASK`` and ``TARGET`` (the store label); ``data_config()``
-> StampDataModule keyword arguments; ``card_fields()`` -> ``architecture``, ``input_channels``,
``input_size``, ``normalisation``, ``output_names``; optional ``after_fit(datamodule) -> dict``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch

from models.budget import CpuTimeLimit
from models.checkpoints import model_class, save_checkpoint
from models.datamodule import StampDataModule
from models.train_options import add_train_arguments
from pipeline import __version__
from pipeline.store import combined_sha256, open_store

log = logging.getLogger(__name__)
#: ``check_val_every_n_epoch`` that never comes: validation only after fitting.
NEVER_EPOCHS = 10**9


@dataclass
class TrainResult:
    """What a training run wrote and measured."""

    checkpoint: str
    model_card: str
    metrics: dict[str, float]
    seconds: float
    epochs: int
    steps: int = 0
    fit_seconds: float = 0.0
    fit_cpu_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _store_facts(stores: Sequence[Path]) -> tuple[list[str], list[int], float, str]:
    """Channels, stamp shape, pixel scale and a combined content hash of the training stores."""
    digests, channels, shape, scale = [], None, None, float("nan")
    for path in stores:
        with open_store(path) as store:
            channels, shape, scale = store.channels, list(store.stamp_shape), store.pixel_scale_arcsec
            attrs = store.attrs
            digests.append(f"{attrs.get('source_sha256', '')}:{store.n}:{attrs.get('config_hash', '')}")
    return channels, shape, scale, combined_sha256(digests)


def _json_able(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


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


def train_model(
    task: str,
    stores: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    preset: str,
    max_epochs: int = 10,
    max_steps: int = -1,
    max_time_s: float | None = None,
    max_cpu_time_s: float | None = None,
    val_every_n_epochs: int | None = 1,
    batch_size: int | None = None,
    seed: int = 0,
    model_overrides: dict[str, Any] | None = None,
    data_overrides: dict[str, Any] | None = None,
    model_name: str | None = None,
    accelerator: str = "cpu",
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    limit_train_batches: int | float | None = None,
    threads: int | None = None,
    progress: bool = False,
    callbacks: Sequence[L.Callback] = (),
) -> TrainResult:
    """Train ``task`` (``morphology`` or ``realbogus``) on stamp stores; write checkpoint and model card.

    Args:
        task: a key of :data:`models.checkpoints.MODEL_CLASSES`.
        stores: stamp stores with the task's label (``/labels/gz_answers`` or ``/labels/real``).
        out_dir: folder for ``model.ckpt``, ``model_card.json``, ``splits.csv`` and Lightning logs.
        preset: the model preset (e.g. ``small``, ``dieleman2015``, ``hits``, ``ztf``).
        max_epochs: epoch limit.
        max_steps: optimiser-step limit (-1: none); with a fixed seed the numbers are reproducible.
        max_time_s: wall-time limit for fitting, in seconds (None: none).
        max_cpu_time_s: limit on the CPU time of this process while fitting, in CPU-seconds (all its
            threads; "M minutes on K cores" is ``M * 60 * K``); see :class:`models.budget.CpuTimeLimit`.
        val_every_n_epochs: validate every this many epochs while fitting; None: only after fitting (no
            validation cost inside a budget). The validation metrics are always those of the final weights
            (validated once more after fitting when the fit did not end with a validation).
        batch_size: overrides the preset's batch size.
        seed: seeds the split, initialisation, shuffling and augmentation: the same seed and config
            give the same metrics.
        model_overrides / data_overrides: keyword overrides for the model and the data module.
        accelerator, devices, num_nodes, strategy: passed to ``lightning.Trainer`` (DDP runs need this
            function to be started as ``python -m models.train``).
        limit_train_batches: cap batches per epoch (quick runs and tests).
        threads: torch intra-op threads (None: torch's default). On 2 shared cores one thread was
            measured 2-5x faster than two for the small models.
        progress: show Lightning's progress bar.
        callbacks: extra Lightning callbacks (e.g. :class:`models.budget.StepClock`).

    Returns:
        :class:`TrainResult` with the test metrics.
    """
    t0 = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store_paths = [Path(s) for s in stores]
    L.seed_everything(seed, workers=True, verbose=False)
    cls = model_class(task)
    model = cls(preset=preset, **(model_overrides or {}))
    data_kwargs = {**model.data_config(), **(data_overrides or {})}
    if batch_size is not None:
        data_kwargs["batch_size"] = batch_size
    target = getattr(model, "target", cls.TARGET)  # a multi-class model may train on another label
    datamodule = StampDataModule(
        store_paths, target, seed=seed, splits_csv=out_dir / "splits.csv", **data_kwargs
    )
    channels, stamp_shape, pixel_scale, data_sha = _store_facts(store_paths)
    fields = model.card_fields()
    if fields.get("input_channels") not in (None, len(channels)):
        raise ValueError(
            f"preset {preset!r} expects {fields['input_channels']} channels; the stores have {len(channels)} {channels}"
        )
    last_validation = _LastValidation()
    all_callbacks = [*callbacks, last_validation]
    if max_cpu_time_s:
        all_callbacks.append(CpuTimeLimit(max_cpu_time_s))
    trainer = L.Trainer(
        max_epochs=max_epochs,
        max_steps=max_steps,
        max_time=timedelta(seconds=max_time_s) if max_time_s else None,
        check_val_every_n_epoch=val_every_n_epochs or NEVER_EPOCHS,
        callbacks=all_callbacks,
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        deterministic=True,
        default_root_dir=out_dir,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        logger=L.pytorch.loggers.CSVLogger(out_dir, name="logs", version=""),
        limit_train_batches=limit_train_batches,
        num_sanity_val_steps=0,
    )
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
    test_metrics = _float_metrics(trainer.test(model, datamodule=datamodule, verbose=False)[0])
    extras = model.after_fit(datamodule) if hasattr(model, "after_fit") else {}
    metrics = {**{k: v for k, v in val_metrics.items() if k.startswith("val/")}, **test_metrics}
    card = {
        "task": task,
        "model_name": model_name or f"stampflow-{task}-{preset}",
        "architecture": preset,
        "channels": channels,
        "stamp_shape": stamp_shape,
        "pixel_scale_arcsec": pixel_scale,
        "training_data_sha256": data_sha,
        "training_stores": [str(p) for p in store_paths],
        "seed": seed,
        "epochs": int(trainer.current_epoch),
        "steps": int(trainer.global_step),
        "fit_seconds": round(fit_wall, 1),
        "fit_cpu_seconds": round(fit_cpu, 1),
        "metrics": metrics,
        "data_config": {
            k: v for k, v in data_kwargs.items() if isinstance(v, (str, int, float, bool, type(None)))
        },
        **fields,
        **extras,
    }
    card["model_version"] = f"{__version__}+{data_sha[:8]}.s{seed}"
    ckpt = save_checkpoint(model, out_dir / "model.ckpt", card)
    return TrainResult(
        checkpoint=str(ckpt),
        model_card=str(ckpt.with_name("model_card.json")),
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        epochs=int(trainer.current_epoch),
        steps=int(trainer.global_step),
        fit_seconds=fit_wall,
        fit_cpu_seconds=fit_cpu,
    )


def run_from_args(task: str, args: argparse.Namespace) -> TrainResult:
    """Call :func:`train_model` from parsed :func:`add_train_arguments` options."""
    devices: int | str = int(args.devices) if str(args.devices).isdigit() else args.devices
    cpu_minutes = getattr(args, "max_cpu_minutes", None)
    return train_model(
        task,
        args.store,
        args.out,
        preset=args.preset,
        max_epochs=args.max_epochs,
        max_steps=getattr(args, "max_steps", None) or -1,
        max_time_s=args.max_minutes * 60 if args.max_minutes else None,
        max_cpu_time_s=cpu_minutes * 60 if cpu_minutes else None,
        batch_size=args.batch_size,
        seed=args.seed,
        accelerator=args.accelerator,
        devices=devices,
        num_nodes=args.num_nodes,
        strategy=args.strategy,
        threads=args.threads,
        progress=sys.stderr.isatty(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.train TASK ...``: train and print the result as JSON."""
    parser = argparse.ArgumentParser(description="Train a stampflow model (script entry point for DDP).")
    parser.add_argument("task", choices=["morphology", "realbogus"])
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    result = run_from_args(args.task, args)
    print(json.dumps(result.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
