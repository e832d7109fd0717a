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

The card records the training stores' ``channels``, ``stamp_shape`` and ``frame`` (their ingest frame,
:class:`pipeline.prep.IngestFrame` as ``{"crop", "size"}`` in px, or None for images as read), which scoring
applies or refuses (:mod:`pipeline.scoring.model_inputs`). Stores of different frames are refused, and so
are framed stores whose stamps a morphology model's own frame would crop or resample again
(:mod:`models.frame_fit`).

``python -m models.train TASK --store S ...`` runs the same thing as a script: flows start training as a
subprocess so that Lightning DDP, which re-executes its entry point, works on several GPUs or nodes.
Under DDP (``--strategy ddp --devices N [--num-nodes M]``) every rank runs :func:`train_model`: the
ranks agree on the seeded split, train on distinct shards of the batches, evaluate the whole validation
and test splits, and rank 0 alone writes ``splits.csv``, the checkpoint, the card and the printed result.

The model contract (:class:`models.stamp_module.StampModule`, models/morphology.py, models/realbogus.py):
``cls(preset=..., **overrides)`` with ``save_hyperparameters()``; class attributes ``TASK`` and ``TARGET``
(the store label); ``data_config()`` -> StampDataModule keyword arguments; ``card_fields()`` ->
``architecture``, ``input_channels``, ``input_size``, ``normalisation``, ``output_names``; optional
``after_fit(datamodule) -> dict``. Fitting itself is :func:`models.fitting.fit_and_evaluate`.
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
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from models.checkpoints import CheckpointError, card_path, model_class, save_checkpoint
from models.components import DielemanFrame
from models.data import StampDataModule
from models.fitting import FitOptions, FitOutcome, fit_and_evaluate
from models.frame_fit import check_frame_fits
from models.lineage import Parent, read_parent
from models.train_options import add_train_arguments
from pipeline import __version__
from pipeline.prep import IngestFrame, describe_frame, frame_from, frame_mismatch, store_frame
from pipeline.store import combined_sha256, open_store

log = logging.getLogger(__name__)


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

    @classmethod
    def of_run(cls, checkpoint: Path, outcome: FitOutcome, seconds: float) -> TrainResult:
        """The result of a run that wrote ``checkpoint``, fitted with ``outcome`` and took ``seconds`` in all."""
        return cls(
            checkpoint=str(checkpoint),
            model_card=str(card_path(checkpoint)),
            metrics=outcome.metrics,
            seconds=seconds,
            epochs=outcome.epochs,
            steps=outcome.steps,
            fit_seconds=outcome.fit_seconds,
            fit_cpu_seconds=outcome.fit_cpu_seconds,
        )


@dataclass(frozen=True)
class StoreFacts:
    """What the model card records of the training stores."""

    channels: list[str]
    stamp_shape: list[int]
    pixel_scale_arcsec: float
    sha256: str  #: a combined hash of the stores' sources, sizes and configs
    frame: IngestFrame | None = None  #: the stores' ingest frame (None: images as read)

    def frame_field(self) -> dict[str, int] | None:
        """The card's ``frame``: ``{"crop", "size"}`` in px, or None."""
        return None if self.frame is None else {"crop": self.frame.crop, "size": self.frame.size}


def _one_frame(frames: dict[Path, IngestFrame | None]) -> IngestFrame | None:
    """The ingest frame shared by all training stores; ValueError naming each store's frame if they differ."""
    if len(set(frames.values())) > 1:
        listed = "; ".join(f"{path}: {describe_frame(frame)}" for path, frame in frames.items())
        raise ValueError(
            f"the training stores were ingested with different frames ({listed}); a model trains on one "
            "frame: ingest them all with the same --frame-crop/--frame-size (or all without)"
        )
    return next(iter(frames.values()), None)


def _store_facts(stores: Sequence[Path]) -> StoreFacts:
    """Channels, stamp shape, pixel scale, a combined content hash and the ingest frame of the training
    stores (ValueError when their frames differ)."""
    digests, channels, shape, scale, frames = [], None, None, float("nan"), {}
    for path in stores:
        with open_store(path) as store:
            channels, shape, scale = store.channels, list(store.stamp_shape), store.pixel_scale_arcsec
            attrs = store.attrs
            digests.append(f"{attrs.get('source_sha256', '')}:{store.n}:{attrs.get('config_hash', '')}")
            frames[path] = store_frame(attrs)
    return StoreFacts(channels, shape, scale, combined_sha256(digests), _one_frame(frames))


