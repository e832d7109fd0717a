"""``stampflow ingest`` (FITS stamp files or folders) and ``stampflow cutout`` (image + catalog of positions).

Both write a stamp store and ``rejects.csv`` beside it, print ``inputs / ingested / rejected`` and exit
non-zero only when nothing could be ingested (1) or the output cannot be written (3).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_NOTHING_INGESTED = 1
EXIT_CANNOT_WRITE = 3


def _shape(text: str) -> tuple[int, int]:
    parts = [int(p) for p in text.lower().replace("x", ",").split(",") if p]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"stamp size must be N or HxW, got {text!r}")
    return parts[0], parts[1]


def _csv_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def run_ingest_and_report(work: Callable[[], object], as_json: bool) -> int:
    """Run an ingest function, print its report, and map the outcome to the command's exit code."""
    try:
        report = work()
    except OSError as err:
        print(f"error: cannot write the output: {err}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    print(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if report.n_ingested == 0:
        print(f"error: nothing could be ingested; see {report.rejects}", file=sys.stderr)
        return EXIT_NOTHING_INGESTED
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from pipeline.ingest_fits import ingest_fits

    return run_ingest_and_report(
        lambda: ingest_fits(
            args.inputs,
            args.out,
            extensions=args.extensions,
            stamp_shape=args.stamp_size,
            size_policy=args.on_size_mismatch,
            header_keys=args.header_keys or (),
            pixel_scale_arcsec=args.pixel_scale,
            rejects_path=args.rejects,
            compression=args.compression,
            progress=sys.stderr.isatty(),
        ),
        args.json,
    )


def _cutout(args: argparse.Namespace) -> int:
    from pipeline.ingest_cutouts import ingest_cutouts
    from pipeline.rejects import StampRejected

    def work():
        return ingest_cutouts(
            args.image,
            args.catalog,
            args.out,
            size=args.size,
            ra_col=args.ra_col,
            dec_col=args.dec_col,
            x_col=args.x_col,
            y_col=args.y_col,
            id_col=args.id_col,
            hdu=int(args.hdu) if args.hdu and args.hdu.isdigit() else args.hdu,
            rejects_path=args.rejects,
            compression=args.compression,
            progress=sys.stderr.isatty(),
        )

    try:
        return run_ingest_and_report(work, args.json)
    except (StampRejected, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_NOTHING_INGESTED


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", "-o", type=Path, required=True, help="stamp store to write (e.g. runs/x/stamps.h5)"
    )
    parser.add_argument("--rejects", type=Path, help="rejects CSV (default: rejects.csv beside the store)")
    parser.add_argument(
        "--compression", choices=["lzf", "gzip", "none"], default="lzf", help="HDF5 compression (default lzf)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest`` and ``cutout`` subcommands."""
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
    _add_common(ingest)
    ingest.add_argument(
        "--extensions",
        type=_csv_list,
        help="comma-separated EXTNAMEs to read as channels, in order (e.g. SCIENCE,TEMPLATE,DIFFERENCE)",
    )
    ingest.add_argument(
        "--stamp-size", type=_shape, help="store stamp size N or HxW (default: the first stamp's)"
    )
    ingest.add_argument(
        "--on-size-mismatch",
        choices=["reject", "pad"],
        default="reject",
        help="stamps of another size: reject them (default) or pad smaller ones with masked pixels",
    )
    ingest.add_argument(
        "--header-keys", type=_csv_list, help="comma-separated header keys to copy into catalog columns"
    )
    ingest.add_argument("--pixel-scale", type=float, help="pixel scale in arcsec (default: from the headers)")
    ingest.set_defaults(func=_ingest)

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
    _add_common(cutout)
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
