"""``stampflow ingest-galaxy-zoo CATALOG IMAGES_DIR --format kaggle|gz2|decals``: labels + images -> store.

Writes a stamp store with the Galaxy Zoo labels and ``rejects.csv`` beside it, prints
``inputs / ingested / rejected``. Exit codes: 0 done (some rows may be rejected), 1 nothing ingested or
the catalog / images folder cannot be used (the error names it), 3 the output cannot be written. Runs the
ingest flow (:mod:`flows.ingest_flow`), cached on the catalog's and the images' sha256.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.cli_common import add_output_arguments, add_size_arguments, run_ingest_and_report


def _run(args: argparse.Namespace) -> int:
    from data_catalogs.galaxy_zoo_formats import CatalogError
    from flows.commands.ingest import run_ingest_flow
    from flows.params import GalaxyZooSource

    source = GalaxyZooSource(
        catalog=args.catalog,
        images_dir=args.images_dir,
        format=args.format,
        estimate=args.estimate,
        id_column=args.id_column,
        file_column=args.file_column,
        tol=args.tol,
        stamp_shape=args.stamp_size,
        size_policy=args.on_size_mismatch,
    )
    return run_ingest_and_report(
        lambda: run_ingest_flow(source, args), args.json, input_errors=(CatalogError, FileNotFoundError)
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest-galaxy-zoo`` subcommand."""
    parser = subparsers.add_parser(
        "ingest-galaxy-zoo",
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
    )
    parser.add_argument("catalog", type=Path, help="label catalog (.csv, .parquet, .fits)")
    parser.add_argument("images_dir", type=Path, help="folder of the images")
    parser.add_argument(
        "--format", choices=["kaggle", "gz2", "decals"], default="kaggle", help="catalog format"
    )
    add_output_arguments(parser, default_out=Path("stamps.h5"))
    parser.add_argument(
        "--estimate",
        choices=["fraction", "weighted", "debiased"],
        help="GZ2: fraction (default), weighted or debiased; DECaLS: fraction (default) or debiased",
    )
    parser.add_argument("--id-column", help="galaxy id column (default: GalaxyID / dr7objid / iauname ...)")
    parser.add_argument("--file-column", help="image file column, relative to IMAGES_DIR (default: by id)")
    parser.add_argument("--tol", type=float, help="tolerance on the decision-tree sums (default 1e-6)")
    add_size_arguments(parser, "images")
    parser.set_defaults(func=_run)
