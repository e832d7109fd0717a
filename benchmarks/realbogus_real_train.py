"""The training recipe of the real-bogus benchmark (:mod:`benchmarks.realbogus_real`), shared by its folds and
by ``--train-all``, which trains the model that ships (``models/pretrained/<name>/``).

- :func:`simulated_store`: ``--n-sim`` pure simulated ZTF triplets, or ``--n-backgrounds`` injected into real
  alert backgrounds, ingested with their labels.
- :func:`train_recipe`: one model from the pure simulation + simulation on the given real alerts' backgrounds
  + those labelled real alerts, :func:`models.train.train_model` within ``--cpu-minutes`` CPU-minutes.
- :func:`train_all`: the recipe on every alert of every night; copies the checkpoint and its card into
  ``OUT_DIR`` and adds to the card ``preset``, ``training_command``, ``training_alerts`` (count, nights, sha256 of the
  candid list) and, given ``--folds-result``, ``real_data_metrics`` (the folds' pooled held-out metrics).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.realbogus_real_data import alert_store, decode_alerts, load_manifest
from benchmarks.realbogus_real_eval import LeakageChecks
from pipeline.alerts import Alert


def has_backgrounds() -> bool:
    """True when the simulator takes real backgrounds (``--backgrounds``)."""
    from pipeline.simulate.transients import simulate_transients

    return "backgrounds" in inspect.signature(simulate_transients).parameters


def simulated_store(folder: Path, n: int, seed: int, workers: int, backgrounds: list[Path]) -> dict[str, Any]:
    """Simulate ``n`` ZTF triplets into ``folder`` (on ``backgrounds`` when given) and ingest them with
    their labels into ``folder/stamps.h5``; returns its facts."""
    from pipeline.ingest import ingest_labelled_triplets
    from pipeline.simulate.transients import simulate_transients

    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    extra = {"backgrounds": backgrounds, "real_fraction": 1.0} if backgrounds else {}
    labels = simulate_transients(n, folder / "triplets", survey="ztf", seed=seed, workers=workers, **extra)
    t1 = time.perf_counter()
    store = folder / "stamps.h5"
    report = ingest_labelled_triplets(folder / "triplets", store)
    if report.n_ingested != n:
        raise RuntimeError(f"ingested {report.n_ingested} of {n} simulated triplets: {report.summary()}")
    kinds = labels["kind"].value_counts()
    return {
        "store": store,
        "n": n,
        "real": int(labels["real"].sum()),
        "kinds": {str(k): int(v) for k, v in kinds.items()},
        "simulate_s": round(t1 - t0, 1),
        "ingest_s": round(time.perf_counter() - t1, 1),
    }


@dataclass
class Trained:
    """What :func:`train_recipe` made: the training result, the stores it read, the real training store and
    the facts of the simulation on real backgrounds (or why there was none)."""

    result: Any
    stores: list[Path]
    train_store: Path
    simulated_on_backgrounds: dict[str, Any] | str


def train_recipe(
    args: argparse.Namespace,
    work: Path,
    train: pd.DataFrame,
    alerts: list[Alert],
    pure: dict[str, Any],
    background_seed: int,
    checks: LeakageChecks | None = None,
) -> Trained:
    """Train ``args.preset`` in ``work/model`` on the pure simulation ``pure``, ``args.n_backgrounds``
    triplets simulated on the backgrounds of ``alerts`` (rows of ``train``, labels in ``train["label"]``)
    and those labelled alerts, within ``args.cpu_minutes`` CPU-minutes; ``checks`` (a fold's) are run on
    every store that training reads."""
    from models.train import train_model

    train_store = work / "train_real.h5"
    alert_store(alerts, train["label"], train_store)
    if checks is not None:
        checks.real_store(train_store, train)
        checks.simulation(pure["store"].parents[0] / "triplets", [], train)
    stores = [pure["store"], train_store]
    simulated: dict[str, Any] | str = "the simulator has no --backgrounds yet: not used"
    if has_backgrounds():
        simulated = simulated_store(
            work / "sim_backgrounds", args.n_backgrounds, background_seed, args.workers, [train_store]
        )
        if checks is not None:
            checks.simulation(work / "sim_backgrounds" / "triplets", [train_store], train)
        stores.append(simulated.pop("store"))
    result = train_model(
        "realbogus",
        stores,
        work / "model",
        preset=args.preset,
        max_epochs=10_000,
        max_steps=args.max_steps or -1,
        max_cpu_time_s=args.cpu_minutes * 60,
        seed=args.seed,
        threads=args.threads,
    )
    return Trained(result, stores, train_store, simulated)


def training_alerts(train: pd.DataFrame) -> dict[str, Any]:
    """Which real alerts a model trained on: count, nights, labels and the sha256 of the sorted candid list
    (decimal candids, one per line, ``\\n``-terminated)."""
    candids = "".join(f"{c}\n" for c in sorted(int(c) for c in train["candid"]))
    nights = sorted(set(train["night"]))
    return {
        "count": len(train),
        "nights": len(nights),
        "first_night": nights[0],
        "last_night": nights[-1],
        "real": int((train["label"] == 1).sum()),
        "bogus": int((train["label"] == 0).sum()),
        "label_sources": {str(k): int(v) for k, v in train["label_source"].value_counts().items()},
        "candids_sha256": hashlib.sha256(candids.encode()).hexdigest(),
        "candids_sha256_of": "sorted decimal candids, one per line, each ending in a newline",
        "source": "/work/shared/ztf_alerts (sets A-C and the ZTF alerts of F_more_real)",
    }


def folds_metrics(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The pooled held-out metrics of a folds result JSON (``--out`` of the benchmark) of the same preset
    and CPU budget as ``args``.

    Raises:
        ValueError: the result was run with another preset or budget.
    """
    result = json.loads(path.read_text())
    settings = result["settings"]
    for name in ("preset", "cpu_minutes"):
        if settings[name] != getattr(args, name):
            raise ValueError(
                f"{path}: folds run with {name}={settings[name]!r}, this model with {getattr(args, name)!r}"
            )
    summary = result["summary"]
    return {
        "what": "held-out metrics of the benchmark's folds (whole nights held out), pooled; same recipe, "
        "preset and budget as this model, which itself trained on every night",
        "labels": result["labels"],
        "folds": len(result["folds"]),
        "command": result["command"],
        "git": result["git"],
        "pooled": summary["pooled"],
        "per_fold_drb_labelled": summary["per_fold_drb_labelled"],
        "every_fold_passed_issue_20_acceptance": summary["every_fold_passed"],
    }


def annotate_card(card: Path, out: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """The model card ``card`` with ``extra`` added, written atomically to ``out``; returns it."""
    from pipeline.io import write_text

    annotated = {**json.loads(card.read_text()), **extra}
    write_text(out, json.dumps(annotated, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return annotated


def train_all(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """The recipe on every alert of every night; ``model.ckpt`` and its annotated card into ``out_dir``.
    Returns a JSON-able record (card fields added, sizes, timings)."""
    import torch

    from models.checkpoints import CARD_NAME
    from pipeline.io import atomic_path

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    metrics = folds_metrics(args.folds_result, args) if args.folds_result else None
    work = args.work / "train_all"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    manifest, left_out = load_manifest(*([args.alerts] if args.alerts else []))
    data = decode_alerts(manifest)
    pure = simulated_store(args.work / "sim_pure", args.n_sim, args.seed, args.workers, [])
    trained = train_recipe(args, work, data.table, data.alerts, pure, args.seed + 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "model.ckpt"
    with atomic_path(ckpt) as tmp:
        shutil.copyfile(trained.result.checkpoint, tmp)
    extra: dict[str, Any] = {
        "preset": args.preset,  # what `stampflow models` lists (the card's architecture names the network)
        # as typed (python + the script's path from the repository root), so that it reruns anywhere
        "training_command": shlex.join(["python", *sys.argv]),
        "training_alerts": training_alerts(data.table),
    }
    if metrics is not None:
        extra["real_data_metrics"] = metrics
    annotate_card(Path(trained.result.checkpoint).parent / CARD_NAME, out_dir / CARD_NAME, extra)
    pure.pop("store")
    return {
        "benchmark": "realbogus_real --train-all",
        "out_dir": str(out_dir),
        "checkpoint_bytes": ckpt.stat().st_size,
        "alerts": {**data.counts, **left_out},
        "simulated_pure": pure,
        "simulated_on_backgrounds": trained.simulated_on_backgrounds,
        "validation_metrics": trained.result.metrics,
        "card_added": extra,
        "seconds": round(time.perf_counter() - t0, 1),
    }
