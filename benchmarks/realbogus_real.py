"""Real-bogus on real ZTF alerts from nights that never touched training (issue 20, item 1).

The alerts of ``/work/shared/ztf_alerts`` (sets A-C and the ZTF alerts of ``F_more_real``; Rubin alerts have
no ``drb``/``rb`` and are left out) are decoded with :func:`pipeline.alerts.read_alerts` (every format it
reads: Avro now, Fink Parquet and JSON once its readers land; the alerts of each format used, and those it
could not read, are counted) and pseudo-labelled ``drb >= 0.5`` where the packet has ZTF's deep real-bogus
score, else ``rb >= 0.5`` (the label source is given per alert). Whole nights (UTC dates) are grouped into
``--folds`` folds (:func:`benchmarks.realbogus_real_data.make_folds`). For each fold:

1. the training alerts are the other nights' alerts minus any of an object (``objectId``) held out; they are
   stored with their labels through the ingest driver, like ``stampflow alerts ingest``;
2. ``stampflow simulate transients --survey ztf`` (:func:`pipeline.simulate.transients.simulate_transients`)
   makes ``--n-sim`` triplets of the pure simulator (one set shared by every fold) and, where the simulator
   has ``--backgrounds``, ``--n-backgrounds`` more injected into the training alerts only (the labelled
   training alerts themselves among them);
3. the ``ztf`` model (``--preset``) trains on the three stores with :func:`models.train.train_model` within
   ``--cpu-minutes`` CPU-minutes (its temperature and threshold come from its validation split of those
   stores); :class:`benchmarks.realbogus_real_eval.LeakageChecks` asserts that no held-out candid, object,
   night, pixel array or background reached any of it;
4. the held-out alerts are scored by :func:`pipeline.scoring.score_store` and measured: ROC AUC, missed-real
   fraction at 1 % and 5 % false positives, FNR and FPR at the card's threshold, ECE, and ZTF's ``rb`` AUC on
   the same alerts (:mod:`benchmarks.realbogus_real_eval`).

Prints one JSON document (folds, pooled summary, every alert's score, the command, seeds, git commit).

Usage: python benchmarks/realbogus_real.py [--folds 4] [--cpu-minutes 5] [--seed 0] [--out FILE.json]
       [--quick] [--work runs/bench_realbogus_real] [--threads 1] [--preset ztf]
       python benchmarks/realbogus_real.py --train-all OUT_DIR [--folds-result FOLDS.json] [same options]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.realbogus_real_data import BIG_NIGHTS, alert_store, decode_alerts, load_manifest, make_folds
from benchmarks.realbogus_real_eval import LeakageChecks, acceptance, held_out_metrics
from benchmarks.realbogus_real_train import simulated_store, train_all, train_recipe

REPO = Path(__file__).resolve().parents[1]
#: Sizes of ``--quick`` (a smoke test: 4.5 minutes at load average 7 on 2
#: cores; its numbers mean little).
QUICK = {"folds": 2, "cpu_minutes": 0.25, "n_sim": 300, "n_backgrounds": 300}
FULL = {"folds": 4, "cpu_minutes": 5.0, "n_sim": 1500, "n_backgrounds": 2500}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, help=f"folds of held-out nights (default {FULL['folds']})")
    parser.add_argument(
        "--cpu-minutes", type=float, help=f"training CPU-minutes per fold ({FULL['cpu_minutes']})"
    )
    parser.add_argument("--n-sim", type=int, help=f"pure simulated triplets ({FULL['n_sim']})")
    parser.add_argument(
        "--n-backgrounds", type=int, help=f"triplets on real backgrounds ({FULL['n_backgrounds']})"
    )
    parser.add_argument("--max-steps", type=int, help="also stop at this many optimiser steps (exact reruns)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="ztf")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of training and scoring")
    parser.add_argument("--workers", type=int, default=1, help="processes of the simulator")
    parser.add_argument("--alerts", type=Path, default=None, help="the ztf_alerts folder")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench_realbogus_real")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test (a few minutes)")
    parser.add_argument(
        "--train-all",
        type=Path,
        metavar="OUT_DIR",
        help="no folds: train the same recipe on every night, model.ckpt + annotated card into OUT_DIR",
    )
    parser.add_argument(
        "--folds-result",
        type=Path,
        metavar="PATH",
        help="with --train-all: a folds result JSON (--out) of the same preset and budget; its pooled "
        "held-out metrics go into the card as real_data_metrics",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name, default in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def git_commit() -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes."""

    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def score_held_out(ckpt: Path, store: Path, out: Path, threads: int) -> tuple[pd.DataFrame, dict]:
    """The model's calibrated ``rb`` of every held-out store row (``candid``, ``score``) and its card."""
    from models.checkpoints import load_checkpoint
    from pipeline.scoring import score_store

    module, card = load_checkpoint(ckpt)
    score_store(module, card, store, out, backend="eager", threads=threads, columns=["candid"])
    scored = pd.read_parquet(out, columns=["candid", "rb"]).rename(columns={"rb": "score"})
    scored["candid"] = scored["candid"].astype("int64")
    return scored, card


