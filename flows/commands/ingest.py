"""``stampflow ingest`` (FITS stamp files or folders), ``stampflow ingest-labelled`` (labelled triplets) and
``stampflow cutout`` (image + catalog of positions).

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
from collections.abc import Callable, Mapping
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


def register_ingest_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    kind: str,
    *,
    help: str,
    description: str,
    flags: Mapping[str, str] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    input_errors: Callable[[], tuple[type[BaseException], ...]] = tuple,
    chunked: bool = False,
    default_out: Path | None = None,
) -> argparse.ArgumentParser:
    """Add a subcommand that ingests a source of ``kind`` through the ingest flow: its source options from
    the model (``flags``, ``extra``: see :func:`flows.cli_common.add_model_arguments`), the output options,
    and with ``chunked`` the runner options and ``--chunk-files``. ``input_errors`` (called when the
    command runs, so that their modules load late) are the errors that mean an input cannot be used."""
    from pipeline.ingest import SOURCES

    model = SOURCES[kind]
    parser = subparsers.add_parser(name, help=help, description=description)

    def run(args: argparse.Namespace) -> int:
        def work():
            return run_ingest_flow(model_from_args(model, args), args, chunked=chunked)

        return run_ingest_and_report(work, args.json, input_errors=input_errors())

    add_model_arguments(parser, model, flags=flags, extra=extra, skip=("kind", *_NO_OPTION.get(kind, ())))
    add_output_arguments(parser, default_out=default_out)
    if chunked:
        add_runner_arguments(parser, chunk=("--chunk-files", 1000, "files"))
    parser.set_defaults(func=run)
    return parser


#: Source fields that have no command-line option (the library and Prefect set them).
_NO_OPTION = {"labelled": ("catalog_columns",)}


def _bad_cutout_input() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from pipeline.io import StampRejected

    return (StampRejected, ValidationError, ValueError, FileNotFoundError)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest``, ``ingest-labelled`` and ``cutout`` subcommands."""
    register_ingest_command(
        subparsers,
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
    )
    register_ingest_command(
        subparsers,
        "ingest-labelled",
        "labelled",
        help="ingest labelled FITS triplets (FITS files + labels.csv) into a training store",
        description=(
            "Read a folder of multi-extension FITS candidates (<id>.fits[.gz]; e.g. the output of "
            "'stampflow simulate transients', or your own labelled HiTS/ZTF triplets) and its labels.csv "
            "(column id plus integer label columns, e.g. real) into a stamp store with /labels/<name>. "
            "Files without a label row and label rows without a file are rejected; inputs = ingested + rejected."
        ),
        input_errors=lambda: (ValueError, FileNotFoundError),
    )
    register_ingest_command(
        subparsers,
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
        input_errors=_bad_cutout_input,
    )
