"""Recalibrating a real-bogus checkpoint on a labelled real set: a new model version with the same network.

A model trained on simulations chooses its card's ``threshold`` at ``threshold_fpr`` on simulated
validation stamps; on real alerts the scores are distributed differently, so a broker with its own labels
refits the two numbers that turn scores into decisions, and nothing else:

- the temperature ``T`` of ``softmax(logits / T)`` that minimises the negative log-likelihood of the labels
  (:func:`models.realbogus_metrics.fit_temperature`), and
- the operating threshold at a target false positive rate of the recalibrated scores
  (:func:`pipeline.evaluation.threshold_at_fpr`, the one threshold rule).

:func:`calibrate_checkpoint` reads the labelled store, scores it exactly as scoring does (the card's batch
preparation, :func:`pipeline.scoring.scoring_prep`), fits both, and writes a NEW folder with ``model.ckpt``
(the same weights, the new ``temperature`` buffer; loads with ``weights_only=True``) and ``model_card.json``
naming the parent (``calibrated_from``), the data (its ``source_sha256`` and file sha256, counts), the rule
and the metrics before and after (:func:`operating_point`: NLL, ECE, ROC AUC, FPR/FNR at the threshold).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn

from models.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from models.realbogus_metrics import ece, fit_temperature, nll
from pipeline.evaluation import rates_at, threshold_at_fpr
from pipeline.scoring import StampBatch, plan_store_inputs, scoring_prep
from pipeline.store import open_store, sha256_file

#: Card fields of the parent's calibration at training time (on its validation split), moved under
#: ``calibrated_from.training_calibration`` in the new card: they no longer describe its temperature and threshold.
TRAINING_CALIBRATION_FIELDS = (
    "nll_val_before",
    "nll_val",
    "ece_val_before",
    "ece_val",
    "ece_test",
    "threshold_val_fpr",
    "threshold_val_tpr",
    "threshold_test_fpr",
    "threshold_test_fnr",
)
#: Stamps scored at once while reading the calibration store.
CHUNK_ROWS = 256


@torch.no_grad()
def store_logits(
    module: nn.Module, card: Mapping[str, Any], store_path: str | os.PathLike, labels_column: str
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Uncalibrated logits and labels of the labelled rows of a stamp store, and what the data are.

    Stamps are prepared as scoring prepares them (the card's ``data_config``); labels outside
    ``[0, K)`` (e.g. -1, unknown) are left out and counted.

    Returns:
        ``logits (M, K)`` float32, ``y (M,)`` int64 class indices, and ``data``: ``store``,
        ``labels_column``, ``source_sha256`` (the store's inputs), ``file_sha256`` (the store file),
        ``n_rows`` = ``n_labelled`` + ``n_unlabelled``, ``n_per_class`` (by output name).

    Raises:
        ModelInputMismatch: the store's channels, stamp size or frame are not the model's.
        KeyError: the store has no ``/labels/<labels_column>``.
    """
    names = [str(n) for n in card.get("output_names", [])]
    prep = scoring_prep(module, card)
    module.eval()
    with open_store(store_path) as store:
        plan = plan_store_inputs(card, store)  # as scoring: channels by name, the card's frame
        labels = np.asarray(store.labels(labels_column)).astype(np.int64)
        chunks = []
        for _, stored, stored_mask in store.iter_chunks(CHUNK_ROWS):
            batch = plan.apply(StampBatch(stored, stored_mask))
            stamps, mask = batch.stamps, batch.mask
            x = prep(
                torch.from_numpy(np.ascontiguousarray(stamps, np.float32)), mask if prep.needs_mask else None
            )
            chunks.append(module(x).float())
        source_sha256 = str(store.attrs.get("source_sha256", ""))
    logits = torch.cat(chunks) if chunks else torch.zeros(0, len(names))
    keep = (labels >= 0) & (labels < len(names))
    y = torch.from_numpy(labels[keep])
    data = {
        "store": str(store_path),
        "labels_column": labels_column,
        "source_sha256": source_sha256,
        "file_sha256": sha256_file(store_path),
        "n_rows": len(labels),
        "n_labelled": int(keep.sum()),
        "n_unlabelled": int((~keep).sum()),
        "n_per_class": {name: int((labels[keep] == i).sum()) for i, name in enumerate(names)},
    }
    return logits[torch.from_numpy(keep)], y, data


def operating_point(
    logits: Tensor, y: Tensor, bogus_index: int, temperature: float, threshold: float, bins: int = 15
) -> dict[str, float]:
    """How a temperature and a threshold do on labelled logits ``(M, K)`` / ``y (M,)``.

    Returns:
        ``temperature``, ``threshold``, ``nll`` (nats), ``ece`` (top-label, ``bins`` bins), ``roc_auc`` of
        ``rb = 1 - P(bogus)``, and ``fpr`` / ``fnr`` of ``rb >= threshold`` (positive = real).
    """
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    rb = (1.0 - probs[:, bogus_index]).numpy()
    is_real = (y != bogus_index).numpy()
    return {
        "temperature": float(temperature),
        "threshold": float(threshold),
        "nll": nll(logits, y, temperature),
        "ece": ece(logits, y, temperature, bins),
        "roc_auc": float(roc_auc_score(is_real, rb)),
        **rates_at(is_real, rb, threshold),
    }


