"""The one ingest driver and its readers: the registry dispatches every source kind, an input that cannot be
read or named is a reject like any other (counts add up), and a file is hashed once (a digest handed over
is the one the store records)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.ingest import (
    READERS,
    SOURCES,
    AlertSource,
    CutoutSource,
    FitsSource,
    GalaxyZooSource,
    LabelledSource,
    ingest_source,
    open_reader,
    reader_class,
)
from pipeline.store import combined_sha256, open_store, sha256_file
from tests.conftest import ZTF_ALERTS, ZTF_TRIPLETS, write_fits, write_mef
from tests.pipeline.alerts.alert_helpers import manifest
from tests.pipeline.ingest.test_galaxy_zoo_ingest import KAGGLE, KAGGLE_IDS, write_jpeg

GOOD = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6)
#: A file name that is not UTF-8 (a Latin-1 byte), as a str with the byte escaped (PEP 383).
BAD_NAME = os.fsdecode(b"caf\xe9.fits")


def _fits_source(tmp: Path) -> FitsSource:
    shutil.copy(sorted(ZTF_TRIPLETS.glob("*.fits.gz"))[0], tmp)
    return FitsSource(inputs=[tmp], stamp_shape=(63, 63), size_policy="pad")


def _alert_source(tmp: Path) -> AlertSource:
    return AlertSource(inputs=[ZTF_ALERTS / manifest()[0]["file"]])


def _labelled_source(tmp: Path) -> LabelledSource:
    for i in range(2):
        write_mef(tmp / f"c{i}.fits", {"TEMPLATE": GOOD[0] + i, "SCIENCE": GOOD[1]})
    pd.DataFrame({"id": ["c0", "c1"], "real": [1, 0]}).to_csv(tmp / "labels.csv", index=False)
    return LabelledSource(folder=tmp)


def _cutout_source(tmp: Path) -> CutoutSource:
    write_fits(tmp / "img.fits", np.arange(400, dtype=np.float32).reshape(20, 20))
    pd.DataFrame({"x": [10, 3], "y": [10, 4]}).to_csv(tmp / "cat.csv", index=False)
    return CutoutSource(image=tmp / "img.fits", catalog=tmp / "cat.csv", size=5, x_col="x", y_col="y")


def _galaxy_zoo_source(tmp: Path) -> GalaxyZooSource:
    for seed, gid in enumerate(KAGGLE_IDS[:2]):
        write_jpeg(tmp / f"{gid}.jpg", seed)
    return GalaxyZooSource(catalog=KAGGLE, images_dir=tmp)


SOURCE_OF_KIND = {
    "fits": (_fits_source, "fits"),
    "alerts": (_alert_source, "alerts"),
    "labelled": (_labelled_source, "labelled_triplets"),
    "cutouts": (_cutout_source, "cutouts"),
    "galaxy_zoo": (_galaxy_zoo_source, "galaxy_zoo"),
}


def test_every_kind_has_a_model_and_a_reader():
    assert set(READERS) == set(SOURCES) == set(SOURCE_OF_KIND)
    for kind, model in SOURCES.items():
        assert model.model_fields["kind"].default == kind
        reader = reader_class(kind)
        assert isinstance(reader.chunked, bool) and len(reader.progress) == 2
    assert [k for k in READERS if reader_class(k).chunked] == ["fits", "alerts"]
    with pytest.raises(ValueError, match="unknown source kind 'nope'"):
        reader_class("nope")


@pytest.mark.parametrize("kind", sorted(SOURCE_OF_KIND))
def test_the_registry_dispatches_each_kind_to_its_reader(tmp_path, kind):
    make, ingest_attr = SOURCE_OF_KIND[kind]
    folder = tmp_path / "in"
    folder.mkdir()
    source = make(folder)
    assert type(open_reader(source)) is reader_class(kind)
    report = ingest_source(source, tmp_path / "out" / "stamps.h5")
    assert report.n_inputs == report.n_ingested + report.n_rejected and report.n_ingested > 0
    with open_store(report.store) as store:
        assert store.attrs["ingest"] == ingest_attr and len(store.attrs["source_sha256"]) == 64


def _folder_with_bad_inputs(folder: Path) -> dict[str, str]:
    """Three good FITS files, one under a name that is not UTF-8, a link to nothing and a file nobody may
    read (readable anyway when the tests run as root); the reasons the bad ones must get."""
    for i in range(3):
        write_fits(folder / f"good{i}.fits", GOOD + i)
    write_fits(folder / BAD_NAME, GOOD)
    (folder / "gone.fits").symlink_to(folder / "nowhere.fits")
    locked = write_fits(folder / "locked.fits", GOOD + 9)
    locked.chmod(0)
    expected = {"caf\\xe9.fits": "bad_name", "gone.fits": "unreadable"}
    if not os.access(locked, os.R_OK):
        expected["locked.fits"] = "unreadable"
    return expected


def test_unreadable_and_non_utf8_files_are_rejects_and_counts_add_up(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    expected = _folder_with_bad_inputs(folder)
    try:
        report = ingest_source(FitsSource(inputs=[folder]), tmp_path / "out" / "stamps.h5")
    finally:
        (folder / "locked.fits").chmod(0o644)
    assert report.n_inputs == 6 == report.n_ingested + report.n_rejected
    assert report.n_ingested == 6 - len(expected)
    rejects = pd.read_csv(report.rejects)
    assert {Path(s).name: r for s, r in zip(rejects["source"], rejects["reason"], strict=True)} == expected
    with open_store(report.store) as store:
        assert {Path(s).name for s in store.catalog()["source"]} >= {"good0.fits", "good1.fits", "good2.fits"}


def test_a_digest_handed_over_is_the_one_the_store_records(tmp_path):
    paths = [write_fits(tmp_path / f"s{i}.fits", GOOD + i) for i in range(2)]
    source = FitsSource(inputs=paths)
    digests = {str(paths[0]): "a" * 64}  # the flow's hashing; the other file is hashed while read
    report = ingest_source(source, tmp_path / "s.h5", files=paths, digests=digests)
    with open_store(report.store) as store:
        assert store.attrs["source_sha256"] == combined_sha256(["a" * 64, sha256_file(paths[1])])


def test_the_keyword_functions_split_source_fields_from_driver_options(tmp_path):
    from pipeline.ingest import ingest_alerts, ingest_cutouts, ingest_fits

    path = write_fits(tmp_path / "img.fits", np.arange(400, dtype=np.float32).reshape(20, 20))
    table = pd.DataFrame({"x": [10, 3], "y": [10, 4]})
    cut = ingest_cutouts(
        path, table, tmp_path / "c.h5", size=5, x_col="x", y_col="y", rejects_path=tmp_path / "c.csv"
    )
    assert cut.n_ingested == 2 and cut.rejects == str(tmp_path / "c.csv")
    fits_report = ingest_fits([path], tmp_path / "f.h5", stamp_shape=(20, 20), compression="gzip")
    assert fits_report.n_ingested == 1
    alerts = ingest_alerts(
        [ZTF_ALERTS / manifest()[0]["file"]], tmp_path / "a.h5", stamp_shape=None, chunk_rows=1
    )
    with open_store(alerts.store) as store:
        assert store.stamp_shape == tuple(int(v) for v in manifest()[0]["shape_sci"].split("x"))
