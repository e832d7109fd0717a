"""``stampflow ingest`` (FITS stamp files or folders), ``stampflow ingest-labelled`` (labelled triplets),
``stampflow cutout`` (image + catalog of positions) and ``stampflow ingest-galaxy-zoo CATALOG IMAGES_DIR
--format kaggle|gz2|decals`` (Galaxy Zoo labels + images).

Each writes a stamp store and ``rejects.csv`` beside it, prints ``inputs / ingested / rejected`` and exits
non-zero only when nothing could be ingested (1), an input cannot be used at all (1) or the output cannot
be written (3). Each runs the ingest flow (:mod:`flows.ingest_flow`): ``stampflow ingest`` in chunks of
``--chunk-files`` files, on threads or a Dask cluster (``--task-runner dask [--dask-address
tcp://host:port]``), cached in the run folder so that a rerun with the same files does no work twice.

The source options of each command are generated from the source's model
(:mod:`pipeline.ingest.sources`, :func:`flows.cli_common.add_model_arguments`); what is written here is
only what cannot be derived: option spellings, the command's texts, which errors mean a bad input.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.cli_common import (
    SIZE_FLAGS,
    add_model_arguments,
    add_output_arguments,
    add_runner_arguments,
    is_tty,
    model_from_args,
    run_ingest_and_report,
    runner_options,
)
from flows.commands._command import add_command


def run_ingest_flow(source, args: argparse.Namespace, chunked: bool = False):
    """Run the ingest flow (:func:`flows.ingest_flow.ingest_flow`) on ``source`` with the output options of
    ``args``; returns the :class:`IngestReport`."""
    from flows.ingest_flow import DEFAULT_CHUNK_FILES, ingest_flow
    from pipeline.store import IngestReport

    report = ingest_flow(
        source=source,
        out=args.out,
        rejects=args.rejects,
        compression=args.compression,
        chunk_files=args.chunk_files if chunked else DEFAULT_CHUNK_FILES,
        runner=runner_options(args),
        progress=is_tty(),
    )
    return IngestReport(**report)


@dataclass(frozen=True)
class IngestCommand:
    """A subcommand that ingests one source kind through the ingest flow (what cannot be derived from the
    source's model: the texts, option spellings and argparse extras, which errors mean a bad input)."""

    name: str
    kind: str
    help: str
    description: str
    flags: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: ``module:Name`` of the errors that mean an input cannot be used (exit 1), imported when run.
    input_errors: tuple[str, ...] = ()
    #: Many files in chunks of ``--chunk-files``, on threads or Dask (the runner options).
    chunked: bool = False
    default_out: Path | None = None
    #: Source fields without an option (the library and Prefect set them).
    no_option: tuple[str, ...] = ()

    def register(self, subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """Add the subcommand: source options from the model, then the output (and runner) options."""
        from pipeline.ingest import SOURCES

        model = SOURCES[self.kind]
        parser = add_command(subparsers, self.name, self.run, help=self.help, description=self.description)
        skip = ("kind", *self.no_option)
        add_model_arguments(parser, model, flags=self.flags, extra=self.extra, skip=skip)
        add_output_arguments(parser, default_out=self.default_out)
        if self.chunked:
            add_runner_arguments(parser, chunk=("--chunk-files", 1000, "files"))
        return parser

    def run(self, args: argparse.Namespace) -> int:
        """Build the source from the options, run the flow, print the report; the exit code."""
        from pipeline.ingest import SOURCES

        def work():
            source = model_from_args(SOURCES[self.kind], args)
            return run_ingest_flow(source, args, chunked=self.chunked)

        errors = tuple(getattr(importlib.import_module(m), n) for m, n in map(_split, self.input_errors))
        return run_ingest_and_report(work, args.json, input_errors=errors)


def _split(name: str) -> tuple[str, str]:
    module, _, attr = name.partition(":")
    return module, attr


COMMANDS = (
    IngestCommand(
        "ingest",
        "fits",
        help="ingest FITS stamp files or folders into a stamp store",
        description=(
            "Read one stamp per FITS file (2-D image, (C,H,W) cube, or multi-extension file; gzipped or not) "
            "from the given files and folders (searched recursively) and write an HDF5 stamp store plus "
            "rejects.csv. NaN and blank pixels are masked. Bad files are rejected with a reason; the run goes "
            "on. Prints inputs = ingested + rejected."
        ),
        flags={**SIZE_FLAGS, "pixel_scale_arcsec": "--pixel-scale"},
        chunked=True,
    ),
    IngestCommand(
        "ingest-labelled",
        "labelled",
        help="ingest labelled FITS triplets (FITS files + labels.csv) into a training store",
        description=(
            "Read a folder of multi-extension FITS candidates (<id>.fits[.gz]; e.g. the output of "
            "'stampflow simulate transients', or your own labelled HiTS/ZTF triplets) and its labels.csv "
            "(column id plus integer label columns, e.g. real) into a stamp store with /labels/<name>. "
            "Files without a label row and label rows without a file are rejected; inputs = ingested + rejected."
        ),
        input_errors=("builtins:ValueError", "builtins:FileNotFoundError"),
        no_option=("catalog_columns",),
    ),
    IngestCommand(
        "cutout",
        "cutouts",
        help="cut stamps from a large FITS image at catalog positions",
        description=(
            "Cut SIZE x SIZE stamps from a FITS image (2-D or (C,H,W) cube) at the positions of a catalog "
            "(CSV, Parquet or FITS table): sky positions (--ra-col/--dec-col, degrees) through the image WCS, "
            "or 0-based pixel positions (--x-col/--y-col). Stamps overlapping the edge are padded and masked; "
            "positions outside the image, or sky positions without a WCS, are rejected."
        ),
        flags={"size": "--size"},
        input_errors=(
            "pipeline.io:StampRejected",
            "pydantic:ValidationError",
            "builtins:ValueError",
            "builtins:FileNotFoundError",
        ),
    ),
    IngestCommand(
        "ingest-galaxy-zoo",
        "galaxy_zoo",
        help="ingest Galaxy Zoo labels (Kaggle, GZ2, GZ DECaLS) and their images into a stamp store",
        description=(
            "Read a Galaxy Zoo label catalog (CSV, Parquet or FITS table) in the Kaggle "
            "training_solutions_rev1 form, the GZ2 (Willett+2013 / Hart+2016) form or the GZ DECaLS "
            "(Walmsley+2022) volunteer form; validate every row against the decision tree; join each row to "
            "its image (JPEG, PNG or FITS) by a file column or as IMAGES_DIR/{id}.jpg|.png|.fits[.gz]; write "
            "an HDF5 stamp store with the labels in /labels/gz_answers (Kaggle 37 cumulative fractions; "
            "/labels/gz_decals_fractions for DECaLS) and rejects.csv beside it. Bad rows and missing or "
            "unreadable images are rejected by galaxy id; the run goes on. Prints inputs = ingested + rejected."
        ),
        flags=SIZE_FLAGS,
        # GZ2's estimates (DECaLS has the first and the last)
        extra={"estimate": {"choices": ["fraction", "weighted", "debiased"]}},
        input_errors=("data_catalogs.tables:CatalogError", "builtins:FileNotFoundError"),
        default_out=Path("stamps.h5"),
    ),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest``, ``ingest-labelled``, ``cutout`` and ``ingest-galaxy-zoo`` subcommands."""
    for command in COMMANDS:
        command.register(subparsers)
