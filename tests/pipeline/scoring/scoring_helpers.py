"""Tiny real inputs for the scoring and report tests: stamp stores written by StampStoreWriter, small
seeded torch models, and model cards as ``models.checkpoints`` writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, QUESTION_SLICES, cumulative_from_conditional
from pipeline.store import StampStoreWriter

RB_CHANNELS = ["template", "science", "difference"]
GZ_CHANNELS = ["g", "r", "i"]


def ztf_like_ids(n: int) -> dict[str, np.ndarray]:
    """Survey ids as ZTF has them: objectId strings of varying length (longest last), 19-digit candids."""
    object_ids = np.array([f"ZTF18{'a' * (1 + i * 7 // max(n - 1, 1))}{i:03d}" for i in range(n)])
    return {"objectId": object_ids, "candid": np.arange(n, dtype=np.int64) + 1_095_578_115_815_010_001}


def write_rb_store(path: Path, n: int = 70, seed: int = 0, masked_rows=(3, 40)) -> Path:
    masked_rows = [r for r in masked_rows if r < n]
    """A real-bogus store: n stamps of 3x21x21 (template, science, difference) with a fake point source in
    the 'real' ones, some pixels masked in ``masked_rows``, ``/labels/real``, ids and positions."""
    rng = np.random.default_rng(seed)
    stamps = rng.normal(0, 1, (n, 3, 21, 21)).astype(np.float32)
    real = (np.arange(n) % 2).astype(np.int8)
    yy, xx = np.mgrid[:21, :21]
    psf = np.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 4.0).astype(np.float32)
    stamps[real == 1, 1:] += 6 * psf
    mask = np.zeros(stamps.shape, bool)
    for row in masked_rows:
        mask[row, :, :3, :] = True  # a CCD edge through the bottom rows of all channels
    stamps[mask] = 0.0
    catalog = {
        "object_id": [f"obj{i // 2}" for i in range(n)],
        "source": [f"alert{i}.avro" for i in range(n)],
        "ra": rng.uniform(0, 360, n),
        "dec": rng.uniform(-30, 60, n),
        **ztf_like_ids(n),
    }
    with StampStoreWriter(path, RB_CHANNELS, (21, 21), chunk_rows=16) as writer:
        writer.append(stamps, mask, catalog, {"real": real})
    return path


def gz_fractions(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 37)`` valid Kaggle cumulative fractions from random per-question shares."""
    rng = np.random.default_rng(seed)
    cond = rng.gamma(0.5, size=(n, 37))
    for sl in QUESTION_SLICES.values():
        cond[:, sl] /= cond[:, sl].sum(axis=1, keepdims=True)
    return cumulative_from_conditional(cond).astype(np.float32)


def write_gz_store(path: Path, n: int = 30, size: int = 24, seed: int = 1) -> Path:
    """A morphology store: n stamps of 3 x size x size, ``/labels/gz_answers``, GalaxyID ids."""
    rng = np.random.default_rng(seed)
    stamps = rng.gamma(2.0, 1.0, (n, 3, size, size)).astype(np.float32)
    catalog = {
        "object_id": [f"gal{i}" for i in range(n)],
        "source": [f"{100000 + i}.jpg" for i in range(n)],
        "GalaxyID": np.arange(n, dtype=np.int64) + 100000,
    }
    with StampStoreWriter(path, GZ_CHANNELS, (size, size), chunk_rows=8) as writer:
        writer.append(stamps, None, catalog, {"gz_answers": gz_fractions(n, seed)})
    return path


def rb_model(in_channels: int = 4, seed: int = 0) -> nn.Module:
    """A small CNN giving (B, 2) class probabilities for 21x21 stamps."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3),
        nn.LeakyReLU(0.01),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(64, 2),
        nn.Softmax(dim=1),
    ).eval()


def rb_card(**changes) -> dict:
    """A real-bogus model card for :func:`rb_model` on :func:`write_rb_store` stores (Deep-HiTS inputs)."""
    card = {
        "task": "realbogus",
        "model_name": "tiny-rb",
        "model_version": "0.0.1+test",
        "architecture": "tiny",
        "channels": list(RB_CHANNELS),
        "stamp_shape": [21, 21],
        "input_channels": 4,
        "normalisation": "deep_hits",
        "output_names": ["bogus", "real"],
        "threshold": 0.5,
        "weights_sha256": "0" * 64,
        "training_data_sha256": "1" * 64,
        "data_config": {"preprocess": "deep_hits", "fill": "zero", "keep_mask": "none", "batch_size": 32},
    }
    card.update(changes)
    return card


def gz_model(seed: int = 0) -> nn.Module:
    """A small model giving (B, 37) fractions in [0, 1] for stamps of any size."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(3 * 16, 37), nn.Sigmoid()).eval()


def gz_card(size: int = 24, **changes) -> dict:
    """A morphology model card for :func:`gz_model` on :func:`write_gz_store` stores."""
    card = {
        "task": "morphology",
        "model_name": "tiny-gz",
        "model_version": "0.0.2+test",
        "architecture": "tiny",
        "channels": list(GZ_CHANNELS),
        "stamp_shape": [size, size],
        "output_names": list(ANSWER_COLUMNS),
        "weights_sha256": "2" * 64,
        "data_config": {"preprocess": "minmax", "fill": "zero", "keep_mask": "none"},
    }
    card.update(changes)
    return card
