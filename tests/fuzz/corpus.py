"""Valid inputs the fuzz rounds start from (all from the real samples, or small real files written here),
and running the real ingest driver on them.

- FITS stamps in six layouts made from the real ZTF triplets of ``data_catalogs/samples/ztf_triplets``:
  multi-extension triplets (gzipped as shipped, or plain), single-HDU difference images and ``(3, H, W)``
  cubes with ``CHNAME`` cards, each plain or gzipped;
- :func:`run_ingest`: the real reader of a source model (``pipeline.ingest.open_reader``) through the
  one driver (``pipeline.ingest.driver.ingest``, what ``pipeline.ingest.ingest_source`` does), with any escaping exception
  caught and turned into a problem (the fuzz checks never stop at the first failure).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from pipeline.store import IngestReport, open_store
from tests.conftest import ZTF_TRIPLETS
from tests.fuzz.check import Outcomes, collect, counts_problems, crash_problem, digest, judge, read_rejects

TRIPLET_EXTENSIONS = ["SCIENCE", "TEMPLATE", "DIFFERENCE"]
FITS_LAYOUTS = ("mef_gz", "mef", "single", "single_gz", "cube", "cube_gz")
#: Extensions a FitsSource reads per layout (None: the file's single image HDU).
LAYOUT_EXTENSIONS = {"mef_gz": TRIPLET_EXTENSIONS, "mef": TRIPLET_EXTENSIONS}


@cache
def triplet_files() -> tuple[Path, ...]:
    """The real ZTF triplets of full size (63x63), in name order."""
    out = []
    for path in sorted(ZTF_TRIPLETS.glob("*.fits.gz")):
        with fits.open(path) as hdul:
            if all(hdul[e].data is not None and hdul[e].data.shape == (63, 63) for e in TRIPLET_EXTENSIONS):
                out.append(path)
    return tuple(out)


def _to_bytes(hdul: fits.HDUList) -> bytes:
    buf = io.BytesIO()
    hdul.writeto(buf)
    return buf.getvalue()


@cache
def layout_bytes(path: Path, layout: str) -> bytes:
    """The real triplet ``path`` written in ``layout`` (plain bytes; ``*_gz`` layouts gzip them later)."""
    raw = gzip.decompress(path.read_bytes())
    if layout.startswith("mef"):
        return raw
    with fits.open(io.BytesIO(raw)) as hdul:
        primary = hdul[0].header
        if layout.startswith("single"):
            hdu = fits.PrimaryHDU(np.asarray(hdul["DIFFERENCE"].data, np.float32))
        else:
            cube = np.stack([np.asarray(hdul[e].data, np.float32) for e in TRIPLET_EXTENSIONS])
            hdu = fits.PrimaryHDU(cube)
            for i, name in enumerate(TRIPLET_EXTENSIONS, start=1):
                hdu.header[f"CHNAME{i}"] = name
        for key in ("OBJECTID", "RA", "DEC"):
            hdu.header[key] = primary[key]
        return _to_bytes(fits.HDUList([hdu]))


def suffix_of(layout: str) -> str:
    return ".fits.gz" if layout.endswith("gz") else ".fits"


def file_bytes(path: Path, layout: str) -> bytes:
    """The bytes of the file written for ``layout`` (gzipped for ``*_gz``)."""
    raw = layout_bytes(path, layout)
    return gzip.compress(raw, mtime=0) if layout.endswith("gz") else raw


def hex_name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), 10))


def store_items(report: IngestReport | None) -> list[tuple[str, str]]:
    """``(source, digest of pixels and mask)`` of every row of the report's store."""
    if report is None or report.store is None or not Path(report.store).exists():
        return []
    with open_store(report.store) as store:
        catalog = store.catalog()
        stamps, mask = store.stamps(), store.mask()
        return [(str(catalog["source"].iat[i]), digest(stamps[i], mask[i])) for i in range(len(catalog))]


def run_ingest(
    source: Any, out: Path, key_of: Callable[[str], str | None], cases: list | None = None, **options: Any
) -> tuple[Outcomes | None, list[str]]:
    """Ingest ``source`` into ``out`` with the real driver (``options``: reader options, e.g. a table);
    ``(outcomes by case key, problems)``: a crash (outcomes None), and (given ``cases``) counts that do not
    add up."""
    from pipeline.ingest import open_reader
    from pipeline.ingest.driver import ingest

    try:
        report = ingest(open_reader(source, **options), out)
    except Exception as err:  # the point of the suite: nothing may escape
        return None, [crash_problem(err)]
    outcomes = collect(store_items(report), read_rejects(report.rejects), key_of)
    problems = []
    if cases is not None:
        problems = counts_problems(report.n_inputs, report.n_ingested, report.n_rejected, outcomes, cases)
    return outcomes, problems


def clean_digests(outcomes: Outcomes | None) -> dict[str, str]:
    """key -> digest of the inputs ingested once in a clean run."""
    return {} if outcomes is None else {k: d[0] for k, d in outcomes.ingested.items() if len(d) == 1}


def judged(cases: list, outcomes: Outcomes | None, clean: Outcomes | None) -> list[str]:
    """:func:`tests.fuzz.check.judge` of a run that did not crash (a crash is its own problem)."""
    return [] if outcomes is None else judge(cases, outcomes, clean_digests(clean))


def ingest_and_judge(
    source: Any,
    out: Path,
    key_of: Callable[[str], str | None],
    cases: list,
    clean: Outcomes | None,
    restore: Path | None = None,
) -> list[str]:
    """Ingest a mixed round (:func:`run_ingest`) and judge every case against the clean run
    (:func:`judged`); the problems of both. ``restore``: a folder whose mode-000 files get their
    permissions back afterwards, whatever happened."""
    from tests.fuzz.mutate import restore_modes

    try:
        outcomes, counted = run_ingest(source, out, key_of, cases)
    finally:
        if restore is not None:
            restore_modes(restore)
    return counted + judged(cases, outcomes, clean)
