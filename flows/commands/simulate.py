"""``stampflow simulate galaxies N`` and ``stampflow simulate transients N``: embedded training data with
known truth, rendered with GalSim (:mod:`pipeline.simulate`). Same ``--seed`` -> byte-identical output,
whatever ``--workers``. Runs the simulate flow (:mod:`flows.simulate_flow`): the same options again reuse
the files (cached)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.commands._command import add_command, print_result


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


#: Options of each kind of data set handed to :class:`flows.params.SimulateParams` under their own names.
PARAMS = {
    "galaxies": ("n", "out", "seed", "workers", "chunk_size", "size", "pixel_scale", "jpeg", "style"),
    "transients": (
        "n",
        "out",
        "seed",
        "workers",
        "chunk_size",
        "survey",
        "backgrounds",
        "labels",
        "real_fraction",
    ),
}
#: The line printed for each kind of data set (formatted with the options and the summary).
DONE = {
    "galaxies": "wrote {n} galaxies ({shape}) to {out} in {seconds:.1f} s",
    "transients": "wrote {n} {survey} triplets ({real} real) to {out} in {seconds:.1f} s",
}


def _simulate(args: argparse.Namespace) -> int:
    from flows.params import SimulateParams
    from flows.simulate_flow import simulate_flow

    options = {name: getattr(args, name) for name in PARAMS[args.what]}
    if args.what == "transients":
        options["compress"] = not args.no_gzip
    summary = simulate_flow(
        params=SimulateParams(what=args.what, **options), progress=not args.quiet and sys.stderr.isatty()
    )
    sdss = getattr(args, "style", "fits") == "sdss-jpeg"
    shape = {
        "shape": "424x424 JPEG, i r g as RGB"
        if sdss
        else f"{getattr(args, 'size', 0)}x{getattr(args, 'size', 0)} px, g r i"
    }
    return print_result(
        summary, as_json=args.json, text=lambda s: DONE[args.what].format_map({**vars(args), **shape, **s})
    )


def _common(parser: argparse.ArgumentParser, chunk_size: int) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--seed", type=_non_negative, default=0, help="run seed (default 0)")
    parser.add_argument("--workers", type=_positive, default=None, help="processes (default: all CPUs)")
    parser.add_argument(
        "--chunk-size", type=_positive, default=chunk_size, help=f"objects per task ({chunk_size})"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``simulate galaxies`` and ``simulate transients``."""
    parser = add_command(
        subparsers,
        "simulate",
        lambda args: (parser.print_help(), 2)[1],
        help="simulate training data with known truth (GalSim galaxies + votes, real/bogus triplets)",
        description="Simulate training data with known truth, rendered with GalSim. The same --seed gives "
        "byte-identical output, whatever --workers.",
    )
    sub = parser.add_subparsers(title="what", dest="what", metavar="WHAT")

    gal = sub.add_parser(
        "galaxies",
        help="g,r,i galaxy cubes with simulated Galaxy Zoo votes",
        description="Render N galaxies (ellipticals, disks with bulges, arms and bars, edge-on disks, "
        "mergers, irregulars, rings, lenses, stars, artifacts) in g, r, i with a PSF and noise, and let ~40 "
        "simulated volunteers per galaxy walk the Galaxy Zoo tree. Writes images/<GalaxyID>.fits, "
        "training_solutions.csv (Kaggle), gz2_catalog.csv, votes.csv, truth.csv. --style sdss-jpeg writes "
        "images/<GalaxyID>.jpg like the real Kaggle / Galaxy Zoo 2 images instead (424x424, R G B = i r g, "
        "asinh stretch, scale 0.024 x petroR90 arcsec/px, SDSS PSF and noise, neighbours, JPEG quality 75), "
        "to ingest with the same reader and frame as the real ones.",
    )
    gal.add_argument("n", type=_positive, help="number of galaxies")
    gal.add_argument("--size", type=_positive, default=69, help="stamp side in pixels (default 69)")
    gal.add_argument("--pixel-scale", type=float, default=0.396, help="arcsec/pixel (default 0.396, SDSS)")
    gal.add_argument(
        "--jpeg", action="store_true", help="also write 424x424 gri JPEGs like the Kaggle images"
    )
    gal.add_argument(
        "--style",
        choices=("fits", "sdss-jpeg"),
        default="fits",
        help="fits: g,r,i FITS cubes (default); sdss-jpeg: 424x424 JPEGs like the Kaggle images "
        "(--size, --pixel-scale and --jpeg do not apply)",
    )
    _common(gal, chunk_size=50)
    gal.set_defaults(func=_simulate)

    tr = sub.add_parser(
        "transients",
        help="real/bogus template/science/difference triplets",
        description="Render N candidates (real point sources, on hosts, variable stars; bogus cosmic rays, "
        "hot pixels, bad columns, dipoles, saturated stars, noise peaks). Writes <id>.fits.gz (extensions "
        "TEMPLATE/SCIENCE/DIFFERENCE[/SNR]) and labels.csv.",
    )
    tr.add_argument("n", type=_positive, help="number of candidates")
    tr.add_argument(
        "--survey",
        choices=("hits", "ztf"),
        default="hits",
        help='hits: 4x21x21 at 0.263"/px; ztf: 3x63x63 at 1.01"/px (default hits)',
    )
    tr.add_argument("--no-gzip", action="store_true", help="write plain .fits instead of .fits.gz")
    tr.add_argument(
        "--backgrounds",
        nargs="+",
        type=Path,
        metavar="SRC",
        help="real ZTF alert files/folders or stores to inject into (ztf)",
    )
    tr.add_argument("--labels", type=Path, help="CSV candid,real: classes of the background alerts")
    tr.add_argument("--real-fraction", type=float, default=0.5, help="rows made on backgrounds (default 0.5)")
    _common(tr, chunk_size=500)
    tr.set_defaults(func=_simulate)
