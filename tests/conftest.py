"""Shared test fixtures: paths to the real sample data and small FITS writers."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import fastavro
import numpy as np
import pytest
from astropy.io import fits

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"
ZTF_ALERTS = DATA / "ztf_alerts"
ZTF_TRIPLETS = REPO / "data_catalogs" / "samples" / "ztf_triplets"


os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(autouse=True, scope="session")
def prefect_harness():
    """ONE temporary Prefect server and SQLite database for the whole session (starting Prefect costs 8-18 s,
    so it is started once). Every CLI command runs through its flow, so tests in any folder may need it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def ztf_alert_paths() -> list[Path]:
    """The real ZTF alert packets copied into tests/data/ztf_alerts (not the Rubin ones)."""
    return sorted(p for p in ZTF_ALERTS.glob("*.avro") if not p.name.startswith("1692"))


def read_alert(path: Path) -> dict:
    """The first (only) record of an Avro alert packet."""
    with open(path, "rb") as fh:
        return next(fastavro.reader(fh))


def write_fits(path: Path, data: np.ndarray | None, *, gz: bool = False, **header) -> Path:
    """Write a primary-HDU FITS file (big-endian as FITS requires); optional header keys; gzip if asked."""
    hdu = fits.PrimaryHDU(data)
    for key, value in header.items():
        hdu.header[key] = value
    if gz:
        path.write_bytes(gzip.compress(_hdul_bytes(fits.HDUList([hdu]))))
    else:
        hdu.writeto(path, overwrite=True)
    return path


def _hdul_bytes(hdul: fits.HDUList) -> bytes:
    import io

    buf = io.BytesIO()
    hdul.writeto(buf)
    return buf.getvalue()


def write_mef(path: Path, planes: dict[str, np.ndarray], **primary_header) -> Path:
    """Write a multi-extension FITS file: empty primary + one named image extension per plane."""
    primary = fits.PrimaryHDU()
    for key, value in primary_header.items():
        primary.header[key] = value
    hdus = [primary] + [fits.ImageHDU(arr, name=name) for name, arr in planes.items()]
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path
