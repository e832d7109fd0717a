"""Training speed of each preset against the machine's own matmul rate: the bare step, a plain PyTorch
loop, stampflow's Lightning training and :func:`models.train.train_model` end to end, in one run.

For each preset (``small`` morphology on 3x65x65 framed stamps, ``hits`` on 4x21x21, ``ztf`` on 3x63x63),
on a seeded synthetic store of the preset's stamps (the speed does not depend on what the pixels show):

- ``step``: forward + backward + optimiser of the model on one in-memory batch (no data, no augmentation):
  the model's own speed;
- ``plain``: a plain PyTorch loop (``for x, y in loader: loss = model.training_step(...); backward; step``)
  over the same model and the same :class:`models.data.datamodule.StampDataModule` batches (store read,
  preprocessing, augmentation) as training;
- ``lightning``: the ``lightning.Trainer`` that ``train_model`` builds (:class:`models.fitting.FitOptions`)
  fitting the same model on the same data module;
- ``train_model``: :func:`models.train.train_model` for the same number of steps, end to end (store
  facts, split, data loading, fit, validation, test, calibration, checkpoint and card): samples/s of its
  fit and of the whole call.

``plain`` and ``lightning`` are timed per step (step ``i`` ends when step ``i + 1``'s batch is ready to be
read, so data loading is inside), warm-up steps dropped, median step time; they alternate for ``rounds``
rounds and each keeps its best round, so both see the same machine load. ``lightning_overhead`` is
``lightning step time / plain step time - 1`` (the target is at most 0.10). Every rate comes with its
``fraction_of_roofline`` = samples/s x FLOPs per sample (forward and backward, ``FlopCounterMode``) / the fp32
matmul rate of torch at the same thread count (:mod:`benchmarks.roofline`), measured between the cases.

Usage: python benchmarks/train_speed.py [--presets small hits ztf] [--threads 1] [--rounds 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L
import numpy as np
import torch

from benchmarks.augment import first_optimizer
from benchmarks.roofline import flops_per_item, fraction, matmul_gflops
from data_catalogs.galaxy_zoo import QUESTION_SLICES, cumulative_from_conditional
from pipeline.store import StampStoreWriter

#: preset -> (task, channel names, stamp side, training steps per timed run, warm-up steps dropped)
PRESETS: dict[str, tuple[str, tuple[str, ...], int, int, int]] = {
    "small": ("morphology", ("g", "r", "i"), 65, 60, 5),
    "hits": ("realbogus", ("template", "science", "difference", "snr"), 21, 40, 4),
    "ztf": ("realbogus", ("science", "template", "difference"), 63, 14, 2),
}
FRACTIONS = (0.8, 0.1, 0.1)


def synthetic_store(path: Path, task: str, channels: tuple[str, ...], side: int, n: int, seed: int) -> Path:
    """``n`` stamps ``(C, side, side)``: a centred blob of random brightness in unit noise, with a label
    (``real`` 0/1, or tree-valid ``gz_answers`` from random conditional fractions)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    blob = np.exp(-(xx**2 + yy**2) / (2 * (side / 8) ** 2)).astype(np.float32)
    stamps = rng.normal(0, 1, (n, len(channels), side, side)).astype(np.float32)
    stamps += 5 * rng.uniform(0, 1, (n, len(channels), 1, 1)).astype(np.float32) * blob
    if task == "morphology":
        cond = np.empty((n, 37))
        for sl in QUESTION_SLICES.values():
            cond[:, sl] = rng.dirichlet(np.ones(sl.stop - sl.start), size=n)
        labels = {"gz_answers": cumulative_from_conditional(cond).astype(np.float32)}
    else:
        labels = {"real": (np.arange(n) % 2).astype(np.int8)}
    catalog = {"object_id": [f"o{i}" for i in range(n)], "source": np.full(n, "train_speed")}
    with StampStoreWriter(path, list(channels), (side, side)) as writer:
        writer.append(stamps, None, catalog, labels)
    return path


