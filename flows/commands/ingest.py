"""``stampflow ingest`` (FITS stamp files or folders) and ``stampflow cutout`` (image + catalog of positions).

Both write a stamp store and ``rejects.csv`` beside it, print ``inputs / ingested / rejected`` and exit
non-zero only when nothing could be ingested (1) or the output cannot be written (3). Each runs the
ingest flow (:mod:`flows.ingest_flow`): ``stampflow ingest`` in chunks of ``--chunk-files`` files, on
threads or a Dask cluster (``--task-runner dask [--dask-address tcp://host:port]``), cached in the run
folder so that a rerun with the same files does no work twice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.cli_common import (
    add_output_arguments,
    add_runner_arguments,
    add_size_arguments,
    is_tty,
    parse_csv_list,
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


def _ingest(args: argparse.Namespace) -> int:
    from flows.params import FitsSource

    source = FitsSource(
        inputs=args.inputs,
        extensions=args.extensions,
        stamp_shape=args.stamp_size,
        size_policy=args.on_size_mismatch,
        header_keys=args.header_keys or [],
        pixel_scale_arcsec=args.pixel_scale,
    )
    return run_ingest_and_report(lambda: run_ingest_flow(source, args, chunked=True), args.json)


def _cutout(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from flows.params import CutoutSource
    from pipeline.io import StampRejected

    def work():
        source = CutoutSource(
            image=args.image,
            catalog=args.catalog,
            size=args.size,
            ra_col=args.ra_col,
            dec_col=args.dec_col,
            x_col=args.x_col,
            y_col=args.y_col,
            id_col=args.id_col,
            hdu=int(args.hdu) if args.hdu and args.hdu.isdigit() else args.hdu,
        )
        return run_ingest_flow(source, args)

    return run_ingest_and_report(
        work, args.json, input_errors=(StampRejected, ValidationError, ValueError, FileNotFoundError)
    )


def _ingest_labelled(args: argparse.Namespace) -> int:
    from flows.params import LabelledSource

    source = LabelledSource(
        folder=args.folder, extensions=args.extensions, labels=args.labels, labels_csv=args.labels_csv
    )
    return run_ingest_and_report(
        lambda: run_ingest_flow(source, args), args.json, input_errors=(ValueError, FileNotFoundError)
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest``, ``ingest-labelled`` and ``cutout`` subcommands."""
    ingest = subparsers.add_parser(
        "ingest",
        help="ingest FITS stamp files or folders into a stamp store",
        description=(
            "Read one stamp per FITS file (2-D image, (C,H,W) cube, or multi-extension file; gzipped or not) "
            "from the given files and folders (searched recursively) and write an HDF5 stamp store plus "
            "rejects.csv. NaN and blank pixels are masked. Bad files are rejected with a reason; the run goes "
            "on. Prints inputs = ingested + rejected."
        ),
    )
    ingest.add_argument("inputs", nargs="+", type=Path, help="FITS files and/or folders")
    add_output_arguments(ingest)
    ingest.add_argument(
        "--extensions",
        type=parse_csv_list,
        help="comma-separated EXTNAMEs to read as channels, in order (e.g. SCIENCE,TEMPLATE,DIFFERENCE)",
    )
    add_size_arguments(ingest, "stamps")
    ingest.add_argument(
        "--header-keys", type=parse_csv_list, help="comma-separated header keys to copy into catalog columns"
    )
    ingest.add_argument("--pixel-scale", type=float, help="pixel scale in arcsec (default: from the headers)")
    add_runner_arguments(ingest, chunk=("--chunk-files", 1000, "files"))
    ingest.set_defaults(func=_ingest)

    labelled = subparsers.add_parser(
        "ingest-labelled",
        help="ingest labelled FITS triplets (FITS files + labels.csv) into a training store",
        description=(
            "Read a folder of multi-extension FITS candidates (<id>.fits[.gz]; e.g. the output of "
            "'stampflow simulate transients', or your own labelled HiTS/ZTF triplets) and its labels.csv "
            "(column id plus integer label columns, e.g. real) into a stamp store with /labels/<name>. "
            "Files without a label row and label rows without a file are rejected; inputs = ingested + rejected."
        ),
    )
    labelled.add_argument("folder", type=Path, help="folder of <id>.fits[.gz] files and labels.csv")
    add_output_arguments(labelled)
    labelled.add_argument(
        "--extensions",
        type=parse_csv_list,
        help="EXTNAMEs to read as channels (default: simulation.json or all)",
    )
    labelled.add_argument(
        "--labels",
        type=parse_csv_list,
        default=["real"],
        help="integer label columns to store (default real)",
    )
    labelled.add_argument("--labels-csv", type=Path, help="label table (default FOLDER/labels.csv)")
    labelled.set_defaults(func=_ingest_labelled)

    cutout = subparsers.add_parser(
        "cutout",
        help="cut stamps from a large FITS image at catalog positions",
        description=(
            "Cut SIZE x SIZE stamps from a FITS image (2-D or (C,H,W) cube) at the positions of a catalog "
            "(CSV, Parquet or FITS table): sky positions (--ra-col/--dec-col, degrees) through the image WCS, "
            "or 0-based pixel positions (--x-col/--y-col). Stamps overlapping the edge are padded and masked; "
            "positions outside the image, or sky positions without a WCS, are rejected."
        ),
    )
    cutout.add_argument("image", type=Path, help="FITS image")
    cutout.add_argument("catalog", type=Path, help="catalog of positions (CSV, Parquet, FITS table)")
    add_output_arguments(cutout)
    cutout.add_argument("--size", type=int, required=True, help="stamp size in pixels")
    cutout.add_argument("--ra-col", default="ra", help="RA column in degrees (default ra)")
    cutout.add_argument("--dec-col", default="dec", help="Dec column in degrees (default dec)")
    cutout.add_argument("--x-col", help="x pixel column (0-based); with --y-col, used instead of RA/Dec")
    cutout.add_argument("--y-col", help="y pixel column (0-based)")
    cutout.add_argument(
        "--id-col", help="object id column (default: object_id, objectId, id, ... or the row)"
    )
    cutout.add_argument("--hdu", help="image HDU index or EXTNAME (default: the first with image data)")
    cutout.set_defaults(func=_cutout)
