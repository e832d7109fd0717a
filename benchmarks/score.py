"""Scoring throughput and peak memory: ``stampflow score`` on stores of 4x21x21 stamps (HiTS-sized).

Writes stores of each requested size in chunks of 10,000 stamps (noise plus a point source in half of them,
1 % of the stamps with masked pixels) to a temporary folder, saves a Deep-HiTS ``hits``
:class:`models.realbogus.RealBogusModel` (untrained weights: throughput does not depend on them) as a real
checkpoint, and scores each store in a fresh process (``python -m flows.cli score``, the command users run)
so that each figure is the peak resident memory (``ru_maxrss``) of one whole scoring process, imports and
torch included. A peak that does not grow with the number of stamps shows that scoring streams.

Usage: python benchmarks/score.py [--n 100000] [--also 10000] [--batch-size 256] [--threads 2] [--device cpu]
Prints JSON: per store size the stamps/s (scoring proper, from the command's own timer), the wall time of
the whole command, and the peak RSS in MB; the target is a peak under 2,000 MB for 100,000 stamps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from models.checkpoints import save_checkpoint
from models.realbogus import RealBogusModel
from pipeline import __version__
from pipeline.store import StampStoreWriter

CHANNELS = ["template", "science", "difference", "snr"]
CHUNK = 10_000
PEAK_TARGET_MB = 2000.0


def write_store(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` stamps of 4x21x21 written in chunks of :data:`CHUNK` (memory of one chunk at most)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:21, :21]
    psf = np.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 4.0).astype(np.float32)
    with StampStoreWriter(path, CHANNELS, (21, 21)) as writer:
        for start in range(0, n, CHUNK):
            k = min(CHUNK, n - start)
            rows = np.arange(start, start + k)
            stamps = rng.normal(0, 1, (k, 4, 21, 21)).astype(np.float32)
            stamps[rows % 2 == 1, 1:] += 5 * psf
            mask = np.zeros(stamps.shape, bool)
            mask[rows % 100 == 7, :, :, :3] = True
            stamps[mask] = 0.0
            catalog = {
                "object_id": rows.astype(str),
                "source": np.full(k, "benchmark"),
                "candid": rows.astype(np.int64) + 1_000_000_000_000_000_000,
                "ra": rng.uniform(0, 360, k),
                "dec": rng.uniform(-30, 60, k),
            }
            writer.append(stamps, mask, catalog, {"real": (rows % 2).astype(np.int8)})
    return path


def write_checkpoint(path: Path) -> Path:
    """A Deep-HiTS ``hits`` checkpoint with its model card (untrained, seeded weights)."""
    torch.manual_seed(0)
    model = RealBogusModel("hits")
    card = {
        "task": "realbogus",
        "model_name": "benchmark-deep-hits",
        "model_version": f"{__version__}+benchmark",
        "channels": CHANNELS,
        "stamp_shape": [21, 21],
        "seed": 0,
        "data_config": {"fill": "zero", "keep_mask": "none"},
        "threshold": 0.5,
        **model.card_fields(),
    }
    return save_checkpoint(model, path, card)


def score_in_child(ckpt: Path, store: Path, out: Path, batch_size: int, threads: int, device: str) -> dict:
    """Run ``stampflow score`` in a fresh process; its wall time, its own report and its peak RSS
    (``ru_maxrss`` of exactly that child, from ``os.wait4``)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    argv = [sys.executable, "-m", "flows.cli", "score", "--model", str(ckpt), "--store", str(store)]
    argv += ["--out", str(out), "--batch-size", str(batch_size), "--device", device]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout:
        child = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {child.returncode}")
        stdout.seek(0)
        report = json.loads(stdout.read())
    return {
        "stamps": report["n_scored"],
        "stamps_per_s": report["stamps_per_s"],
        "scoring_seconds": report["seconds"],
        "command_wall_seconds": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "catalog_mb": round(out.stat().st_size / 1e6, 2),
        "flagged_masked": report["n_flagged_masked"],
    }


def run(
    n: int = 100_000,
    also: Sequence[int] = (10_000,),
    batch_size: int = 256,
    threads: int = 2,
    device: str = "cpu",
    keep: Path | None = None,
) -> dict:
    """Measure and return the figures of the module docstring (stores of ``also`` and ``n`` stamps)."""
    sizes = sorted({*also, n})
    with tempfile.TemporaryDirectory() as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        ckpt = write_checkpoint(root / "model" / "model.ckpt")
        runs = []
        for size in sizes:
            t0 = time.perf_counter()
            store = write_store(root / f"stamps_{size}.h5", size)
            write_s = time.perf_counter() - t0
            out = root / f"scored_{size}.parquet"
            run_ = score_in_child(ckpt, store, out, batch_size, threads, device)
            runs.append({**run_, "store_write_seconds": round(write_s, 1)})
    main_run = runs[-1]
    return {
        "benchmark": "score",
        "model": "RealBogusModel(hits), 4x21x21",
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": threads,
        "device": device,
        "torch": torch.__version__,
        "batch_size": batch_size,
        "runs": runs,
        "peak_rss_mb": main_run["peak_rss_mb"],
        "stamps_per_s": main_run["stamps_per_s"],
        "meets_peak_target": main_run["peak_rss_mb"] < PEAK_TARGET_MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="stamps in the main store")
    parser.add_argument(
        "--also", type=int, nargs="*", default=[10_000], help="smaller stores, scored first (memory scaling)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="torch device of the scoring process")
    parser.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads of the scoring process")
    parser.add_argument("--keep", type=Path, help="write the stores and catalogs here instead of a temp dir")
    args = parser.parse_args()
    result = run(args.n, args.also, args.batch_size, args.threads, args.device, args.keep)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
