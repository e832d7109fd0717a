"""Typed parameters of the flows (pydantic): what the Prefect UI shows and validates, what a deployment
stores, and what the ``stampflow`` commands fill in from their options.

The ingest sources (:data:`IngestSource`, a tagged union on ``kind``: ``fits``, ``alerts``, ``labelled``,
``cutouts``, ``galaxy_zoo``) are defined once, with the readers, in :mod:`pipeline.ingest.sources`;
they are re-exported here with the other flow parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from pipeline.ingest import (
    AlertSource,
    CutoutSource,
    FitsSource,
    GalaxyZooSource,
    IngestSource,
    LabelledSource,
)

Compression = Literal["lzf", "gzip", "none"]

__all__ = [
    "AlertSource",
    "Compression",
    "CutoutSource",
    "FitsSource",
    "GalaxyZooSource",
    "IngestSource",
    "LabelledSource",
    "SimulateParams",
    "TrainParams",
]


class TrainParams(BaseModel):
    """Options of ``python -m models.train`` (see ``models/train_options.py``)."""

    task: Literal["morphology", "realbogus"]
    stores: list[Path] = Field(min_length=1)
    out: Path
    preset: str
    max_epochs: int = 10
    max_steps: int | None = Field(None, ge=1, description="optimiser-step limit (reproducible)")
    max_minutes: float | None = None
    batch_size: int | None = None
    seed: int = 0
    accelerator: str = "cpu"
    devices: str = "1"
    num_nodes: int = 1
    strategy: str = "auto"
    threads: int | None = None
    init_from: Path | None = Field(
        None, description="fine-tune from this checkpoint (same task, preset, channels, stamp size)"
    )
    extra_args: list[str] = Field(
        default_factory=list, description="further `python -m models.train` options, verbatim"
    )

    def argv(self) -> list[str]:
        """The ``python -m models.train`` arguments."""
        args = [self.task]
        for store in self.stores:
            args += ["--store", str(store)]
        args += ["--out", str(self.out), "--preset", self.preset, "--max-epochs", str(self.max_epochs)]
        optional = {
            "--max-steps": self.max_steps,
            "--max-minutes": self.max_minutes,
            "--batch-size": self.batch_size,
            "--threads": self.threads,
            "--init-from": self.init_from,
        }
        args += [x for k, v in optional.items() if v is not None for x in (k, str(v))]
        args += ["--seed", str(self.seed), "--accelerator", self.accelerator, "--devices", self.devices]
        args += ["--num-nodes", str(self.num_nodes), "--strategy", self.strategy]
        return args + list(self.extra_args)


class SimulateParams(BaseModel):
    """Options of ``stampflow simulate``."""

    what: Literal["galaxies", "transients"]
    n: int = Field(ge=1)
    out: Path
    seed: int = Field(0, ge=0)
    survey: Literal["hits", "ztf"] = "hits"
    size: int = 69
    pixel_scale: float = 0.396
    jpeg: bool = False
    style: Literal["fits", "sdss-jpeg"] = "fits"  # galaxies: FITS cubes, or JPEGs like the Kaggle images
    compress: bool = True
    workers: int | None = None
    chunk_size: int | None = None
    backgrounds: list[Path] | None = None  # transients: real alert files/folders or ZTF stores to inject into
    labels: Path | None = None  # candid,real classes of the background alerts
    real_fraction: float = Field(0.5, ge=0.0, le=1.0)  # rows made on backgrounds, when there are any
