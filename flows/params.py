"""Typed parameters of the flows (pydantic): what the Prefect UI shows and validates, what a deployment
stores, and what the ``stampflow`` commands fill in from their options.

The ingest sources form one tagged union (:data:`IngestSource`, field ``kind``): ``fits`` (FITS stamp
files and folders), ``alerts`` (alert packets), ``labelled`` (a folder of labelled triplets and
``labels.csv``), ``cutouts`` (an image and a catalog of positions), ``galaxy_zoo`` (a Galaxy Zoo catalog
and its images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

Compression = Literal["lzf", "gzip", "none"]
SizePolicy = Literal["reject", "pad"]


class FitsSource(BaseModel):
    """FITS stamp files or folders (searched recursively), one stamp per file."""

    kind: Literal["fits"] = "fits"
    inputs: list[Path] = Field(description="FITS files and/or folders")
    extensions: list[str] | None = Field(None, description="EXTNAMEs to read as channels, in order")
    stamp_shape: tuple[int, int] | None = Field(None, description="(H, W); default: the first stamp's")
    size_policy: SizePolicy = "reject"
    header_keys: list[str] = Field(default_factory=list, description="header keys copied to the catalog")
    pixel_scale_arcsec: float | None = None


class AlertSource(BaseModel):
    """Alert packets (Avro files or folders of them): science, template and difference cutouts."""

    kind: Literal["alerts"] = "alerts"
    inputs: list[Path] = Field(description="alert packet files and/or folders")
    stamp_shape: tuple[int, int] = (63, 63)
    size_policy: SizePolicy = Field("pad", description="CCD-edge stamps: pad and mask (default) or reject")


class LabelledSource(BaseModel):
    """A folder of labelled FITS triplets and its ``labels.csv`` (e.g. ``stampflow simulate transients``)."""

    kind: Literal["labelled"] = "labelled"
    folder: Path
    extensions: list[str] | None = None
    labels: list[str] = Field(default_factory=lambda: ["real"])
    labels_csv: Path | None = None


class CutoutSource(BaseModel):
    """Stamps cut from a large FITS image at the positions of a catalog."""

    kind: Literal["cutouts"] = "cutouts"
    image: Path
    catalog: Path
    size: int = Field(ge=1)
    ra_col: str | None = "ra"
    dec_col: str | None = "dec"
    x_col: str | None = None
    y_col: str | None = None
    id_col: str | None = None
    hdu: int | str | None = None


class GalaxyZooSource(BaseModel):
    """A Galaxy Zoo label catalog (Kaggle, GZ2 or GZ DECaLS) and the folder of its images."""

    kind: Literal["galaxy_zoo"] = "galaxy_zoo"
    catalog: Path
    images_dir: Path
    format: Literal["kaggle", "gz2", "decals"] = "kaggle"
    estimate: str | None = None
    id_column: str | None = None
    file_column: str | None = None
    tol: float | None = None
    stamp_shape: tuple[int, int] | None = None
    size_policy: SizePolicy = "reject"


IngestSource = Annotated[
    FitsSource | AlertSource | LabelledSource | CutoutSource | GalaxyZooSource,
    Field(discriminator="kind"),
]

#: Kinds whose inputs are many files, ingested in chunks of files.
CHUNKED_KINDS = ("fits", "alerts")


def source_paths(source: BaseModel) -> list[Path]:
    """Every input path a source names (files and folders), for content keys and the manifest."""
    if isinstance(source, (FitsSource, AlertSource)):
        return list(source.inputs)
    if isinstance(source, LabelledSource):
        return [source.folder] + ([source.labels_csv] if source.labels_csv else [])
    if isinstance(source, CutoutSource):
        return [source.image, source.catalog]
    if isinstance(source, GalaxyZooSource):
        return [source.catalog, source.images_dir]
    raise TypeError(f"not an ingest source: {source!r}")


class TrainParams(BaseModel):
    """Options of ``python -m models.train`` (see ``models/train_options.py``)."""

    task: Literal["morphology", "realbogus"]
    stores: list[Path] = Field(min_length=1)
    out: Path
    preset: str
    max_epochs: int = 10
    max_minutes: float | None = None
    batch_size: int | None = None
    seed: int = 0
    accelerator: str = "cpu"
    devices: str = "1"
    num_nodes: int = 1
    strategy: str = "auto"
    threads: int | None = None
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
            "--max-minutes": self.max_minutes,
            "--batch-size": self.batch_size,
            "--threads": self.threads,
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
    compress: bool = True
    workers: int | None = None
    chunk_size: int | None = None