def build(task: str, preset: str, store: Path, out: Path, seed: int) -> tuple[L.LightningModule, Any]:
    """The seeded model and its data module, exactly as ``train_model`` builds them."""
    from models.train import _model_and_data

    model, datamodule, _ = _model_and_data(
        task, preset, [store], out, seed, None, None, {"fractions": FRACTIONS}
    )
    datamodule.setup("fit")
    return model, datamodule


def batch_size(task: str, preset: str) -> int:
    """The preset's batch size, from its config (no model, no data)."""
    from models.morphology_config import MorphologyConfig
    from models.realbogus_config import RealBogusConfig

    config = MorphologyConfig if task == "morphology" else RealBogusConfig
    return config.from_preset(preset).batch_size


def _optimizer_and_schedulers(model: L.LightningModule) -> tuple[torch.optim.Optimizer, list[Any]]:
    """The optimizer (:func:`benchmarks.augment.first_optimizer`) and the step schedulers of the model."""
    configured = model.configure_optimizers()
    sched = configured.get("lr_scheduler") if isinstance(configured, dict) else None
    return first_optimizer(configured), [] if sched is None else [sched["scheduler"]]


def _loss(model: L.LightningModule, batch: Any, i: int) -> torch.Tensor:
    out = model.training_step(batch, i)
    return out["loss"] if isinstance(out, dict) else out


