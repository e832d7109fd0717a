"""Morphology models on real Galaxy Zoo galaxies at equal CPU time (issue 21, items 2-4).

The 1,014 real Kaggle galaxies of the dev set (``--dev``, default /work/shared/galaxy_zoo/kaggle_real_dev)
are split by GalaxyID with ``--seed``: ``--n-test`` (214) test galaxies and a training part (800) from which
the validation galaxies (``--val-fraction``) are carved (:mod:`benchmarks.morphology_real_data`). Each model
gets stores ingested with its own frame (:func:`pipeline.ingest.ingest_galaxy_zoo`, the centre crop its
frame takes of a 424 px image): a training store with only the training part and a test store with only
the test galaxies, so no test galaxy can reach a fit, a validation or anything chosen on them (asserted).

Rows (:mod:`benchmarks.morphology_real_rows`), each with the test RMSE over the 37 answers and per
question, CPU and wall seconds and steps; every CNN trains for ``--cpu-seconds`` CPU-seconds of one thread
(:class:`models.budget.CpuTimeLimit`, which other jobs on the machine do not change):

- ``small_scratch``: the ``small`` preset from scratch;
- ``small_finetuned``: ``small`` fine-tuned (``init_from``) from a checkpoint trained on simulated 424 px
  JPEGs: ``--pretrained CKPT``, or ``--pretrain-n N`` galaxies simulated, ingested and trained on inside
  the run (``--cpu-seconds`` too; its seconds are reported apart, under ``pretrained``);
- ``plain_cnn``: a CNN without viewpoints of about ``small``'s size (benchmarks/morphology_quality.py);
- ``resnet_small`` and ``resnet18``: from scratch, the ``resnet18`` preset at a quarter of its widths (0.71
  million parameters, about ``small``'s size) and as it is (:mod:`models.components.resnet`);
- ``ridge``: ridge regression on the pixels of the ResNet frame area-averaged to ``--ridge-side`` px,
  alpha by leave-one-out on the fit galaxies;
- ``training_mean``: the fit galaxies' mean answers.

``--curve 200 500 800``: instead, ``small`` from scratch and fine-tuned on the first N galaxies of the
training part (nested), on the same test galaxies.

Prints one JSON document (and writes it to ``--out``): rows, summary (best CNN against ridge, the training
mean and ``resnet18``; the acceptance of issue 21), split sizes, ingest and pretraining seconds, command.

Usage: python benchmarks/morphology_real.py [--cpu-seconds 300] [--pretrain-n 1500 | --pretrained CKPT]
       [--rows small_scratch ...] [--curve 200 500 800] [--seed 0] [--work DIR] [--out FILE.json] [--tta]
       [--jobs 2] [--ship DIR [--ship-row small_finetuned]]

``--ship models/pretrained/gz_sdss`` also copies the ``small_finetuned`` checkpoint into the package with
the run's real-data metrics (:mod:`benchmarks.morphology_real_ship`): the shipped ``gz_sdss`` model is
made by that one command.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.morphology_quality import similar_size_plain
from benchmarks.morphology_real_data import (
    DEV_SET,
    StoreCache,
    check_no_leak,
    model_ingest_frame,
    read_dev_catalog,
    split_dev,
)
from benchmarks.morphology_real_rows import cnn_row, mean_row, pretrain_on_simulation, ridge_row
from benchmarks.morphology_real_ship import ship_row
from models.components import count_parameters
from models.morphology import MorphologyModel

REPO = Path(__file__).resolve().parents[1]
CNN_ROWS = ("small_scratch", "small_finetuned", "plain_cnn", "resnet_small", "resnet18")
ROWS = (*CNN_ROWS, "ridge", "training_mean")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=DEV_SET, help="the dev set folder")
    parser.add_argument("--n-test", type=int, default=214, help="test galaxies (by id)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="of the training part")
    parser.add_argument(
        "--cpu-seconds",
        type=float,
        default=300.0,
        help="training CPU-seconds per CNN row and for the pretraining (default 300: the whole run in about "
        "20 minutes on 2 cores with --jobs 2)",
    )
    parser.add_argument("--pretrained", type=Path, help="simulation-pretrained small checkpoint")
    parser.add_argument("--pretrain-n", type=int, default=1500, help="else simulate this many galaxies")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--curve", type=int, nargs="+", help="training galaxies of each curve point")
    parser.add_argument("--ridge-side", type=int, default=16, help="px per side of the ridge's pixels")
    parser.add_argument("--tta", action="store_true", help="every CNN predicts with 8 dihedral transforms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench_morphology_real")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="rows trained at once, one process and one thread each (default 2)",
    )
    parser.add_argument(
        "--ship",
        type=Path,
        metavar="DIR",
        help="copy the --ship-row checkpoint to DIR (e.g. models/pretrained/gz_sdss) with the run's real-data "
        "metrics and this command in its card",
    )
    parser.add_argument(
        "--ship-row", default="small_finetuned", choices=CNN_ROWS, help="the row --ship copies"
    )
    return parser.parse_args(argv)


def cnn_settings(args: argparse.Namespace) -> dict[str, tuple[str, dict[str, Any]]]:
    """Row name -> (preset, overrides) of the CNN rows."""
    extra = {"tta": True} if args.tta else {}
    small_params = count_parameters(MorphologyModel("small", **extra).net)
    return {
        "small_scratch": ("small", extra),
        "small_finetuned": ("small", extra),
        "plain_cnn": ("small", similar_size_plain("small", small_params, **extra)),
        "resnet_small": ("resnet18", {"resnet_widths": [16, 32, 64, 128], **extra}),
        "resnet18": ("resnet18", extra),
    }


class Bench:
    """One run: the dev catalog and split, the stores (one per subset and frame), the pretrained parent."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.catalog = read_dev_catalog(args.dev)
        self.split = split_dev(self.catalog.ids, args.n_test, args.seed, args.val_fraction)
        self.stores = StoreCache(self.catalog, args.work)
        self.settings = cnn_settings(args)
        self.pretrained: dict[str, Any] | None = None
        self.training_stores: list[Path] = []
        self.splits: list[Path] = []

    def stores_for(self, preset: str, overrides: dict[str, Any], n: int | None = None) -> tuple[Path, Path]:
        """Training store of the first ``n`` training galaxies (all by default) and test store, both with
        the model's frame."""
        frame = model_ingest_frame(preset, overrides)
        fit, val = self.split.training(n)
        train = self.stores.store(f"train{n or ''}", [*fit, *val], frame)
        test = self.stores.store("test", self.split.test, frame)
        if train not in self.training_stores:
            self.training_stores.append(train)
        return train, test

    def parent(self) -> Path:
        """The simulation-pretrained ``small`` checkpoint (trained here once when not given)."""
        if self.args.pretrained:
            return self.args.pretrained
        if self.pretrained is None:
            preset, overrides = self.settings["small_finetuned"]
            frame = model_ingest_frame(preset, overrides)
            self.pretrained = pretrain_on_simulation(
                self.args.pretrain_n, preset, frame, self.args.work / "pretrain", self.args.cpu_seconds,
                self.args.seed,
            )  # fmt: skip
        return Path(self.pretrained["checkpoint"])

    def cnn(self, row: str, n: int | None = None) -> dict[str, Any]:
        preset, overrides = self.settings[row]
        train, test = self.stores_for(preset, overrides, n)
        init_from = self.parent() if row == "small_finetuned" else None
        name = row if n is None else f"{row}_{n}"
        self.splits.append(self.args.work / "runs" / name / "splits.csv")
        facts = cnn_row(
            name, preset, overrides, train, test, self.split.training(n), self.args.work / "runs",
            self.args.cpu_seconds, self.args.seed, init_from,
        )  # fmt: skip
        print(json.dumps({name: {k: facts[k] for k in ("rmse", "cpu_seconds", "steps")}}), flush=True)
        return facts

    def baseline(self, row: str) -> dict[str, Any]:
        train, test = self.stores_for(*self.settings["resnet18"])  # Dieleman's view at 69 px
        fit, _val = self.split.training()
        if row == "ridge":
            return ridge_row(train, test, fit, self.args.ridge_side, alphas=[10.0**k for k in range(-3, 6)])
        return mean_row(train, test, fit)

    def check(self) -> None:
        check_no_leak(self.split.test, self.training_stores, [p for p in self.splits if p.exists()])


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The best CNN row against ridge, the training mean and ``resnet18`` (issue 21's acceptance)."""
    by = {r["row"]: r for r in rows}
    cnns = [r for r in rows if r["row"] in CNN_ROWS]
    if not cnns:
        return {}
    best = min(cnns, key=lambda r: r["rmse"])
    out: dict[str, Any] = {"best_cnn": best["row"], "best_cnn_rmse": best["rmse"]}
    if "ridge" in by:
        gain = 1 - best["rmse"] / by["ridge"]["rmse"]
        out["best_cnn_gain_over_ridge"] = round(gain, 4)
        out["beats_ridge_by_15pct"] = gain >= 0.15
    if "training_mean" in by:
        ratio = best["rmse"] / by["training_mean"]["rmse"]
        out["best_cnn_to_training_mean"] = round(ratio, 4)
        out["within_0.70_of_training_mean"] = ratio <= 0.70
    if "resnet18" in by and best["row"] != "resnet18":
        out["beats_resnet18_same_cpu_seconds"] = best["rmse"] < by["resnet18"]["rmse"]
    return out


def _row_in_worker(
    args: argparse.Namespace, row: str, n: int | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One row (on the first ``n`` training galaxies) in a worker process, with its own :class:`Bench` over
    the stores the parent ingested: the row's facts and, for ``small_finetuned``, the pretraining's."""
    torch.set_num_threads(1)
    bench = Bench(args)
    bench.stores.reports.update(args.ingested)  # ingested by the parent: reuse, never ingest concurrently
    facts = bench.cnn(row, n) if row in CNN_ROWS else bench.baseline(row)
    return facts, bench.pretrained


def run_tasks(bench: Bench, tasks: list[tuple[str, int | None]]) -> list[dict[str, Any]]:
    """The facts of each ``(row, n)``, in order; with ``--jobs`` > 1 in that many processes (each row keeps
    its own CPU-time budget of one thread, so rows side by side get the same compute as rows one by one)."""
    for row, n in tasks:  # ingest every store once, here, before any worker reads them
        bench.stores_for(*bench.settings[row if row in CNN_ROWS else "resnet18"], n)
    if bench.args.jobs <= 1:
        return [bench.cnn(row, n) if row in CNN_ROWS else bench.baseline(row) for row, n in tasks]
    if any(row == "small_finetuned" for row, _ in tasks) and bench.args.pretrained is None:
        bench.parent()  # pretrain once, before the rows that start from it
    args = argparse.Namespace(**vars(bench.args), ingested=dict(bench.stores.reports))
    args.pretrained = bench.args.pretrained or (
        Path(bench.pretrained["checkpoint"]) if bench.pretrained else None
    )
    with ProcessPoolExecutor(bench.args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = list(pool.map(_row_in_worker, [args] * len(tasks), *zip(*tasks, strict=True)))
    for row, n in tasks:
        if row in CNN_ROWS:
            bench.splits.append(
                bench.args.work / "runs" / (row if n is None else f"{row}_{n}") / "splits.csv"
            )
    return [facts for facts, _ in done]


def run_rows(bench: Bench) -> dict[str, Any]:
    rows = run_tasks(bench, [(row, None) for row in bench.args.rows])
    return {"rows": rows, "summary": summarise(rows)}


def run_curve(bench: Bench) -> dict[str, Any]:
    tasks = [(row, n) for n in bench.args.curve for row in ("small_scratch", "small_finetuned")]
    facts = iter(run_tasks(bench, tasks))
    points = []
    for n in bench.args.curve:
        scratch, tuned = next(facts), next(facts)
        points.append({"train_galaxies": n, "scratch": scratch, "finetuned": tuned,
                       "finetuned_better": tuned["rmse"] < scratch["rmse"]})  # fmt: skip
    return {"curve": points}


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    wall0, load_before = time.perf_counter(), os.getloadavg()
    bench = Bench(args)
    result = run_curve(bench) if args.curve else run_rows(bench)
    bench.check()
    result.update(
        {
            "split": bench.split.to_dict(),
            "cpu_seconds_per_cnn": args.cpu_seconds,
            "pretrained": bench.pretrained or (str(args.pretrained) if args.pretrained else None),
            "ingest": bench.stores.reports,
            "leakage_checked": True,
            "wall_seconds": round(time.perf_counter() - wall0, 1),
            "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread",
            "command": " ".join(["python benchmarks/morphology_real.py", *(argv or sys.argv[1:])]),
            "git_commit": _commit(),
        }
    )
    if args.ship:
        result["shipped"] = ship_row(result, args.ship_row, args.ship, args.work / "runs" / args.ship_row)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
