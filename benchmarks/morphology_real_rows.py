"""Rows of the real-galaxy morphology benchmark (benchmarks/morphology_real.py): each model's test RMSE over
the 37 answers and per question, with the CPU and wall seconds it took.

- :func:`cnn_row`: train a morphology preset (``models.train.train_model``) on a training store within a
  CPU-time budget (:class:`models.budget.CpuTimeLimit`), optionally fine-tuning a parent checkpoint, then
  :func:`score_test` on the test store.
- :func:`score_test`: a checkpoint's predictions on a store, prepared as scoring prepares them
  (:class:`pipeline.prep.BatchPrep` from the model's ``data_config``) and averaged over the 8 dihedral
  transforms when its config says ``tta`` (``MorphologyModel.predict_tensor``).
- :func:`ridge_row`: ridge regression (scikit-learn ``RidgeCV``, alpha by leave-one-out on the fit galaxies)
  on the pixels of a store area-averaged to ``side`` px; :func:`mean_row`: the fit galaxies' mean answers.
- :func:`pretrain_on_simulation`: simulate galaxies, ingest them with a model's frame and train it: the
  parent of the fine-tuned rows, with its CPU seconds reported apart.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.morphology_real_data import ingest_options, store_ids, write_splits
from models.checkpoints import load_checkpoint
from models.components import count_parameters
from models.morphology import MorphologyModel, rmse_by_question
from models.train import train_model
from pipeline.prep import BatchPrep, IngestFrame
from pipeline.store import open_store

TARGET = MorphologyModel.TARGET


def _cpu_s() -> float:
    """CPU-seconds of this process and its finished children (user + system)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def rmse_facts(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """``rmse`` over the 37 answers and ``rmse_per_question`` (q1..q11) of ``(N, 37)`` predictions."""
    mse = torch.from_numpy(((pred.astype(np.float64) - true.astype(np.float64)) ** 2).mean(axis=0))
    values = {k: round(float(v), 5) for k, v in rmse_by_question(mse).items()}
    return {"rmse": values.pop("rmse"), "rmse_per_question": {k[5:]: v for k, v in values.items()}}


def store_answers(store: Path, ids: Sequence[str] | None = None) -> np.ndarray:
    """``(N, 37)`` labels of a store's stamps (only those of ``ids``, in store order, when given)."""
    with open_store(store) as s:
        answers = s.labels(TARGET)
    if ids is None:
        return answers
    keep = np.isin(store_ids(store), list(ids))
    return answers[keep]


def score_test(
    checkpoint: str | Path, store: Path, tta: bool | None = None, rows: int = 256
) -> tuple[np.ndarray, float]:
    """``(N, 37)`` predictions of a checkpoint for every stamp of ``store`` and the CPU seconds it took;
    ``tta``: averaged over the 8 dihedral transforms or not (None: as the model's config says)."""
    cpu0 = time.process_time()
    model, _card = load_checkpoint(checkpoint)
    model.eval()
    prep = BatchPrep.from_config(model.data_config())
    predict = model.predict_tensor if tta is None else (model.net.forward_tta if tta else model.net)
    preds = []
    with open_store(store) as s, torch.inference_mode():
        for _sel, stamps, mask in s.iter_chunks(rows):
            preds.append(predict(prep(stamps, mask)).numpy())
    return np.concatenate(preds), time.process_time() - cpu0


def cnn_row(
    name: str,
    preset: str,
    overrides: dict[str, Any],
    train_store: Path,
    test_store: Path,
    ids: tuple[Sequence[str], Sequence[str]],
    out: Path,
    budget_s: float,
    seed: int,
    init_from: Path | None = None,
) -> dict[str, Any]:
    """Train ``preset`` on the fit ids of ``train_store`` (validation: the val ids) within ``budget_s``
    CPU-seconds, fine-tuning ``init_from`` when given, and score the test store."""
    fit, val = ids
    run = out / name
    write_splits(train_store, fit, val, run / "splits.csv")  # train_model reads out_dir/splits.csv
    wall0 = time.perf_counter()
    result = train_model(
        "morphology", [train_store], run, preset=preset, max_epochs=-1, max_cpu_time_s=budget_s,
        val_every_n_epochs=None, seed=seed, model_overrides=overrides, threads=1, init_from=init_from,
    )  # fmt: skip
    pred, score_cpu = score_test(result.checkpoint, test_store)
    answers = store_answers(test_store)
    model = load_checkpoint(result.checkpoint)[0]
    with_tta = rmse_facts(score_test(result.checkpoint, test_store, tta=True)[0], answers)["rmse"]
    return {
        "row": name,
        "preset": preset,
        "overrides": overrides,
        **rmse_facts(pred, answers),
        "rmse_with_tta": with_tta,  # not part of the comparison: averaged over the 8 dihedral transforms
        "val_rmse": round(result.metrics.get("val/rmse", float("nan")), 5),
        "cpu_seconds": round(result.fit_cpu_seconds, 1),
        "wall_seconds": round(result.fit_seconds, 1),
        "steps": result.steps,
        "epochs": result.epochs,
        "fit_galaxies": len(fit),
        "val_galaxies": len(val),
        "parameters": count_parameters(model.net),
        "tta": bool(model.config.tta),
        "test_cpu_seconds": round(score_cpu, 1),
        "row_wall_seconds": round(time.perf_counter() - wall0, 1),
        "init_from": str(init_from) if init_from else None,
    }


def _pixels(store: Path, side: int) -> tuple[np.ndarray, list[str]]:
    """A store's stamps area-averaged to ``side`` px and flattened: ``(N, C * side * side)``, and the ids."""
    feats = []
    with open_store(store) as s:
        for _sel, stamps, _mask in s.iter_chunks(256):
            small = F.adaptive_avg_pool2d(torch.from_numpy(stamps), side)
            feats.append(small.flatten(1).numpy().astype(np.float64))
    return np.concatenate(feats), store_ids(store)


def ridge_row(
    train_store: Path, test_store: Path, fit_ids: Sequence[str], side: int, alphas: Sequence[float]
) -> dict[str, Any]:
    """Ridge regression on pixels area-averaged to ``side`` px (the alpha of ``alphas`` with the best
    leave-one-out error on the fit galaxies; no validation or test galaxy is seen), predictions clipped to
    [0, 1]."""
    from sklearn.linear_model import RidgeCV

    cpu0, wall0 = time.process_time(), time.perf_counter()
    x, ids = _pixels(train_store, side)
    keep = np.isin(ids, list(fit_ids))
    y = store_answers(train_store)[keep]
    ridge = RidgeCV(alphas=list(alphas)).fit(x[keep], y)
    x_test, _ = _pixels(test_store, side)
    pred = np.clip(ridge.predict(x_test), 0.0, 1.0)
    return {
        "row": "ridge",
        **rmse_facts(pred, store_answers(test_store)),
        "alpha": float(ridge.alpha_),
        "pixels": f"{side}x{side} per channel, area-averaged from the {x.shape[1] // (side * side)}-channel stamps",
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "wall_seconds": round(time.perf_counter() - wall0, 1),
        "steps": 0,
        "fit_galaxies": int(keep.sum()),
    }


def mean_row(train_store: Path, test_store: Path, fit_ids: Sequence[str]) -> dict[str, Any]:
    """Every test galaxy predicted as the mean answers of the fit galaxies."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    mean = store_answers(train_store, fit_ids).astype(np.float64).mean(axis=0)
    true = store_answers(test_store)
    return {
        "row": "training_mean",
        **rmse_facts(np.broadcast_to(mean, true.shape), true),
        "cpu_seconds": round(time.process_time() - cpu0, 2),
        "wall_seconds": round(time.perf_counter() - wall0, 2),
        "steps": 0,
        "fit_galaxies": len(fit_ids),
    }


def _simulate(n: int, out: Path, seed: int) -> tuple[Path, Path, str]:
    """Simulate ``n`` galaxies as 424 px JPEGs like the real ones (``sdss-jpeg``). Returns the catalog, the
    image folder and the style."""
    from pipeline.simulate.galaxies import simulate_galaxies

    simulate_galaxies(n, out, seed=seed, workers=1, style="sdss-jpeg")
    return out / "training_solutions.csv", out / "images", "sdss-jpeg"


def pretrain_on_simulation(
    n: int, preset: str, frame: IngestFrame, work: Path, budget_s: float, seed: int
) -> dict[str, Any]:
    """Simulate ``n`` galaxies, ingest them with ``frame`` and train ``preset`` on them within ``budget_s``
    CPU-seconds (its own seeded split of the simulated galaxies). Returns the checkpoint and the seconds of
    each step (simulation CPU seconds include its worker processes)."""
    from pipeline.ingest import ingest_galaxy_zoo

    cpu0, wall0 = _cpu_s(), time.perf_counter()
    catalog, images, style = _simulate(n, work / "sim", seed)
    sim_cpu, sim_wall = _cpu_s() - cpu0, time.perf_counter() - wall0
    store = work / "sim_store.h5"
    wall1 = time.perf_counter()
    report = ingest_galaxy_zoo(catalog, images, store, format="kaggle", **ingest_options(frame))
    ingest_wall = time.perf_counter() - wall1
    result = train_model(
        "morphology", [store], work / "pretrained", preset=preset, max_epochs=-1, max_cpu_time_s=budget_s,
        val_every_n_epochs=None, seed=seed, threads=1,
    )  # fmt: skip
    facts = {
        "checkpoint": result.checkpoint,
        "simulated": n,
        "style": style,
        "ingest": report.summary(),
        "simulate_cpu_seconds": round(sim_cpu, 1),
        "simulate_wall_seconds": round(sim_wall, 1),
        "ingest_wall_seconds": round(ingest_wall, 1),
        "cpu_seconds": round(result.fit_cpu_seconds, 1),
        "wall_seconds": round(result.fit_seconds, 1),
        "steps": result.steps,
        "sim_test_rmse": round(result.metrics.get("test/rmse", float("nan")), 5),
    }
    print(json.dumps({"pretrained": facts}), flush=True)
    return facts