def step_case(model: L.LightningModule, datamodule: Any, seconds: float) -> tuple[float, float]:
    """Samples/s of forward + backward + optimiser on one fixed batch, and FLOPs per sample."""
    model.train()
    optimizer, _ = _optimizer_and_schedulers(model)
    batch = next(iter(datamodule.train_dataloader()))
    n = len(batch[0])

    def step() -> None:
        loss = _loss(model, batch, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    flops = flops_per_item(step, n)
    step()
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return n / best, flops


def plain_step_times(model: L.LightningModule, datamodule: Any, steps: int) -> list[float]:
    """Seconds of each step of a plain PyTorch loop over the training batches (loading included)."""
    model.train()
    optimizer, schedulers = _optimizer_and_schedulers(model)
    times, last = [], time.perf_counter()
    while len(times) < steps:
        for i, batch in enumerate(datamodule.train_dataloader()):
            loss = _loss(model, batch, i)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for scheduler in schedulers:
                scheduler.step()
            now = time.perf_counter()
            times.append(now - last)
            last = now
            if len(times) == steps:
                break
    return times


class _StepTimes(L.Callback):
    """Seconds between the ends of consecutive training steps (the first from the start of fitting)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.last = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.last = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now


def lightning_step_times(model: L.LightningModule, datamodule: Any, steps: int, out: Path) -> list[float]:
    """Seconds of each step of stampflow's Lightning fit (the trainer of ``train_model``)."""
    from models.fitting import FitOptions

    timer = _StepTimes()
    options = FitOptions(max_epochs=10**6, max_steps=steps, val_every_n_epochs=None, callbacks=(timer,))
    trainer, _ = options.trainer(out)
    trainer.fit(model, datamodule=datamodule)
    return timer.times


def loop_cases(preset: str, store: Path, out: Path, seed: int, rounds: int) -> dict[str, Any]:
    """``plain`` and ``lightning`` alternated for ``rounds`` rounds: best median step time of each."""
    task, _, _, steps, warmup = PRESETS[preset]
    medians: dict[str, list[float]] = {"plain": [], "lightning": []}
    batch = 0
    for r in range(rounds):
        for case in medians:
            model, datamodule = build(task, preset, store, out / f"{case}{r}", seed)
            batch = datamodule.batch_size
            if case == "plain":
                times = plain_step_times(model, datamodule, steps)
            else:
                times = lightning_step_times(model, datamodule, steps, out / f"{case}{r}")
            medians[case].append(statistics.median(times[warmup:]))
    best = {case: min(values) for case, values in medians.items()}
    return {
        "batch_size": batch,
        "steps_per_round": steps,
        "median_step_s_all": {case: [round(v, 4) for v in values] for case, values in medians.items()},
        "plain_samples_per_s": batch / best["plain"],
        "lightning_samples_per_s": batch / best["lightning"],
        "lightning_overhead": round(best["lightning"] / best["plain"] - 1, 3),
    }


def train_model_case(preset: str, store: Path, out: Path, seed: int, threads: int) -> dict[str, Any]:
    """``train_model`` for the preset's steps: samples/s of its fit and of the whole call."""
    from models.train import train_model

    task, _, _, steps, _ = PRESETS[preset]
    result = train_model(
        task,
        [store],
        out,
        preset=preset,
        max_epochs=10**6,
        max_steps=steps,
        val_every_n_epochs=None,
        seed=seed,
        threads=threads,
        data_overrides={"fractions": FRACTIONS},
    )
    samples = result.steps * batch_size(task, preset)
    return {
        "steps": result.steps,
        "fit_seconds": round(result.fit_seconds, 2),
        "total_seconds": round(result.seconds, 2),
        "fit_samples_per_s": samples / result.fit_seconds,
        "total_samples_per_s": samples / result.seconds,
    }


def run_preset(
    preset: str, folder: Path, seed: int, threads: int, rounds: int, seconds: float
) -> dict[str, Any]:
    task, channels, side, steps, _ = PRESETS[preset]
    torch.set_num_threads(threads)
    n = max(256, 3 * steps * batch_size(task, preset))
    store = synthetic_store(folder / f"{preset}.h5", task, channels, side, int(n / FRACTIONS[0]) + 1, seed)
    references = [matmul_gflops()]
    model, datamodule = build(task, preset, store, folder / f"{preset}_step", seed)
    step_rate, flops = step_case(model, datamodule, seconds)
    references.append(matmul_gflops())
    loops = loop_cases(preset, store, folder / preset, seed, rounds)
    references.append(matmul_gflops())
    end_to_end = train_model_case(preset, store, folder / f"{preset}_train_model", seed, threads)
    references.append(matmul_gflops())
    ref = max(references)
    rates = {
        "step": step_rate,
        "plain": loops["plain_samples_per_s"],
        "lightning": loops["lightning_samples_per_s"],
        "train_model_fit": end_to_end["fit_samples_per_s"],
        "train_model_total": end_to_end["total_samples_per_s"],
    }
    return {
        "preset": preset,
        "task": task,
        "input": [len(channels), side, side],
        "flops_per_sample": flops,
        "matmul_gflops": round(ref, 1),
        "matmul_gflops_all": [round(v, 1) for v in references],
        "samples_per_s": {k: round(v, 1) for k, v in rates.items()},
        "fraction_of_roofline": {k: round(fraction(v, flops, ref), 3) for k, v in rates.items()},
        "lightning_overhead": loops["lightning_overhead"],
        "loops": {k: v for k, v in loops.items() if not k.endswith("samples_per_s")},
        "train_model": {k: v for k, v in end_to_end.items() if not k.endswith("samples_per_s")},
    }


def run(
    presets: list[str], threads: int = 1, rounds: int = 2, seed: int = 0, seconds: float = 3.0
) -> dict[str, Any]:
    """Every figure of the module docstring for ``presets``."""
    warnings.filterwarnings("ignore")  # Lightning's advice on workers and self.log outside a trainer
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        results = [run_preset(p, Path(tmp), seed, threads, rounds, seconds) for p in presets]
    return {
        "benchmark": "train_speed",
        "command": "python benchmarks/train_speed.py "
        + " ".join(f"--{k} {v}" for k, v in {"threads": threads, "rounds": rounds, "seed": seed}.items()),
        "threads": threads,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "presets": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (the demo trains one per model)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the plain and Lightning loops")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of bare steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(run(args.presets, args.threads, args.rounds, args.seed, args.seconds), indent=2))


if __name__ == "__main__":
    main()
