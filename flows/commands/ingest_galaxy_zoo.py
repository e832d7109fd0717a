"""``stampflow ingest-galaxy-zoo CATALOG IMAGES_DIR --format kaggle|gz2|decals``: labels + images -> store.

Writes a stamp store with the Galaxy Zoo labels and ``rejects.csv`` beside it, prints
``inputs / ingested / rejected``. Exit codes: 0 done (some rows may be rejected), 1 nothing ingested or
the catalog / images folder cannot be used (the error names it), 3 the output cannot be written. Runs the
ingest flow (:mod:`flows.ingest_flow`), cached on the catalog's and the images' sha256. The options are
those of :class:`pipeline.ingest.sources.GalaxyZooSource`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.cli_common import SIZE_FLAGS
from flows.commands.ingest import register_ingest_command

#: GZ2 estimates (DECaLS has the first and the last).
ESTIMATES = ["fraction", "weighted", "debiased"]


def _bad_input() -> tuple[type[BaseException], ...]:
    from data_catalogs.galaxy_zoo_formats import CatalogError

    return (CatalogError, FileNotFoundError)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest-galaxy-zoo`` subcommand."""
    register_ingest_command(
        subparsers,
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
        extra={"estimate": {"choices": ESTIMATES}},
        input_errors=_bad_input,
        default_out=Path("stamps.h5"),
    )
