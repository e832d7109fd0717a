"""Ship a row of the real-galaxy benchmark (benchmarks/morphology_real.py ``--ship DIR``) as a model of the
package (:mod:`models.pretrained`): its checkpoint and card, the card completed with the run's real-data
metrics (test RMSE over the 37 answers and per question on the benchmark's test galaxies, which no row
trained, validated or chose anything on; the ridge and training-mean rows beside it) and the command that
made it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from models.checkpoints import card_path
from models.pretrained import CARD_NAME, CHECKPOINT_NAME


def real_data_metrics(result: dict[str, Any], row: str) -> dict[str, Any]:
    """The card's ``real_data_metrics`` of ``row`` from a benchmark result (``rows``, ``split``)."""
    by = {r["row"]: r for r in result["rows"]}
    facts = by[row]
    metrics: dict[str, Any] = {
        "data": "real Kaggle Galaxy Zoo galaxies (SDSS gri JPEGs) of the project's dev set, test split by "
        "GalaxyID: never trained, validated or tuned on",
        "n_test": result["split"]["n_test"],
        "split_seed": result["split"]["seed"],
        "rmse_37_answers": facts["rmse"],
        "rmse_per_question": facts.get("rmse_per_question"),
        "training_cpu_seconds": facts["cpu_seconds"],
        "command": result["command"],
        "git_commit": result.get("git_commit"),
    }
    for baseline in ("ridge", "training_mean"):
        if baseline in by:
            metrics[f"rmse_{baseline}"] = by[baseline]["rmse"]
    if result.get("pretrained"):
        metrics["pretrained_on"] = {k: result["pretrained"][k] for k in ("simulated", "style", "cpu_seconds")}
    return metrics


def ship_row(result: dict[str, Any], row: str, out: Path, run: Path) -> dict[str, Any]:
    """Copy ``run``'s checkpoint and card to ``out`` (``model.ckpt``, ``model_card.json``) with
    ``real_data_metrics`` and ``training_command`` added; returns what was written."""
    checkpoint = run / CHECKPOINT_NAME
    card = json.loads(card_path(checkpoint).read_text())
    card["real_data_metrics"] = real_data_metrics(result, row)
    card["training_command"] = result["command"]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, out / CHECKPOINT_NAME)
    (out / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return {
        "row": row,
        "checkpoint": str(out / CHECKPOINT_NAME),
        "rmse": card["real_data_metrics"]["rmse_37_answers"],
    }
