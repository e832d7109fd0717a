"""Helpers for the alert tests: the real alert samples, and a real ``ztf`` real-bogus checkpoint (untrained
weights, seeded) written by ``models.checkpoints.save_checkpoint``."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from data_catalogs.alert_schemas import CHANNELS
from tests.conftest import ZTF_ALERTS

#: The four sample sets copied from shared/ztf_alerts (folder structure kept).
ZTF_SETS = ("A_ztf-avro-alert", "B_fink-broker_datasim_2018-11-29", "C_fink-broker_local_2020-01-01")
RUBIN_SET = "E_rubin_lsstcam_2025-09-05_bonus"


def manifest(name: str = "manifest.csv") -> list[dict[str, str]]:
    """Rows of ``tests/data/ztf_alerts/manifest.csv`` (or ``manifest_rubin.csv``)."""
    with open(ZTF_ALERTS / name, newline="") as fh:
        return list(csv.DictReader(fh))


def ztf_sample_files() -> list[Path]:
    """Every real ZTF packet of the sample sets (97 files)."""
    return [ZTF_ALERTS / row["file"] for row in manifest()]


def rubin_sample_files() -> list[Path]:
    """Every real Rubin packet (10 files)."""
    return [ZTF_ALERTS / row["file"] for row in manifest("manifest_rubin.csv")]


def write_ztf_checkpoint(path: Path, seed: int = 0, **card_changes) -> Path:
    """A ``ztf``-preset RealBogusModel with seeded untrained weights, saved as a real checkpoint + card."""
    from models.checkpoints import save_checkpoint
    from models.realbogus import RealBogusModel

    torch.manual_seed(seed)
    model = RealBogusModel("ztf").eval()
    card = {
        "task": "realbogus",
        "model_name": "stampflow-realbogus-ztf",
        "model_version": f"0.0.0+untrained.s{seed}",
        "channels": list(CHANNELS),
        "stamp_shape": [63, 63],
        "threshold": 0.5,
        "seed": seed,
        "data_config": {"fill": "zero", "keep_mask": "none"},
        **model.card_fields(),
        **card_changes,
    }
    return save_checkpoint(model, path, card)
