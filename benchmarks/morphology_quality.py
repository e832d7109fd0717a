"""Held-out quality of the ``small`` morphology preset on simulated galaxies, against two baselines.

1. Simulate ``--n`` galaxies (``stampflow simulate galaxies N --out DIR --seed S``: FITS cubes (3, H, W)
   g, r, i and ``training_solutions.csv``) and ingest them (:func:`pipeline.galaxy_zoo_ingest.ingest_galaxy_zoo`,
   Kaggle format) into a stamp store; or use ``--store``.
2. Train the Dieleman model (``--preset``, 16 viewpoints) for at most ``--minutes`` of wall time
   (:func:`models.train.train_model`, seeded, deterministic).
3. Train a plain CNN of similar size without viewpoints for the same time: one conv stack on the whole
   view with the preset's filters doubled and its maxout units chosen so that the parameter count matches
   the model's (the same optimiser, normalisation and augmentation). Also, for reference, the plain CNN with
   exactly the preset's layers (``--same-layers``; about a third of the parameters).
4. The RMSE of predicting the training-split mean for every test stamp.

All are RMSEs over the 37 answers on the same held-out test split (same seed). Prints JSON with the RMSEs,
the ratio model / mean (target <= 0.6), whether the model beats the plain CNN, the fit times, epochs and
parameter counts. Runs are bounded by wall time, so the numbers depend on the machine's speed.

Usage: python benchmarks/morphology_quality.py [--n 5000] [--minutes 5] [--seed 0] [--store S] [--workdir D] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from models.checkpoints import load_checkpoint
from models.datamodule import StampDataModule
from models.layers import count_parameters
from models.morphology import MorphologyConfig, MorphologyModel
from models.train import TrainResult, train_model


def simulate_store(workdir: Path, n: int, seed: int) -> Path:
    """Simulate ``n`` galaxies with the stampflow CLI and ingest them into ``workdir/galaxies.h5``."""
    from flows.cli import main as cli_main
    from pipeline.galaxy_zoo_ingest import ingest_galaxy_zoo

    sim = workdir / "sim"
    code = cli_main(["simulate", "galaxies", str(n), "--out", str(sim), "--seed", str(seed)])
    if code:
        raise SystemExit(f"stampflow simulate galaxies failed with exit code {code}")
    store = workdir / "galaxies.h5"
    # tol 1e-5: the simulator writes fractions with 6 decimals, whose rounding can exceed the 1e-6 default.
    report = ingest_galaxy_zoo(
        sim / "training_solutions.csv", sim / "images", store, format="kaggle", tol=1e-5
    )
    print(json.dumps({"simulated": n, "ingest": report.summary()}), flush=True)
    return store


def mean_predictor_rmse(store: Path, splits_csv: Path, seed: int) -> float:
    """Test-split RMSE over the 37 answers of predicting the training-split mean answers."""
    dm = StampDataModule(store, MorphologyModel.TARGET, seed=seed, splits_csv=splits_csv)
    dm.setup()
    mean = dm.targets[dm.indices("train")].astype(np.float64).mean(axis=0)
    test = dm.targets[dm.indices("test")].astype(np.float64)
    return float(np.sqrt(np.mean((test - mean) ** 2)))


def similar_size_plain(preset: str, target_params: int) -> dict:
    """Overrides for a plain CNN (no viewpoints) with about ``target_params`` parameters: the preset's conv
    filters doubled, and the units of its maxout layers chosen (multiples of 16) to match the count."""
    base = MorphologyConfig.from_preset(preset)
    conv = [[2 * f, k, p, pool] for f, k, p, pool in base.conv]
    best: tuple[int, dict] | None = None
    for units in range(16, 4097, 16):
        overrides = {"viewpoints": False, "conv": conv, "dense_units": [units] * len(base.dense_units)}
        n = count_parameters(MorphologyModel(preset, **overrides).net)
        if best is None or abs(n - target_params) < abs(best[0] - target_params):
            best = (n, overrides)
        if n > target_params:
            break
    return best[1]


def run(
    name: str, store: Path, workdir: Path, args: argparse.Namespace, **overrides
) -> tuple[TrainResult, int]:
    result = train_model(
        "morphology",
        [store],
        workdir / name,
        preset=args.preset,
        max_epochs=args.max_epochs,
        max_time_s=args.minutes * 60,
        seed=args.seed,
        model_overrides=overrides,
    )
    model, _ = load_checkpoint(result.checkpoint)
    print(
        json.dumps({name: result.metrics.get("test/rmse"), "seconds_total": round(result.seconds, 1)}),
        flush=True,
    )
    return result, count_parameters(model)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="galaxies to simulate")
    parser.add_argument("--minutes", type=float, default=5.0, help="wall-time limit of each training run")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, help="use this store instead of simulating")
    parser.add_argument("--workdir", type=Path, help="keep outputs here (default: a temporary folder)")
    parser.add_argument("--same-layers", action="store_true", help="also train the same-layers plain CNN")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on 2 shared cores, 2 OpenMP threads were up to 14x slower "
        "per step than 1 whenever another process held a core)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="morph_quality_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        store = args.store or simulate_store(workdir, args.n, args.seed)
        data_s = time.perf_counter() - t0
        model, model_params = run("viewpoints", store, workdir, args)
        plain, plain_params = run(
            "plain", store, workdir, args, **similar_size_plain(args.preset, model_params)
        )
        same = run("plain_same_layers", store, workdir, args, viewpoints=False) if args.same_layers else None
        mean_rmse = mean_predictor_rmse(store, workdir / "viewpoints" / "splits.csv", args.seed)
        rmse, plain_rmse = model.metrics["test/rmse"], plain.metrics["test/rmse"]
        result = {
            "preset": args.preset,
            "store": str(store),
            "seed": args.seed,
            "minutes_limit": args.minutes,
            "rmse_model": round(rmse, 5),
            "rmse_plain_cnn": round(plain_rmse, 5),
            "rmse_training_mean": round(mean_rmse, 5),
            "ratio_model_to_mean": round(rmse / mean_rmse, 4),
            "model_within_0.6_of_mean": rmse <= 0.6 * mean_rmse,
            "model_beats_plain_cnn": rmse < plain_rmse,
            "rmse_model_per_question": {
                k.split("/")[1]: round(v, 4) for k, v in model.metrics.items() if k.startswith("test/rmse_")
            },
            "fit_seconds": {"model": round(model.seconds, 1), "plain_cnn": round(plain.seconds, 1)},
            "epochs": {"model": model.epochs, "plain_cnn": plain.epochs},
            "parameters": {"model": model_params, "plain_cnn": plain_params},
            "data_seconds": round(data_s, 1),
            "torch_threads": torch.get_num_threads(),
        }
        if same is not None:
            result["plain_same_layers"] = {
                "rmse": round(same[0].metrics["test/rmse"], 5),
                "epochs": same[0].epochs,
                "parameters": same[1],
            }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
