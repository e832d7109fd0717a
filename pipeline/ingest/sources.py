"""The options of each ingest source, defined once (pydantic): what a reader takes, what the Prefect UI
shows and validates, what a deployment stores, and what the ``stampflow`` ingest commands generate their
options from (field name, type, default; the description is the option's help).

The sources form one tagged union (:data:`IngestSource`, field ``kind``): ``fits`` (FITS stamp files and
folders), ``alerts`` (alert packets), ``labelled`` (a folder of labelled triplets and ``labels.csv``),
``cutouts`` (an image and a catalog of positions), ``galaxy_zoo`` (a Galaxy Zoo catalog and its images).
This module imports nothing heavy, so that the command line starts fast; the readers live in
:mod:`pipeline.ingest.registry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

SizePolicy = Literal["reject", "pad"]
#: ``labels.csv`` columns copied to the catalog when present (simulated sets have them).
DEFAULT_CATALOG_COLUMNS = ("kind", "artifact_type", "snr", "isdiffpos")


class SourceOptions(BaseModel):
    """Base of the source models: :meth:`input_paths` from the fields named in :attr:`path_fields`."""

    #: Fields that name input files or folders (a path, a list of paths, or None).
    path_fields: ClassVar[tuple[str, ...]] = ()

    def input_paths(self) -> list[Path]:
        """Every input path the source names (files and folders), for content keys and the manifest."""
        out: list[Path] = []
        for name in self.path_fields:
            value = getattr(self, name)
            out.extend([] if value is None else value if isinstance(value, list) else [value])
        return out


class FitsSource(SourceOptions):
    """FITS stamp files or folders (searched recursively), one stamp per file."""

    path_fields = ("inputs",)
    kind: Literal["fits"] = "fits"
    inputs: list[Path] = Field(description="FITS files and/or folders")
    extensions: list[str] | None = Field(
        None, description="EXTNAMEs to read as channels, in order (e.g. SCIENCE,TEMPLATE,DIFFERENCE)"
    )
    stamp_shape: tuple[int, int] | None = Field(
        None, description="store stamp size N or HxW (default: the first of the stamps)"
    )
    size_policy: SizePolicy = Field(
        "reject",
        description="stamps of another size: reject them (default) or pad smaller ones with masked pixels",
    )
    header_keys: list[str] = Field(
        default_factory=list, description="header keys to copy into catalog columns"
    )
    pixel_scale_arcsec: float | None = Field(
        None, description="pixel scale in arcsec (default: from the headers)"
    )


class AlertSource(SourceOptions):
    """Alert packets (Avro files or folders of them): science, template and difference cutouts."""

    path_fields = ("inputs",)
    kind: Literal["alerts"] = "alerts"
    inputs: list[Path] = Field(description="alert packet files and/or folders")
    stamp_shape: tuple[int, int] | None = Field(
        (63, 63), description="store stamp size N or HxW (default 63; None: the first packet's)"
    )
    size_policy: SizePolicy = Field("pad", description="CCD-edge stamps: pad and mask (default) or reject")
    pixel_scale_arcsec: float | None = Field(
        None, description="pixel scale in arcsec (default: the survey's, 1.01 ZTF, 0.2 Rubin)"
    )
    workers: int = Field(1, ge=0, description="processes decoding packets (1: this process; 0: one per CPU)")


class LabelledSource(SourceOptions):
    """A folder of labelled FITS triplets and its ``labels.csv`` (e.g. ``stampflow simulate transients``)."""

    path_fields = ("folder", "labels_csv")
    kind: Literal["labelled"] = "labelled"
    folder: Path = Field(description="folder of <id>.fits[.gz] files and labels.csv")
    extensions: list[str] | None = Field(
        None, description="EXTNAMEs to read as channels (default: simulation.json or all)"
    )
    labels: list[str] = Field(
        default_factory=lambda: ["real"], description="integer label columns to store (default real)"
    )
    labels_csv: Path | None = Field(None, description="label table (default FOLDER/labels.csv)")
    catalog_columns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CATALOG_COLUMNS),
        description="further labels.csv columns copied to the catalog when present",
    )


class CutoutSource(SourceOptions):
    """Stamps cut from a large FITS image at the positions of a catalog."""

    path_fields = ("image", "catalog")
    kind: Literal["cutouts"] = "cutouts"
    image: Path = Field(description="FITS image")
    catalog: Path = Field(description="catalog of positions (CSV, Parquet, FITS table)")
    size: int = Field(ge=1, description="stamp size in pixels")
    ra_col: str | None = Field("ra", description="RA column in degrees (default ra)")
    dec_col: str | None = Field("dec", description="Dec column in degrees (default dec)")
    x_col: str | None = Field(
        None, description="x pixel column (0-based); with the y pixel column, used instead of RA/Dec"
    )
    y_col: str | None = Field(None, description="y pixel column (0-based)")
    id_col: str | None = Field(
        None, description="object id column (default: object_id, objectId, id, ... or the row)"
    )
    hdu: int | str | None = Field(
        None, description="image HDU index or EXTNAME (default: the first with image data)"
    )


class GalaxyZooSource(SourceOptions):
    """A Galaxy Zoo label catalog (Kaggle, GZ2 or GZ DECaLS) and the folder of its images."""

    path_fields = ("catalog", "images_dir")
    kind: Literal["galaxy_zoo"] = "galaxy_zoo"
    catalog: Path = Field(description="label catalog (.csv, .parquet, .fits)")
    images_dir: Path = Field(description="folder of the images")
    format: Literal["kaggle", "gz2", "decals"] = Field("kaggle", description="catalog format")
    estimate: str | None = Field(
        None,
        description="GZ2: fraction (default), weighted or debiased; DECaLS: fraction (default) or debiased",
    )
    id_column: str | None = Field(
        None, description="galaxy id column (default: GalaxyID / dr7objid / iauname ...)"
    )
    file_column: str | None = Field(
        None, description="image file column, relative to IMAGES_DIR (default: by id)"
    )
    tol: float | None = Field(
        None,
        description=(
            "tolerance on the decision-tree sums (default: from the precision the catalog is written with, "
            "(answers + 1) x half its last decimal, at least 1e-6)"
        ),
    )
    stamp_shape: tuple[int, int] | None = Field(
        None, description="store stamp size N or HxW (default: the first of the images)"
    )
    size_policy: SizePolicy = Field(
        "reject",
        description="images of another size: reject them (default) or pad smaller ones with masked pixels",
    )
    bands: list[str] | None = Field(
        None,
        min_length=3,
        max_length=3,
        description="bands shown in the R, G, B planes of colour images (default: i,r,g for kaggle and gz2, "
        "z,r,g for decals); the store's channel names",
    )
    frame_crop: int | None = Field(
        None, ge=1, description="frame at ingest: centre crop in image pixels (e.g. 297; with --frame-size)"
    )
    frame_size: int | None = Field(
        None, ge=1, description="frame at ingest: stored side in pixels, area-averaged (e.g. 99)"
    )
    pixel_dtype: Literal["auto", "uint8", "float32"] = Field(
        "auto",
        description="stored pixels: auto (uint8 for 8-bit JPEG/PNG, float32 otherwise), uint8 or float32",
    )
    workers: int | None = Field(
        None, ge=1, description="threads decoding images (default: the usable CPUs); the store is the same"
    )

    @model_validator(mode="after")
    def _frame_both_or_neither(self) -> GalaxyZooSource:
        if (self.frame_crop is None) != (self.frame_size is None):
            raise ValueError("frame_crop and frame_size go together: give both (e.g. 297 and 99) or neither")
        if self.frame_crop is not None and self.frame_size > self.frame_crop:
            raise ValueError(f"frame_size {self.frame_size} is larger than frame_crop {self.frame_crop}")
        return self


IngestSource = Annotated[
    FitsSource | AlertSource | LabelledSource | CutoutSource | GalaxyZooSource,
    Field(discriminator="kind"),
]

#: kind -> its options model.
SOURCES: dict[str, type[SourceOptions]] = {
    model.model_fields["kind"].default: model
    for model in (FitsSource, AlertSource, LabelledSource, CutoutSource, GalaxyZooSource)
}