def fit_calibration(
    logits: Tensor, y: Tensor, bogus_index: int, fpr: float, before: tuple[float, float], bins: int = 15
) -> dict[str, Any]:
    """Fit the temperature and the threshold at ``fpr`` on labelled logits; the metrics before and after.

    Args:
        logits: ``(M, K)`` uncalibrated logits; y: ``(M,)`` class indices, real and bogus both present.
        bogus_index: the output index of the bogus class (``rb = 1 - P(bogus)``).
        fpr: the target false positive rate of the threshold rule, in (0, 1).
        before: the model's current ``(temperature, threshold)``.

    Returns:
        ``temperature``, ``threshold``, ``rule`` (``threshold_at_fpr`` and its ``fpr``), ``before`` and
        ``after`` (:func:`operating_point`).
    """
    temperature = fit_temperature(logits, y)
    rb = (1.0 - torch.softmax(logits.double() / temperature, dim=-1)[:, bogus_index]).numpy()
    choice = threshold_at_fpr((y != bogus_index).numpy(), rb, fpr)
    return {
        "temperature": temperature,
        "threshold": choice["threshold"],
        "rule": {"rule": "threshold_at_fpr", "fpr": float(fpr)},
        "before": operating_point(logits, y, bogus_index, *before, bins),
        "after": operating_point(logits, y, bogus_index, temperature, choice["threshold"], bins),
    }


def calibrated_card(
    card: Mapping[str, Any], parent: str | os.PathLike, data: dict[str, Any], fit: dict[str, Any]
) -> dict[str, Any]:
    """The new version's card: the parent's, with the new ``temperature``, ``threshold`` and ``threshold_fpr``,
    ``calibration`` (data, rule, before, after) and ``calibrated_from`` (the parent and its training-time
    calibration fields); the version gets ``.cal<first 8 hex of the data's file sha256>``."""
    new = {k: v for k, v in card.items() if k not in (*TRAINING_CALIBRATION_FIELDS, "created_by")}
    new["calibrated_from"] = {
        "checkpoint": str(parent),
        "model_name": card.get("model_name"),
        "model_version": card.get("model_version"),
        "weights_sha256": card.get("weights_sha256"),
        "training_calibration": {k: card[k] for k in TRAINING_CALIBRATION_FIELDS if k in card},
    }
    new["model_version"] = f"{card.get('model_version', '')}.cal{data['file_sha256'][:8]}"
    new["temperature"], new["threshold"] = fit["temperature"], fit["threshold"]
    new["threshold_fpr"] = fit["rule"]["fpr"]
    new["calibration"] = {"data": data, **{k: fit[k] for k in ("rule", "before", "after")}}
    return new


def calibrate_checkpoint(
    ckpt: str | os.PathLike,
    store: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    labels_column: str | None = None,
    fpr: float | None = None,
) -> dict[str, Any]:
    """Recalibrate a real-bogus checkpoint on a labelled store into ``out_dir/model.ckpt`` + card.

    Args:
        ckpt: the model to calibrate (its folder is never written).
        store: a stamp store with the model's channels and stamp size and ``/labels/<labels_column>``
            holding class indices (``/labels/real``: 1 real, 0 bogus).
        out_dir: the new version's folder (not the parent's).
        labels_column: default the model's training target (``real``).
        fpr: the threshold rule's target false positive rate; default the card's ``threshold_fpr``.

    Returns:
        ``checkpoint``, ``model_card``, ``model_name``, ``model_version``, ``parent``, then the card's
        ``calibration`` (``data``, ``rule``, ``before``, ``after``).

    Raises:
        CheckpointError: not a real-bogus model, ``out_dir`` is the parent's folder, or the labelled rows
            lack real or bogus examples; ModelInputMismatch / KeyError: the store does not fit.
    """
    out = Path(out_dir) / "model.ckpt"
    if out.resolve() == Path(ckpt).resolve():
        raise CheckpointError(f"--out {out_dir} is the folder of {ckpt}: a calibration is a new version")
    module, card = load_checkpoint(ckpt)
    if card.get("task") != "realbogus" or not isinstance(getattr(module, "temperature", None), Tensor):
        raise CheckpointError(f"{ckpt}: a {card.get('task')!r} model; calibration is for real-bogus models")
    bogus_index = int(module.bogus_index)
    labels_column = labels_column or str(module.target)
    logits, y, data = store_logits(module, card, store, labels_column)
    n_real = int((y != bogus_index).sum())
    if n_real == 0 or n_real == len(y):
        raise CheckpointError(
            f"store {store} has {n_real} real and {len(y) - n_real} bogus labelled rows in "
            f"/labels/{labels_column}: calibration needs both"
        )
    rule_fpr = float(fpr if fpr is not None else card.get("threshold_fpr", 0.01))
    before = (float(module.temperature), float(card.get("threshold", 0.5)))
    fit = fit_calibration(logits, y, bogus_index, rule_fpr, before, int(module.config.ece_bins))
    new_card = calibrated_card(card, ckpt, data, fit)
    module.temperature.fill_(fit["temperature"])
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_checkpoint(module, out, new_card)
    return {
        "checkpoint": str(out),
        "model_card": str(out.with_name("model_card.json")),
        "model_name": new_card["model_name"],
        "model_version": new_card["model_version"],
        "parent": new_card["calibrated_from"]["model_version"],
        **new_card["calibration"],
    }
