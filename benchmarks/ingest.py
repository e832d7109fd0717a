"""Ingest speed: stamps/s of ``stampflow ingest`` against a plain astropy + h5py loop, side by side.

Writes N small FITS stamps (big-endian float32, ``--size`` px square, ``--channels`` planes) to a temporary
folder, then alternates ``--repeats`` times between (a) :func:`pipeline.ingest.fits_stamps.ingest_fits` (masking,
rejects, chunked compressed writes, sha256 of every input) and (b) the plain loop a user would write
(``astropy.io.fits.open`` per file, ``astype("=f4")``, one row written per file into a preallocated
uncompressed h5py dataset). Prints JSON with the best time of each and their ratio.

Usage: python benchmarks/ingest.py [--n 10000] [--size 21] [--channels 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits

from pipeline.ingest import expand_inputs, ingest_fits


def make_inputs(folder: Path, n: int, size: int, channels: int, seed: int = 0) -> None:
    """Write ``n`` FITS stamps ``(channels, size, size)`` (2-D when channels == 1) with distinct pixels."""
    rng = np.random.default_rng(seed)
    shape = (size, size) if channels == 1 else (channels, size, size)
    for i in range(n):
        fits.PrimaryHDU(rng.normal(size=shape).astype(">f4")).writeto(folder / f"s{i:06d}.fits")


def plain_loop(files: list[Path], out: Path) -> None:
    """The baseline: open each file with astropy, convert, write its row into h5py."""
    with fits.open(files[0]) as hdul:
        shape = hdul[0].data.shape
    with h5py.File(out, "w") as h5:
        dset = h5.create_dataset("stamps", (len(files), *shape), "f4")
        for i, path in enumerate(files):
            with fits.open(path) as hdul:
                dset[i] = hdul[0].data.astype("=f4")


def run(n: int = 10_000, size: int = 21, channels: int = 1, repeats: int = 3) -> dict:
    """Measure and return the figures of the module docstring (``n`` stamps, best of ``repeats``)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "in"
        folder.mkdir()
        make_inputs(folder, n, size, channels)
        files = expand_inputs([folder])
        times: dict[str, list[float]] = {"stampflow_ingest": [], "plain_astropy_h5py_loop": []}
        for rep in range(repeats):
            t0 = time.perf_counter()
            report = ingest_fits([folder], tmp / f"store{rep}.h5")
            times["stampflow_ingest"].append(time.perf_counter() - t0)
            assert report.n_ingested == n, report.summary()
            t0 = time.perf_counter()
            plain_loop(files, tmp / f"plain{rep}.h5")
            times["plain_astropy_h5py_loop"].append(time.perf_counter() - t0)
        store_bytes = (tmp / "store0.h5").stat().st_size
        plain_bytes = (tmp / "plain0.h5").stat().st_size
    best = {k: min(v) for k, v in times.items()}
    return {
        "benchmark": "ingest",
        "n_stamps": n,
        "stamp_shape": [channels, size, size],
        "repeats": repeats,
        "stamps_per_s": {k: round(n / v, 1) for k, v in best.items()},
        "seconds_all_runs": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "speedup_store_vs_plain": round(best["plain_astropy_h5py_loop"] / best["stampflow_ingest"], 2),
        "file_bytes": {"store_lzf": store_bytes, "plain_uncompressed": plain_bytes},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=21)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.size, args.channels, args.repeats), indent=2))


if __name__ == "__main__":
    main()