def run_fold(
    args: argparse.Namespace, k: int, nights: list[str], data: Any, pure: dict
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train on every alert but ``nights``' (and their objects'), score ``nights``; the fold's record."""
    t0 = time.perf_counter()
    table = data.table
    is_held = table["night"].isin(nights).to_numpy()
    held = table[is_held]
    same_object = table["objectId"].isin(set(held["objectId"])).to_numpy() & ~is_held
    train_rows = np.flatnonzero(~is_held & ~same_object)
    train = table.iloc[train_rows]
    work = args.work / f"fold{k}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    held_store = work / "held_out.h5"
    alert_store([data.alerts[i] for i in np.flatnonzero(is_held)], held["label"], held_store)
    checks = LeakageChecks(held)
    record: dict[str, Any] = {"fold": k, "held_out_nights": nights}
    t_train = time.perf_counter()  # "train" seconds: the training store, its simulation and training
    trained = train_recipe(
        args, work, train, [data.alerts[i] for i in train_rows], pure, args.seed + 1 + k, checks
    )
    result, stores = trained.result, trained.stores
    record["simulated_on_backgrounds"] = trained.simulated_on_backgrounds
    t_score = time.perf_counter()
    scored, card = score_held_out(
        Path(result.checkpoint), held_store, work / "held_out_scored.parquet", args.threads
    )
    checks.card(card, stores)
    scored = held.merge(scored, on="candid", how="left", validate="one_to_one")
    if scored["score"].isna().any():
        raise RuntimeError(f"fold {k}: {int(scored['score'].isna().sum())} held-out alerts have no score")
    threshold = float(card["threshold"])
    scored["called"] = scored["score"] >= threshold
    scored["fold"] = k
    metrics = held_out_metrics(scored)
    record.update(
        {
            "n_held_out": len(held),
            "n_train_real": len(train),
            "train_alerts_left_out_same_object": int(same_object.sum()),
            "train_label_sources": {str(a): int(b) for a, b in train["label_source"].value_counts().items()},
            "train_bogus": int((train["label"] == 0).sum()),
            "card": {
                key: card.get(key)
                for key in (
                    "threshold",
                    "threshold_fpr",
                    "threshold_val_fpr",
                    "temperature",
                    "steps",
                    "epochs",
                )
            }
            | {"fit_cpu_seconds": card.get("fit_cpu_seconds"), "fit_seconds": card.get("fit_seconds")},
            "validation_metrics": {
                k2: v for k2, v in result.metrics.items() if k2.startswith(("val/", "test/"))
            },
            "metrics": metrics,
            "acceptance": acceptance(metrics),
            "leakage_checks": checks.records,
            "seconds": {
                "prepare": round(t_train - t0, 1),
                "train": round(t_score - t_train, 1),
                "score": round(time.perf_counter() - t_score, 1),
            },
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        }
    )
    return record, scored


def summary(folds: list[dict], pooled: pd.DataFrame) -> dict[str, Any]:
    """Every fold's headline side by side, and the metrics of all held-out alerts pooled (each alert was
    held out once; each is called at its own fold's threshold)."""
    metrics = held_out_metrics(pooled)
    per_fold = [
        {
            "fold": f["fold"],
            "n": f["metrics"]["drb_labelled"]["n"],
            "n_bogus": f["metrics"]["drb_labelled"]["n_bogus"],
            "auc": f["metrics"]["drb_labelled"]["roc_auc"],
            "ztf_rb_auc": f["metrics"]["drb_labelled"]["ztf_rb_roc_auc"],
            "fnr_at_threshold": f["metrics"]["drb_labelled"]["at_card_threshold"]["fnr"],
            "fpr_at_threshold": f["metrics"]["drb_labelled"]["at_card_threshold"]["fpr"],
            "auc_all_labelled": f["metrics"]["all_labelled"]["roc_auc"],
            "passed": f["acceptance"]["passed"],
        }
        for f in folds
    ]
    return {
        "per_fold_drb_labelled": per_fold,
        "pooled": metrics,
        "pooled_acceptance": acceptance(metrics),
        "every_fold_passed": all(f["acceptance"]["passed"] for f in folds),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; the JSON document."""
    import torch

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    manifest, left_out = load_manifest(*([args.alerts] if args.alerts else []))
    data = decode_alerts(manifest)
    folds = make_folds(data.table, args.folds, args.seed)
    pure = simulated_store(args.work / "sim_pure", args.n_sim, args.seed, args.workers, [])
    records, scored = [], []
    for k, nights in enumerate(folds):
        print(f"fold {k}: holding out {len(nights)} nights", file=sys.stderr, flush=True)
        record, table = run_fold(args, k, nights, data, pure)
        # each fold's record as soon as it is done, so that a long run shows its progress
        (args.work / f"fold{k}" / "record.json").write_text(json.dumps(record, indent=2, default=str))
        records.append(record)
        scored.append(table)
    pooled = pd.concat(scored, ignore_index=True)
    alerts = pooled[["candid", "objectId", "night", "set", "format", "fold", "label", "label_source"]].copy()
    alerts["score"] = pooled["score"].round(6)
    alerts["called_real"] = pooled["called"]
    alerts["ztf_rb"], alerts["ztf_drb"] = pooled["ztf_rb"], pooled["ztf_drb"]
    pure.pop("store")
    return {
        "benchmark": "realbogus_real",
        "command": " ".join([sys.executable, *sys.argv]),
        "git": git_commit(),
        "seeds": {
            "split_and_training": args.seed,
            "pure_simulation": args.seed,
            "background_simulation": "seed+1+fold",
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": args.threads},
        "alerts": {**data.counts, **left_out, "nights": int(data.table["night"].nunique())},
        "labels": "drb >= 0.5 where the packet has drb, else rb >= 0.5 (label_source per alert)",
        "folds_nights": folds,
        "big_nights_in_different_folds": BIG_NIGHTS,
        "simulated_pure": pure,
        "folds": records,
        "summary": summary(records, pooled),
        "per_alert": alerts.to_dict(orient="records"),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # Lightning and tqdm talk; stdout is the JSON alone
        result = train_all(args, args.train_all) if args.train_all else run(args)
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
