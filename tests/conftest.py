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
#: The packets of tests/data/ztf_alerts/SOURCE.md's first table that are ZTF's (the other two are Rubin's).
ZTF_CUTOUT_CASES = (
    "A_ztf-avro-alert/020d9225_472263571115090000.avro",
    "C_fink-broker_local_2020-01-01/1095578116115010003.avro",
    "A_ztf-avro-alert/2b4af549_472263571115115014.avro",
    "A_ztf-avro-alert/66374471_396522680015025001.avro",
    "B_fink-broker_datasim_2018-11-29/697252845015015004.avro",
    "A_ztf-avro-alert/7a0e26c2_396522680015040001.avro",
    "A_ztf-avro-alert/a4fa6a45_472263571115115000.avro",
)
ZTF_TRIPLETS = REPO / "data_catalogs" / "samples" / "ztf_triplets"


os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_harness():
    """ONE temporary Prefect server and SQLite database for the whole session (starting Prefect costs 8-18 s,
    so it is started once, and only when a test that runs a flow is collected: see
    :func:`pytest_collection_modifyitems`)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/flows, and tests marked ``prefect`` (a CLI command runs through its flow), get the
    Prefect harness; pure library tests never start it."""
    flows_dir = TESTS / "flows"
    for item in items:
        needs = item.get_closest_marker("prefect") or flows_dir in Path(item.fspath).parents
        if needs and "prefect_harness" not in item.fixturenames:
            item.fixturenames.insert(0, "prefect_harness")  # first: fixtures that run flows come after it


@pytest.fixture(scope="session")
def ztf_alert_paths() -> list[Path]:
    """Seven real ZTF alert packets that cover the cutout cases (tests/data/ztf_alerts/SOURCE.md, first table):
    normal and CCD-edge stamps, NaN and blank-sentinel pixels, isdiffpos t and f, schema 3.3 with drb."""
    return [ZTF_ALERTS / name for name in ZTF_CUTOUT_CASES]


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
