"""Real-bogus quality: Deep-HiTS CNN against a random forest on simulated HiTS-like triplets, and the ``ztf``
preset, trained on simulated ZTF-like triplets only, on real ZTF alerts.

1. **HiTS**: simulate ``--n-hits`` (20,000) HiTS-like triplets (:mod:`pipeline.simulate.transients.dataset`, seeded),
   ingest them with their labels (:func:`pipeline.ingest.labelled_triplets.ingest_labelled_triplets`), train the
   ``hits`` preset with :func:`models.train.train_model` for at most ``--minutes`` (10) of fitting, on a
   70/10/20 split by object (test >= 4,000). Prints the test accuracy, FPR, FNR (at 0.5), ROC AUC, the
   validation threshold at ``--fpr`` and its test FPR/FNR, and the errors per simulated kind.
2. **Random forest** (the paper's baseline, here on pixels): ``sklearn.ensemble.RandomForestClassifier`` on
   the same normalised pixels (Deep-HiTS min-max, 4x21x21 flattened) of the same train split, scored on the
   same test split with the same metrics.
3. **ZTF real alerts**: simulate ``--n-ztf`` ZTF-like triplets, train the ``ztf`` preset for at most
   ``--ztf-minutes``, ingest the real set-C alerts shipped in ``data_catalogs/samples/ztf_triplets`` with
   :func:`pipeline.ingest.fits_stamps.ingest_fits` and print the ROC AUC of the model's score against ``drb > 0.5``
   (ZTF's deep real-bogus score as labels), with the per-alert scores written to ``ztf_real_scores.csv``.

Simulations and stores are cached in ``--work`` (keyed by survey, count and seed); models are retrained on
every run. ``--threads`` sets torch's intra-op threads (default 1: on 2 cores shared with other processes,
1 thread trained 2-5x faster than 2, which lose time waiting for each other).

Usage: python benchmarks/realbogus_quality.py [--work runs/bench_realbogus] [--n-hits 20000] [--minutes 10]
       [--n-ztf 6000] [--ztf-minutes 10] [--seed 0] [--threads 1] [--skip-ztf] [--skip-hits]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score

from models.checkpoints import load_checkpoint
from models.data import load_splits
from models.realbogus import RealBogusModel
from models.train import train_model
from pipeline.evaluation import rates_at
from pipeline.ingest import ingest_fits, ingest_labelled_triplets
from pipeline.simulate.transients import simulate_transients
from pipeline.store import open_store

REPO = Path(__file__).resolve().parents[1]
ZTF_SAMPLES = REPO / "data_catalogs" / "samples" / "ztf_triplets"
SET_C = Path("/work/shared/ztf_alerts/C_fink-broker_local_2020-01-01")
FRACTIONS = (0.7, 0.1, 0.2)


def labelled_store(work: Path, survey: str, n: int, seed: int) -> tuple[Path, dict[str, float]]:
    """Simulate and ingest ``n`` triplets of ``survey`` once (cached); the store path and the seconds spent."""
    sim = work / f"sim_{survey}_{n}_s{seed}"
    store = work / f"{survey}_{n}_s{seed}.h5"
    times: dict[str, float] = {}
    if not (sim / "labels.csv").exists():
        t0 = time.perf_counter()
        simulate_transients(n, sim, survey=survey, seed=seed)
        times["simulate_s"] = round(time.perf_counter() - t0, 1)
    if not store.exists():
        t0 = time.perf_counter()
        report = ingest_labelled_triplets(sim, store, rejects_path=store.with_suffix(".rejects.csv"))
        if report.n_ingested != n:
            raise RuntimeError(f"ingested {report.n_ingested} of {n} simulated triplets: {report.summary()}")
        times["ingest_s"] = round(time.perf_counter() - t0, 1)
    return store, times


def binary_metrics(is_real: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """Accuracy, FPR and FNR of ``score >= 0.5`` and the ROC AUC of ``score`` (positive = real)."""
    rates = rates_at(is_real, score, 0.5)
    return {
        "accuracy": float(accuracy_score(is_real, score >= 0.5)),
        "fpr": rates["fpr"],
        "fnr": rates["fnr"],
        "auc": float(roc_auc_score(is_real, score)),
    }


@torch.no_grad()
def scores(model: RealBogusModel, stamps: np.ndarray, batch: int = 500) -> np.ndarray:
    """Calibrated real-bogus scores ``(N,)`` of raw stamps ``(N, C, H, W)`` (the model normalises them)."""
    out = [
        model.real_score(model.probabilities(torch.from_numpy(stamps[i : i + batch])))
        for i in range(0, len(stamps), batch)
    ]
    return torch.cat(out).numpy()


def errors_by_kind(kind: np.ndarray, is_real: np.ndarray, called: np.ndarray) -> dict[str, str]:
    """``kind -> "wrong/total"`` for the test stamps."""
    table = pd.DataFrame({"kind": kind, "wrong": called != is_real})
    grouped = table.groupby("kind")["wrong"].agg(["sum", "count"])
    return {k: f"{int(r['sum'])}/{int(r['count'])}" for k, r in grouped.iterrows()}


def hits_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    store, prep = labelled_store(args.work, "hits", args.n_hits, args.seed)
    out = args.work / "model_hits"
    shutil.rmtree(out, ignore_errors=True)
    load_before = os.getloadavg()
    result = train_model(
        "realbogus",
        [store],
        out,
        preset="hits",
        max_epochs=1000,
        max_time_s=args.minutes * 60,
        seed=args.seed,
        data_overrides={"fractions": FRACTIONS},
        model_overrides={"threshold_fpr": args.fpr},
    )
    card = json.loads(Path(result.model_card).read_text())
    model, _ = load_checkpoint(result.checkpoint)
    with open_store(store) as s:
        stamps, is_real = s.stamps(), s.labels("real").astype(bool)
        catalog = s.catalog(columns=["object_id", "kind"])
    split = load_splits(out / "splits.csv", catalog["object_id"].to_numpy())
    train, test = split == "train", split == "test"
    cnn_score = scores(model, stamps[test])
    cnn = {
        "from_trainer": {k.split("/")[1]: v for k, v in result.metrics.items() if k.startswith("test/")},
        **binary_metrics(is_real[test], cnn_score),
        "threshold": card.get("threshold"),
        "threshold_val_fpr": card.get("threshold_val_fpr"),
        "threshold_test_fpr": card.get("threshold_test_fpr"),
        "threshold_test_fnr": card.get("threshold_test_fnr"),
        "temperature": card.get("temperature"),
        "ece_val_before": card.get("ece_val_before"),
        "ece_test": card.get("ece_test"),
        "epochs": card["epochs"],
        "training_seconds": card["fit_seconds"],
        "errors_by_kind": errors_by_kind(catalog["kind"].to_numpy()[test], is_real[test], cnn_score >= 0.5),
    }
    pixels = model.net.normalise(torch.from_numpy(stamps)).flatten(1).numpy()
    t0 = time.perf_counter()
    forest = RandomForestClassifier(
        n_estimators=args.rf_trees, n_jobs=args.threads, random_state=args.seed, min_samples_leaf=1
    )
    forest.fit(pixels[train], is_real[train])
    rf_seconds = time.perf_counter() - t0
    rf_score = forest.predict_proba(pixels[test])[:, 1]
    rf = {
        **binary_metrics(is_real[test], rf_score),
        "trees": args.rf_trees,
        "training_seconds": round(rf_seconds, 1),
        "errors_by_kind": errors_by_kind(catalog["kind"].to_numpy()[test], is_real[test], rf_score >= 0.5),
    }
    return {
        "store": str(store),
        "n": len(split),
        "split": {name: int(np.sum(split == name)) for name in ("train", "val", "test")},
        "preparation_s": prep,
        "load_average_before_training": [round(v, 2) for v in load_before],
        "load_average_after_training": [round(v, 2) for v in os.getloadavg()],
        "cnn": cnn,
        "random_forest": rf,
        "cnn_at_least_rf_accuracy": cnn["accuracy"] >= rf["accuracy"],
    }


def set_c_files(samples: Path, set_c: Path) -> tuple[list[Path], pd.DataFrame]:
    """The shipped triplets of ZTF alert set C (its packets' candids; all with a DRB when set C is absent)."""
    table = pd.read_csv(samples / "alerts.csv", dtype={"CANDID": str})
    if set_c.is_dir():
        candids = {p.stem for p in set_c.glob("*.avro")}
        table = table[table["CANDID"].isin(candids)]
    table = table[table["DRB"].notna()]
    return [samples / name for name in table["file"]], table


def ztf_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    store, prep = labelled_store(args.work, "ztf", args.n_ztf, args.seed)
    out = args.work / "model_ztf"
    shutil.rmtree(out, ignore_errors=True)
    result = train_model(
        "realbogus",
        [store],
        out,
        preset="ztf",
        max_epochs=1000,
        max_time_s=args.ztf_minutes * 60,
        seed=args.seed,
        model_overrides=json.loads(args.ztf_overrides),
    )
    card = json.loads(Path(result.model_card).read_text())
    model, _ = load_checkpoint(result.checkpoint)
    files, table = set_c_files(args.ztf_samples, args.set_c)
    real_store = args.work / "ztf_set_c.h5"
    report = ingest_fits(
        files,
        real_store,
        extensions=["SCIENCE", "TEMPLATE", "DIFFERENCE"],
        stamp_shape=(63, 63),
        size_policy="pad",
        header_keys=["CANDID", "DRB"],
        rejects_path=real_store.with_suffix(".rejects.csv"),
    )
    with open_store(real_store) as s:
        stamps = s.stamps()
        catalog = s.catalog(columns=["candid", "drb"])
    drb = catalog["drb"].astype(float).to_numpy()
    score = scores(model, stamps)
    labels = drb > 0.5
    rb = table.set_index("CANDID").loc[catalog["candid"], "RB"].to_numpy(dtype=float)
    per_alert = pd.DataFrame({"candid": catalog["candid"], "drb": drb, "rb": rb, "score": score})
    per_alert.to_csv(args.work / "ztf_real_scores.csv", index=False)
    return {
        "simulated_store": str(store),
        "preparation_s": prep,
        "test_on_simulated": {k.split("/")[1]: v for k, v in result.metrics.items() if k.startswith("test/")},
        "epochs": card["epochs"],
        "training_seconds": card["fit_seconds"],
        "real_alerts": {
            "set": str(args.set_c if args.set_c.is_dir() else args.ztf_samples),
            "ingested": report.n_ingested,
            "rejected": report.n_rejected,
            "drb_gt_0.5": int(labels.sum()),
            "auc_vs_drb_gt_0.5": float(roc_auc_score(labels, score)),
            "auc_vs_rb_gt_0.5": float(roc_auc_score(rb > 0.5, score))
            if 0 < (rb > 0.5).sum() < len(rb)
            else None,
            "spearman_vs_drb": float(spearmanr(score, drb).statistic),
            "auc_drb_vs_rb_gt_0.5": float(roc_auc_score(rb > 0.5, drb))
            if 0 < (rb > 0.5).sum() < len(rb)
            else None,
            "scores_csv": str(args.work / "ztf_real_scores.csv"),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench_realbogus")
    parser.add_argument("--n-hits", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=10.0, help="fitting time limit of the hits model")
    parser.add_argument("--fpr", type=float, default=0.01, help="false positive rate of the card's threshold")
    parser.add_argument("--rf-trees", type=int, default=300)
    parser.add_argument("--n-ztf", type=int, default=6000)
    parser.add_argument("--ztf-minutes", type=float, default=10.0)
    parser.add_argument("--ztf-overrides", default="{}", help="JSON settings for the ztf preset")
    parser.add_argument("--ztf-samples", type=Path, default=ZTF_SAMPLES)
    parser.add_argument(
        "--set-c", type=Path, default=SET_C, help="folder of the set-C packets (selects candids)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (and forest jobs)")
    parser.add_argument("--skip-hits", action="store_true")
    parser.add_argument("--skip-ztf", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform()},
        "seed": args.seed,
    }
    if not args.skip_hits:
        out["hits"] = hits_benchmark(args)
    if not args.skip_ztf:
        out["ztf"] = ztf_benchmark(args)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