def _check_model_frame(model: L.LightningModule, facts: StoreFacts, stores: Sequence[Path]) -> None:
    """Refuse framed stores whose stamps the model's own frame would crop or resample again
    (:func:`models.frame_fit.check_frame_fits`; models without a Dieleman frame are not checked)."""
    frame = getattr(getattr(model, "net", None), "frame", None)
    if isinstance(frame, DielemanFrame):
        source = f"the training stores {[str(p) for p in stores]}"
        check_frame_fits(frame, int(facts.stamp_shape[-1]), facts.frame, source)


def _model_and_data(
    task: str,
    preset: str,
    stores: Sequence[Path],
    out_dir: Path,
    seed: int,
    batch_size: int | None,
    model_overrides: dict[str, Any] | None,
    data_overrides: dict[str, Any] | None,
    parent: Parent | None = None,
) -> tuple[L.LightningModule, StampDataModule, dict[str, Any]]:
    """Seed everything, build the task's model from its preset (a ``parent``'s settings and weights when
    fine-tuning) and the data module from the model's ``data_config()`` (with the overrides); also returns
    the data module's keyword arguments."""
    L.seed_everything(seed, workers=True, verbose=False)
    cls = model_class(task)
    if parent is not None:
        model_overrides = parent.model_overrides(model_overrides)
    model = cls(preset=preset, **(model_overrides or {}))
    if parent is not None:
        parent.copy_weights_into(model)
    data_kwargs = {**model.data_config(), **(data_overrides or {})}
    if batch_size is not None:
        data_kwargs["batch_size"] = batch_size
    target = getattr(model, "target", cls.TARGET)  # a multi-class model may train on another label
    datamodule = StampDataModule(stores, target, seed=seed, splits_csv=out_dir / "splits.csv", **data_kwargs)
    return model, datamodule, data_kwargs


def _parent(
    init_from: str | os.PathLike | None, task: str, preset: str, facts: StoreFacts, stores: Sequence[Path]
) -> Parent | None:
    """The parent checkpoint to fine-tune (None without ``init_from``), checked against this run: the same
    task and preset, the stores' channels and stamp size (else
    :class:`models.checkpoints.CheckpointError` naming both). The child is built with the parent's settings
    (then the run's model overrides) and starts from its weights with the temperature reset to 1."""
    if init_from is None:
        return None
    parent = read_parent(init_from)
    parent.check_fits(task, preset, facts.channels, facts.stamp_shape, str([str(p) for p in stores]))
    if "frame" in parent.card:  # cards written before frames were recorded are not checked
        problem = frame_mismatch(frame_from(parent.card["frame"]), facts.frame, "the training stores")
        if problem is not None:
            raise CheckpointError(f"--init-from {init_from}: {problem}")
    return parent


def _checked_card_fields(
    model: L.LightningModule, preset: str, facts: StoreFacts, stores: Sequence[Path]
) -> dict[str, Any]:
    """The model's card fields; raises ValueError when its input channels are not the stores', or when
    its frame would crop or resample the stores' framed stamps again (:func:`_check_model_frame`)."""
    fields, channels = model.card_fields(), facts.channels
    if fields.get("input_channels") not in (None, len(channels)):
        raise ValueError(
            f"preset {preset!r} expects {fields['input_channels']} channels; the stores have {len(channels)} {channels}"
        )
    _check_model_frame(model, facts, stores)
    return fields


