"""The demo's real-bogus models on real ZTF alerts that never touched their training.

The demo's headline "97 real ZTF alerts" are the shipped triplets (``data_catalogs/samples/ztf_triplets``,
from sets A-C of the shared alerts), whose measured noise, background and PSF set the simulator's ZTF
conditions (:mod:`pipeline.simulate.transients.measured`): they shaped the simulated training set, so they are
not a held-out test. This script scores demo checkpoints on the alerts of ``F_more_real`` whose night and
object are not in sets A-C (nothing of them reached the simulator, the training, the calibration or the
threshold, which the demo chooses on simulated validation stamps), labelled ``drb >= 0.5`` (else ``rb``), and
prints :func:`benchmarks.realbogus_real_eval.held_out_metrics` per model as JSON.

Usage: python benchmarks/demo_real_alerts.py --model NAME=CHECKPOINT [--model NAME=CHECKPOINT ...]
   (e.g. after=runs/demo/checkpoints/realbogus/model.ckpt, a ``python -m flows.demo`` run)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from benchmarks.realbogus_real import score_held_out
from benchmarks.realbogus_real_data import alert_store, decode_alerts, load_manifest
from benchmarks.realbogus_real_eval import held_out_metrics

#: Sets whose alerts include the demo's 97 shipped triplets (the simulator's ZTF calibration).
CALIBRATION_SETS = ("A_", "B_", "C_")


def held_out_manifest() -> tuple[pd.DataFrame, dict[str, int]]:
    """The manifest's ZTF alerts outside sets A-C, minus those on a night or of an object of sets A-C."""
    table, _ = load_manifest()
    calibration = table["set"].str.startswith(CALIBRATION_SETS)
    near = table["night"].isin(table.loc[calibration, "night"]) | table["objectId"].isin(
        table.loc[calibration, "objectId"]
    )
    held = table[~calibration & ~near].reset_index(drop=True)
    counts = {
        "calibration_sets": int(calibration.sum()),
        "same_night_or_object": int((~calibration & near).sum()),
    }
    return held, {**counts, "held_out": len(held)}


def run(models: dict[str, Path], threads: int = 1) -> dict[str, Any]:
    """Every model's numbers on the held-out alerts (module docstring)."""
    held, counts = held_out_manifest()
    real = decode_alerts(held)
    result: dict[str, Any] = {
        "benchmark": "demo_real_alerts",
        "alerts": {**counts, **real.counts},
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="demo_real_alerts_") as tmp:
        store = Path(tmp) / "held_out.h5"
        alert_store(real.alerts, real.table["label"].tolist(), store)
        for name, ckpt in models.items():
            scored, card = score_held_out(ckpt, store, Path(tmp) / f"{name}.parquet", threads)
            table = real.table.merge(scored, on="candid", how="inner", validate="one_to_one")
            table["called"] = table["score"] >= float(card.get("threshold", 0.5))
            result["models"][name] = {
                "checkpoint": str(ckpt),
                "preset": card.get("architecture"),
                "steps": card.get("steps"),
                "nights": int(table["night"].nunique()),
                **held_out_metrics(table),
            }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=CHECKPOINT (repeatable)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    models = dict(item.split("=", 1) for item in args.model)
    print(json.dumps(run({k: Path(v) for k, v in models.items()}, args.threads), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
