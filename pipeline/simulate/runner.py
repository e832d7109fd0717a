"""Deterministic, chunked, parallel execution shared by the simulators.

Every simulated object gets its own random streams derived from ``(seed, index)`` only
(:func:`object_rngs`), so an output never depends on the number of worker processes or the chunk size.
Files are written byte-reproducibly (:func:`write_fits`: no time stamps, gzip header mtime 0).
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import galsim
import numpy as np
from astropy.io import fits
from tqdm import tqdm

from pipeline.io import atomic_path


def object_rngs(seed: int, index: int, stream: int = 0) -> tuple[np.random.Generator, galsim.BaseDeviate]:
    """Independent random streams for object ``index`` of a run with ``seed``.

    Args:
        seed: the run's seed (non-negative int).
        index: the object's index in the run (non-negative int).
        stream: extra key to get further independent streams for the same object.

    Returns:
        ``(numpy Generator, galsim.BaseDeviate)``, both seeded from ``SeedSequence(seed, spawn_key=(index,
        stream))``.
    """
    sequence = np.random.SeedSequence(int(seed), spawn_key=(int(index), int(stream)))
    gs_seed = int(sequence.generate_state(1, dtype=np.uint32)[0]) % (2**31 - 2) + 1
    return np.random.default_rng(sequence), galsim.BaseDeviate(gs_seed)


def chunk_ranges(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in chunks of at most ``chunk_size``."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def run_chunks(
    func: Callable[..., list[dict[str, Any]]],
    n: int,
    *,
    chunk_size: int,
    workers: int,
    progress: bool,
    desc: str,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Call ``func(start, stop, **kwargs)`` for every chunk of ``range(n)`` and gather the rows it returns.

    ``func`` must be a module-level function (picklable) that returns one dict per object with an
    ``index`` key. Chunks run in ``workers`` processes (in this process when ``workers <= 1``); a tqdm bar
    counts objects. The rows come back sorted by ``index``, whatever the completion order.
    """
    rows: list[dict[str, Any]] = []
    chunks = chunk_ranges(n, chunk_size)
    with tqdm(total=n, desc=desc, unit="obj", disable=not progress, smoothing=0.1) as bar:
        if workers <= 1 or len(chunks) <= 1:
            for start, stop in chunks:
                rows.extend(func(start, stop, **kwargs))
                bar.update(stop - start)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
                futures = {pool.submit(func, start, stop, **kwargs): stop - start for start, stop in chunks}
                for future in as_completed(futures):
                    rows.extend(future.result())
                    bar.update(futures[future])
    return sorted(rows, key=lambda row: row["index"])


def write_fits(
    hdul: fits.HDUList, path: str | os.PathLike, compress: bool | None = None, verify: bool = True
) -> Path:
    """Write an HDU list byte-reproducibly; gzip it (header mtime 0, no file name) when ``compress`` or
    the path ends in ``.gz``. Writes to a temporary name and renames, so no half file is left behind.
    ``verify=False`` skips astropy's output verification (half the cost of writing a small file) for HDU
    lists that astropy built and verified before."""
    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".gz")
    buffer = io.BytesIO()
    hdul.writeto(buffer, output_verify="exception" if verify else "ignore")
    data = buffer.getvalue()
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=6) as gz:
                gz.write(data)
        else:
            fh.write(data)
    return path
