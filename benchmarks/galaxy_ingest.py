"""Galaxy Zoo ingest at survey scale: store size and images/s of a Kaggle-sized set, framed and 8-bit, against
today's path (float32 424 px) on a subset, in the same run.

The only real galaxies we have are the 1,014 of ``/work/shared/galaxy_zoo/kaggle_real_dev`` (real Kaggle
JPEGs and rows). A Kaggle-sized set (``--n``, 61,578 by default, the size of the Kaggle training set) is
made by repeating them under new ids: hard links (symlinks across file systems) in a temporary folder and
a catalog CSV whose rows are the real rows, verbatim but for the id. It is ingested with the
``dieleman2015`` frame (centre 297 px area-averaged to 99, ``--frame-crop/--frame-size``), uint8 pixels
and ``--workers`` decode threads; then the first ``--baseline-n`` galaxies the way the store was made
before (float32, no frame, 424 px, one thread). Prints JSON: bytes per galaxy, total bytes and GB,
images/s, for both, and their ratios; rejects by reason (none expected: the catalog's rounding is
tolerated, issue 21).

Usage: python benchmarks/galaxy_ingest.py [--n 61578] [--baseline-n 1014] [--workers N] [--source DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from pipeline.cpus import usable_cpus
from pipeline.ingest import GalaxyZooSource, ingest_source

REAL = Path("/work/shared/galaxy_zoo/kaggle_real_dev")
KAGGLE_TRAINING_SET = 61_578


def make_set(source: Path, folder: Path, n: int) -> Path:
    """``folder/images/{id}.jpg`` for ``n`` galaxies repeating the real ones (links) and their catalog."""
    lines = (source / "training_solutions_rev1.csv").read_text().splitlines()
    header, rows = lines[0], [line.split(",", 1) for line in lines[1:]]
    images = folder / "images"
    images.mkdir(parents=True)
    out = [header]
    for i in range(n):
        real_id, values = rows[i % len(rows)]
        new_id = str(100_000 + i)
        target, link = source / "images" / f"{real_id}.jpg", images / f"{new_id}.jpg"
        try:
            os.link(target, link)
        except OSError:  # another file system, or no permission to hard-link a read-only file
            link.symlink_to(target)
        out.append(f"{new_id},{values}")
    catalog = folder / "training_solutions.csv"
    catalog.write_text("\n".join(out) + "\n")
    return catalog


def run_one(catalog: Path, images: Path, out: Path, n: int, **options) -> dict:
    """Ingest ``catalog`` (its first ``n`` rows) into ``out``: counts, bytes, seconds, images/s."""
    if n < sum(1 for _ in catalog.open()) - 1:
        subset = out.parent / "subset.csv"
        subset.parent.mkdir(parents=True, exist_ok=True)
        with catalog.open() as fh:
            subset.write_text("".join(line for _, line in zip(range(n + 1), fh, strict=False)))
        catalog = subset
    t0 = time.perf_counter()
    report = ingest_source(GalaxyZooSource(catalog=catalog, images_dir=images, **options), out)
    seconds = time.perf_counter() - t0
    size = out.stat().st_size if report.store else 0
    return {
        "galaxies": report.n_inputs,
        "ingested": report.n_ingested,
        "reject_reasons": report.reject_reasons,
        "store_bytes": size,
        "store_gb": round(size / 1e9, 3),
        "bytes_per_galaxy": round(size / max(report.n_ingested, 1)),
        "seconds": round(seconds, 2),
        "images_per_s": round(report.n_ingested / seconds, 1),
        "options": {k: v for k, v in options.items()},
    }


def run(
    n: int = KAGGLE_TRAINING_SET, baseline_n: int = 1014, workers: int | None = None, source: Path = REAL
):
    """The framed uint8 ingest of ``n`` galaxies and today's path on ``baseline_n``; a JSON-able dict."""
    workers = workers or usable_cpus()
    with tempfile.TemporaryDirectory(prefix="galaxy_ingest_") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        catalog = make_set(source, folder / "set", n)
        setup = time.perf_counter() - t0
        framed = run_one(
            catalog,
            folder / "set" / "images",
            folder / "framed" / "stamps.h5",
            n,
            frame_crop=297,
            frame_size=99,
            pixel_dtype="uint8",
            workers=workers,
        )
        before = run_one(
            catalog,
            folder / "set" / "images",
            folder / "before" / "stamps.h5",
            min(baseline_n, n),
            pixel_dtype="float32",
            workers=1,
        )
    return {
        "benchmark": "galaxy_ingest",
        "real_galaxies_repeated": str(source),
        "setup_seconds": round(setup, 1),
        "framed_uint8": framed,
        "before_float32_424px": before,
        "bytes_per_galaxy_ratio": round(before["bytes_per_galaxy"] / max(framed["bytes_per_galaxy"], 1), 1),
        "speedup": round(framed["images_per_s"] / max(before["images_per_s"], 1e-9), 1),
        "full_set_gb_before_estimated": round(before["bytes_per_galaxy"] * n / 1e9, 1),
        "usable_cpus": usable_cpus(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "machine": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=KAGGLE_TRAINING_SET, help="galaxies in the framed set")
    parser.add_argument("--baseline-n", type=int, default=1014, help="galaxies ingested the old way")
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: usable CPUs)")
    parser.add_argument("--source", type=Path, default=REAL, help="folder of real Kaggle galaxies")
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.baseline_n, args.workers, args.source), indent=2))


if __name__ == "__main__":
    main()
