"""Held-out quality of the ``small`` morphology preset on simulated galaxies, against two baselines, at equal
compute.

1. Simulate ``--n`` galaxies (``stampflow simulate galaxies N --out DIR --seed SIM_SEED``: 69x69 FITS cubes
   g, r, i and ``training_solutions.csv``; 2,000 galaxies with seed 0 is the simulator's default set) and
   ingest them (:func:`pipeline.ingest.galaxy_zoo.ingest_galaxy_zoo`, Kaggle format) into a stamp store; or
   use ``--store``.
2. The Dieleman model (``--preset``, 16 viewpoints) and a plain CNN of similar size without viewpoints: one
   conv stack on the whole view with the preset's filters doubled and its maxout units chosen so that the
   parameter count matches the model's, with the same optimiser, learning-rate schedule, batch size,
   normalisation and augmentation. Also, for reference, the plain CNN with exactly the preset's layers
   (``--same-layers``; fewer parameters).
3. Both get the same compute: ``--minutes`` on ``--cores`` cores, i.e. ``minutes * 60 * cores`` CPU-seconds
   of the training process each (5 minutes on 2 cores = 600 CPU-s), whatever else runs on the machine:

   - ``--budget steps`` (default, reproducible): the CPU time per training step of each network is measured
     first (``--calibration-steps`` steps, ``--calibration-rounds`` rounds alternating between the networks,
     mean after warm-up, :class:`models.budget.StepClock`), and each network then trains for the number of
     steps that fills the budget (:func:`models.budget.steps_for_budget`); its learning-rate drops are at
     fixed fractions of those steps. ``--steps-model N --steps-plain M`` skips the measurement and gives the
     same numbers again for the same seed.
   - ``--budget cpu``: each training stops when its process has used the budget
     (:class:`models.budget.CpuTimeLimit`; the learning-rate drops follow the same clock); the stopping step,
     hence the numbers, vary a little from run to run.

   Validation runs once after fitting (no validation cost inside the budget). The JSON reports the steps,
   the wall and the CPU seconds each fit actually took.
4. The RMSE of predicting the training-split mean for every test stamp.

All are RMSEs over the 37 answers on the same held-out test split (``--seed`` seeds the split, the
initialisation, the shuffling and the augmentation). Prints JSON with the three RMSEs, the ratio model /
mean (target <= 0.6), whether the model beats the plain CNN, steps, epochs, times and parameter counts; and,
outside the comparison, both networks' test RMSE with their predictions averaged over the 8 dihedral
transforms of each stamp (``with_tta``: the viewpoint model is invariant to them by construction, the plain
CNN only learns to be, so this helps the plain CNN much more). ``--extra-store`` adds both networks' RMSE on
the galaxies of another store that are not in the training store (``extra_test``; e.g. a 5,000-galaxy
simulation with the same seed, whose first 2,000 galaxies are the default set: 3,000 more held-out galaxies,
a standard error of the difference about 3x smaller than on the 200-galaxy test split).

``--seeds 0 1 2 --jobs 2`` runs the whole comparison once per seed (``--jobs`` at a time, each in its own
process with its own budget; under ``--budget cpu`` parallel runs do not change each other's budget) and
prints every run and a summary: per seed the three RMSEs, whether the model beats the plain CNN on the
test split and on the extra store, and the mean differences.

Usage: python benchmarks/morphology_quality.py [--n 2000] [--store S] [--minutes 5] [--cores 2] [--seed 0]
       [--seeds S1 S2 ... --jobs J] [--budget steps|cpu] [--steps-model N --steps-plain M] [--workdir D]
       [--threads 1] [--same-layers] [--overrides JSON] [--extra-store S2] [--val-every E]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.budget import StepClock, cpu_budget_s, steps_for_budget
from models.checkpoints import load_checkpoint
from models.components import count_parameters
from models.data import StampDataModule
from models.morphology import MorphologyModel
from models.morphology_config import MorphologyConfig
from models.train import TrainResult, train_model
from pipeline.prep import BatchPrep
from pipeline.store import open_store


def simulate_store(workdir: Path, n: int, seed: int) -> Path:
    """Simulate ``n`` galaxies with the stampflow CLI and ingest them into ``workdir/galaxies.h5``."""
    from flows.cli import main as cli_main
    from pipeline.ingest import ingest_galaxy_zoo

    sim = workdir / "sim"
    code = cli_main(["simulate", "galaxies", str(n), "--out", str(sim), "--seed", str(seed)])
    if code:
        raise SystemExit(f"stampflow simulate galaxies failed with exit code {code}")
    store = workdir / "galaxies.h5"
    report = ingest_galaxy_zoo(sim / "training_solutions.csv", sim / "images", store, format="kaggle")
    print(json.dumps({"simulated": n, "ingest": report.summary()}), flush=True)
    return store


def mean_predictor_rmse(store: Path, splits_csv: Path, seed: int) -> float:
    """Test-split RMSE over the 37 answers of predicting the training-split mean answers."""
    dm = StampDataModule(store, MorphologyModel.TARGET, seed=seed, splits_csv=splits_csv)
    dm.setup()
    mean = dm.targets[dm.indices("train")].astype(np.float64).mean(axis=0)
    test = dm.targets[dm.indices("test")].astype(np.float64)
    return float(np.sqrt(np.mean((test - mean) ** 2)))


def test_rmse_with_tta(checkpoint: str) -> float:
    """Test-split RMSE of a trained checkpoint with its predictions averaged over the 8 dihedral transforms
    of each stamp (test-time augmentation, :meth:`models.components.dieleman.DielemanNet.forward_tta`)."""
    model, card = load_checkpoint(checkpoint)
    model.eval()
    splits = Path(checkpoint).with_name("splits.csv")
    dm = StampDataModule(
        card["training_stores"], MorphologyModel.TARGET, seed=card["seed"], splits_csv=splits,
        **model.data_config(),
    )  # fmt: skip
    dm.setup("test")
    sq_err, count = 0.0, 0
    with torch.inference_mode():
        for x, y in dm.test_dataloader():
            sq_err += float(((model.net.forward_tta(x) - y) ** 2).sum())
            count += y.numel()
    return (sq_err / count) ** 0.5


def extra_test_rmse(checkpoints: dict[str, str], store: Path, exclude: Path) -> dict[str, Any]:
    """RMSE of each checkpoint on the stamps of ``store`` whose ``object_id`` is not in the store ``exclude``
    (e.g. galaxies 2,000-4,999 of a 5,000-galaxy simulation, disjoint from the 2,000-galaxy default set): a
    larger held-out set than the test split, for a more precise comparison. Prepared like scoring
    (:class:`pipeline.prep.batch.BatchPrep` from each model's ``data_config``)."""
    with open_store(exclude) as seen:
        known = set(seen.catalog(columns=["object_id"])["object_id"])
    models = {name: load_checkpoint(path)[0].eval() for name, path in checkpoints.items()}
    preps = {name: BatchPrep.from_config(model.data_config()) for name, model in models.items()}
    sq_err = dict.fromkeys(models, 0.0)
    count = 0
    with open_store(store) as extra, torch.inference_mode():
        keep = ~extra.catalog(columns=["object_id"])["object_id"].isin(known).to_numpy()
        answers = extra.labels(MorphologyModel.TARGET)
        for rows, stamps, mask in extra.iter_chunks(500):
            sel = keep[rows]
            if not sel.any():
                continue
            y = torch.from_numpy(answers[rows][sel].astype(np.float32))
            for name, model in models.items():
                x = preps[name](stamps[sel], mask[sel])
                sq_err[name] += float(((model.predict_tensor(x) - y) ** 2).sum())
            count += y.numel()
    if not count:
        raise ValueError(f"{store} has no stamp that is not in {exclude}")
    return {"n": count // 37, **{name: round((v / count) ** 0.5, 5) for name, v in sq_err.items()}}


def similar_size_plain(preset: str, target_params: int, **settings: Any) -> dict:
    """Overrides for a plain CNN (no viewpoints) with about ``target_params`` parameters: the preset's conv
    filters doubled, and the units of its maxout layers chosen (multiples of 16) to match the count. Its
    frame is the view itself (no margin, which only the 45-degree viewpoints use), so it does not pay for
    preparing pixels it never sees. ``settings`` are the other overrides of the model (kept)."""
    base = MorphologyConfig.from_preset(preset, **settings)
    conv = [[2 * f, k, p, pool] for f, k, p, pool in base.conv]
    best: tuple[int, dict] | None = None
    for units in range(16, 4097, 16):
        overrides = {
            **settings,
            "viewpoints": False,
            "context": False,  # no margin for 45-degree views: the plain CNN sees only the view
            "cyclic_pool": None,
            "conv": conv,
            "dense_units": [units] * len(base.dense_units),
        }
        n = count_parameters(MorphologyModel(preset, **overrides).net)
        if best is None or abs(n - target_params) < abs(best[0] - target_params):
            best = (n, overrides)
        if n > target_params:
            break
    return best[1]


def _train(
    name: str, store: Path, out: Path, args: argparse.Namespace, overrides: dict, **limits: Any
) -> TrainResult:
    return train_model(
        "morphology",
        [store],
        out / name,
        preset=args.preset,
        max_epochs=-1,
        val_every_n_epochs=args.val_every,
        seed=args.seed,
        model_overrides=overrides,
        **limits,
    )


def calibrate(
    nets: dict[str, dict], store: Path, workdir: Path, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """CPU and wall seconds per training step of each network: ``--calibration-rounds`` short fits of
    ``--calibration-steps`` steps each, alternating between the networks so that both see the same load;
    the mean over the steps after a warm-up of 10, averaged over the rounds."""
    cpu: dict[str, list[float]] = {name: [] for name in nets}
    wall: dict[str, list[float]] = {name: [] for name in nets}
    for r in range(args.calibration_rounds):
        for name, overrides in nets.items():
            clock = StepClock()
            _train(
                f"{name}_{r}", store, workdir / "calibration", args, overrides,
                max_steps=args.calibration_steps, callbacks=[clock],
            )  # fmt: skip
            cpu[name].append(clock.cpu_per_step(skip=10))
            wall[name].append(clock.wall_per_step(skip=10))
    return {
        name: {"cpu_s_per_step": float(np.mean(cpu[name])), "wall_s_per_step": float(np.mean(wall[name]))}
        for name in nets
    }


def _fit_facts(result: TrainResult, params: int) -> dict[str, Any]:
    return {
        "rmse": round(result.metrics["test/rmse"], 5),
        "val_rmse": round(result.metrics.get("val/rmse", float("nan")), 5),
        "steps": result.steps,
        "epochs": result.epochs,
        "fit_cpu_s": round(result.fit_cpu_seconds, 1),
        "fit_wall_s": round(result.fit_seconds, 1),
        "parameters": params,
    }


def _without_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """``argv`` without the options ``names`` and their values."""
    out, skip = [], False
    for item in argv:
        if item in names:
            skip = True
        elif skip and not item.startswith("--"):
            continue
        else:
            skip = False
            out.append(item)
    return out


def summarise_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-seed RMSEs and the mean differences model - plain CNN (negative: the model is better)."""
    per_seed = []
    for r in runs:
        row = {
            "seed": r["seed"],
            "rmse_model": r["rmse_model"],
            "rmse_plain_cnn": r["rmse_plain_cnn"],
            "rmse_training_mean": r["rmse_training_mean"],
            "ratio_model_to_mean": r["ratio_model_to_mean"],
            "model_beats_plain_cnn": r["model_beats_plain_cnn"],
        }
        if r.get("extra_test"):
            extra = r["extra_test"]
            row["extra_test"] = extra
            row["model_beats_plain_cnn_on_extra"] = extra["model"] < extra["plain_cnn"]
        per_seed.append(row)
    out: dict[str, Any] = {
        "seeds": [r["seed"] for r in per_seed],
        "per_seed": per_seed,
        "model_beats_plain_cnn_every_seed": all(r["model_beats_plain_cnn"] for r in per_seed),
        "model_within_0.6_of_mean_every_seed": all(r["ratio_model_to_mean"] <= 0.6 for r in per_seed),
        "mean_rmse_model_minus_plain": round(
            float(np.mean([r["rmse_model"] - r["rmse_plain_cnn"] for r in per_seed])), 5
        ),
    }
    if all("extra_test" in r for r in per_seed):
        out["model_beats_plain_cnn_on_extra_every_seed"] = all(
            r["model_beats_plain_cnn_on_extra"] for r in per_seed
        )
        out["mean_extra_rmse_model_minus_plain"] = round(
            float(np.mean([r["extra_test"]["model"] - r["extra_test"]["plain_cnn"] for r in per_seed])), 5
        )
    return out


def run_seeds(argv: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """The comparison once per seed of ``--seeds`` (``--jobs`` processes), then :func:`summarise_seeds`."""
    base = _without_options(argv, ("--seeds", "--jobs", "--seed", "--workdir"))
    runs_argv = []
    for seed in args.seeds:
        extra = ["--workdir", str(args.workdir / f"seed{seed}")] if args.workdir else []
        runs_argv.append([*base, "--seed", str(seed), *extra])
    if args.jobs > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            runs = list(pool.map(main, runs_argv))
    else:
        runs = [main(a) for a in runs_argv]
    summary = {"runs": runs, "summary": summarise_seeds(runs)}
    print(json.dumps(summary["summary"], indent=2))
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="galaxies to simulate (default: the default set)")
    parser.add_argument("--sim-seed", type=int, default=0, help="seed of the simulation")
    parser.add_argument("--store", type=Path, help="use this store instead of simulating")
    parser.add_argument(
        "--minutes", type=float, default=5.0, help="budget of each training: wall minutes ..."
    )
    parser.add_argument(
        "--cores", type=int, default=2, help="... on this many cores (CPU-s = min * 60 * cores)"
    )
    parser.add_argument("--budget", choices=["steps", "cpu"], default="steps", help="see the docstring")
    parser.add_argument("--steps-model", type=int, help="train the model this many steps (no calibration)")
    parser.add_argument("--steps-plain", type=int, help="train the plain CNN this many steps")
    parser.add_argument("--calibration-steps", type=int, default=60)
    parser.add_argument("--calibration-rounds", type=int, default=2)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--overrides", type=json.loads, default={}, help="JSON settings for both networks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", help="run the comparison once per seed (summary)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at a time with --seeds")
    parser.add_argument("--workdir", type=Path, help="keep outputs here (default: a temporary folder)")
    parser.add_argument(
        "--val-every",
        type=int,
        help="also validate every N epochs while training (learning curves in WORKDIR/NAME/logs; the "
        "validation CPU time is then spent on top of the budget)",
    )
    parser.add_argument(
        "--extra-store",
        type=Path,
        help="also score both networks on the galaxies of this store that are not in the training store",
    )
    parser.add_argument("--same-layers", action="store_true", help="also train the same-layers plain CNN")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: per CPU-second the most efficient for these small networks; on "
        "2 shared cores, 2 OpenMP threads were up to 14x slower per step whenever another process held a core)",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if (args.steps_model is None) != (args.steps_plain is None):
        parser.error("give both --steps-model and --steps-plain, or neither")
    if args.seeds:
        return run_seeds(argv, args)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="morph_quality_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        store = args.store or simulate_store(workdir, args.n, args.sim_seed)
        data_s = time.perf_counter() - t0
        model_settings = dict(args.overrides)
        model_params = count_parameters(MorphologyModel(args.preset, **model_settings).net)
        nets = {
            "model": model_settings,
            "plain_cnn": similar_size_plain(args.preset, model_params, **args.overrides),
        }
        if args.same_layers:
            nets["plain_same_layers"] = {**args.overrides, "viewpoints": False, "cyclic_pool": None}
        budget = cpu_budget_s(args.minutes, args.cores)
        calibration: dict[str, dict[str, float]] = {}
        limits: dict[str, dict[str, Any]]
        if args.budget == "cpu":
            limits = {name: {"max_cpu_time_s": budget} for name in nets}
        elif args.steps_model is not None:
            limits = {"model": {"max_steps": args.steps_model}, "plain_cnn": {"max_steps": args.steps_plain}}
            nets.pop("plain_same_layers", None)
        else:
            calibration = calibrate(nets, store, workdir, args)
            limits = {
                name: {"max_steps": steps_for_budget(budget, calibration[name]["cpu_s_per_step"])}
                for name in nets
            }
        facts: dict[str, dict[str, Any]] = {}
        per_question: dict[str, float] = {}
        for name, overrides in nets.items():
            result = _train(name, store, workdir, args, overrides, **limits[name])
            facts[name] = _fit_facts(result, count_parameters(MorphologyModel(args.preset, **overrides).net))
            facts[name]["rmse_with_tta"] = round(test_rmse_with_tta(result.checkpoint), 5)
            if calibration:
                facts[name]["calibrated_cpu_s_per_step"] = round(calibration[name]["cpu_s_per_step"], 5)
            print(json.dumps({name: facts[name]}), flush=True)
            if name == "model":
                per_question = {
                    k.split("/")[1]: round(v, 4)
                    for k, v in result.metrics.items()
                    if k.startswith("test/rmse_")
                }
        mean_rmse = mean_predictor_rmse(store, workdir / "model" / "splits.csv", args.seed)
        extra = None
        if args.extra_store:
            ckpts = {name: str(workdir / name / "model.ckpt") for name in ("model", "plain_cnn")}
            extra = extra_test_rmse(ckpts, args.extra_store, store)
    rmse, plain_rmse = facts["model"]["rmse"], facts["plain_cnn"]["rmse"]
    result = {
        "preset": args.preset,
        "overrides": args.overrides,
        "store": str(store),
        "seed": args.seed,
        "budget": args.budget,
        "budget_cpu_s": budget,
        "budget_text": f"{args.minutes:g} min on {args.cores} cores",
        "rmse_model": rmse,
        "rmse_plain_cnn": plain_rmse,
        "rmse_training_mean": round(mean_rmse, 5),
        "ratio_model_to_mean": round(rmse / mean_rmse, 4),
        "model_within_0.6_of_mean": rmse <= 0.6 * mean_rmse,
        "model_beats_plain_cnn": rmse < plain_rmse,
        "model_to_plain_cnn": round(rmse / plain_rmse, 4),
        "with_tta": {  # not part of the comparison: both averaged over the 8 dihedral transforms at test time
            "rmse_model": facts["model"]["rmse_with_tta"],
            "rmse_plain_cnn": facts["plain_cnn"]["rmse_with_tta"],
        },
        "extra_test": extra,
        "rmse_model_per_question": per_question,
        "runs": facts,
        "reproduce": None
        if args.budget == "cpu"
        else f"--steps-model {facts['model']['steps']} --steps-plain {facts['plain_cnn']['steps']}",
        "data_seconds": round(data_s, 1),
        "torch_threads": torch.get_num_threads(),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}",
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