def _model_card(
    task: str,
    model_name: str,
    preset: str,
    seed: int,
    stores: Sequence[Path],
    facts: StoreFacts,
    outcome: FitOutcome,
    data_kwargs: dict[str, Any],
    fields: dict[str, Any],
    parent: Parent | None = None,
) -> dict[str, Any]:
    """The model card of a run (see :mod:`models.checkpoints`): what the model expects and produced; a
    fine-tuned model's card names its parent (``init_from``) and its version says it was fine-tuned."""
    card = {
        "task": task,
        "model_name": model_name,
        "architecture": preset,
        "channels": facts.channels,
        "stamp_shape": facts.stamp_shape,
        "frame": facts.frame_field(),
        "pixel_scale_arcsec": facts.pixel_scale_arcsec,
        "training_data_sha256": facts.sha256,
        "training_stores": [str(p) for p in stores],
        "seed": seed,
        "epochs": outcome.epochs,
        "steps": outcome.steps,
        "fit_seconds": round(outcome.fit_seconds, 1),
        "fit_cpu_seconds": round(outcome.fit_cpu_seconds, 1),
        "metrics": outcome.metrics,
        "data_config": {
            k: v for k, v in data_kwargs.items() if isinstance(v, (str, int, float, bool, type(None)))
        },
        **fields,
        **outcome.extras,
    }
    card["model_version"] = f"{__version__}+{facts.sha256[:8]}.s{seed}"
    if parent is not None:
        card["init_from"] = parent.lineage()
        card["model_version"] += f".ft{str(parent.card.get('weights_sha256', ''))[:8]}"
    return card


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
    init_from: str | os.PathLike | None = None,
) -> TrainResult:
    """Train ``task`` (``morphology`` or ``realbogus``) on stamp stores; write checkpoint and model card.

    Args:
        task: a key of :data:`models.checkpoints.MODEL_CLASSES`.
        stores: stamp stores with the task's label (``/labels/gz_answers`` or ``/labels/real``).
        out_dir: folder for ``model.ckpt``, ``model_card.json``, ``splits.csv`` and Lightning logs.
        preset: the model preset (e.g. ``small``, ``dieleman2015``, ``hits``, ``ztf``).
        max_epochs: how to fit, with ``max_steps``, ``max_time_s``, ``max_cpu_time_s`` (limits in epochs, steps,
            wall seconds and CPU-seconds), ``val_every_n_epochs``, ``accelerator``, ``devices``, ``num_nodes``,
            ``strategy``, ``limit_train_batches``, ``progress``, ``callbacks``: the fields of :class:`FitOptions`.
        batch_size: overrides the preset's batch size.
        seed: seeds the split, initialisation, shuffling and augmentation: the same seed and config
            give the same metrics.
        model_overrides / data_overrides: keyword overrides for the model and the data module.
        model_name: the card's ``model_name`` (default ``stampflow-<task>-<preset>``).
        threads: torch intra-op threads (None: torch's default). On 2 shared cores one thread was
            measured 2-5x faster than two for the small models.
        init_from: a parent checkpoint to fine-tune (:func:`_parent`, :mod:`models.lineage`); the run
            has its own ``seed``, split, calibration and threshold; its card's ``init_from`` names the parent.

    Returns:
        :class:`TrainResult` with the test metrics (under DDP every rank returns one; rank 0 wrote the files).
    """
    t0 = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    fit = FitOptions(
        max_epochs=max_epochs,
        max_steps=max_steps,
        max_time_s=max_time_s,
        max_cpu_time_s=max_cpu_time_s,
        val_every_n_epochs=val_every_n_epochs,
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        limit_train_batches=limit_train_batches,
        progress=progress,
        callbacks=tuple(callbacks),
    )
    (out_dir := Path(out_dir)).mkdir(parents=True, exist_ok=True)
    store_paths = [Path(s) for s in stores]
    facts = _store_facts(store_paths)
    parent = _parent(init_from, task, preset, facts, store_paths)  # before seeding: it builds a net
    model, datamodule, data_kwargs = _model_and_data(
        task, preset, store_paths, out_dir, seed, batch_size, model_overrides, data_overrides, parent
    )
    fields = _checked_card_fields(model, preset, facts, store_paths)
    outcome = fit_and_evaluate(model, datamodule, fit, out_dir)
    name = model_name or f"stampflow-{task}-{preset}"
    card = _model_card(task, name, preset, seed, store_paths, facts, outcome, data_kwargs, fields, parent)
    if outcome.is_global_zero:  # DDP: the checkpoint and card are written once, by rank 0
        save_checkpoint(model, out_dir / "model.ckpt", card)
    return TrainResult.of_run(out_dir / "model.ckpt", outcome, time.perf_counter() - t0)


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
        init_from=getattr(args, "init_from", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.train TASK ...``: train and print the result as JSON."""
    parser = argparse.ArgumentParser(description="Train a stampflow model (script entry point for DDP).")
    parser.add_argument("task", choices=["morphology", "realbogus"])
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    result = run_from_args(args.task, args)
    if rank_zero_only.rank == 0:  # DDP: one result, printed by rank 0
        print(json.dumps(result.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
