"""pipeline.ingest.fits_stamps: a folder of good and bad FITS stamps; counts add up; size and channel policies."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from pipeline.ingest import FitsSource, ingest_source
from pipeline.store import open_store
from tests.conftest import ZTF_TRIPLETS, write_fits, write_mef

GOOD = np.arange(3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)


def _bad_inputs(folder):
    """One file per kind of bad input, with the reason each must get."""
    write_fits(folder / "wrong_channels.fits", GOOD[:2])
    write_fits(folder / "small.fits", GOOD[:, :6, :5])
    write_fits(folder / "big.fits", np.ones((3, 10, 10), np.float32))
    write_fits(folder / "empty.fits", None)
    (folder / "text.fits").write_text("hello")
    raw = write_fits(folder / "tmp.fits.gz", GOOD, gz=True).read_bytes()
    (folder / "tmp.fits.gz").unlink()
    (folder / "truncated.fits.gz").write_bytes(raw[: len(raw) // 2])
    return {
        "wrong_channels.fits": "wrong_channels",
        "small.fits": "wrong_shape",
        "big.fits": "wrong_shape",
        "empty.fits": "empty_hdu",
        "text.fits": "not_fits",
        "truncated.fits.gz": "truncated_gzip",
    }


def test_folder_with_every_bad_input_goes_on(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        # "a_" sorts first: when no --stamp-size is given, the first readable stamp sets the store shape
        write_fits(folder / f"a_good{i}.fits", GOOD + i, OBJECT=f"gal{i}", RA=10.0 + i, DEC=-5.0)
    expected = _bad_inputs(folder)
    source = FitsSource(inputs=[folder, tmp_path / "missing.fits"])
    report = ingest_source(source, tmp_path / "out" / "stamps.h5")
    assert report.n_inputs == 12 and report.n_ingested == 5 and report.n_rejected == 7
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv")
    got = {p.split("/")[-1]: r for p, r in zip(rejects["source"], rejects["reason"], strict=True)}
    assert got == {**expected, "missing.fits": "unreadable"}
    assert rejects["error"].str.len().min() > 10
    with open_store(tmp_path / "out" / "stamps.h5") as store:
        cat = store.catalog()
        assert sorted(cat["object_id"]) == [f"gal{i}" for i in range(5)]
        assert sorted(cat["ra"]) == [10.0, 11.0, 12.0, 13.0, 14.0]
        assert store.channels == ["0", "1", "2"]
        np.testing.assert_array_equal(store.stamps()[cat["object_id"].tolist().index("gal3")], GOOD + 3)


def test_pad_policy_pads_smaller_and_still_rejects_bigger(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_fits(folder / "a.fits", GOOD)
    write_fits(folder / "b_small.fits", GOOD[:, :6, :5])
    write_fits(folder / "c_big.fits", np.ones((3, 10, 10), np.float32))
    source = FitsSource(inputs=[folder], size_policy="pad", stamp_shape=(8, 8))
    report = ingest_source(source, tmp_path / "s.h5")
    assert (report.n_ingested, report.n_rejected) == (2, 1)
    assert report.reject_reasons == {"wrong_shape": 1}
    with open_store(tmp_path / "s.h5") as store:
        small = store.catalog()["source"].str.endswith("b_small.fits").to_numpy().nonzero()[0][0]
        mask = store.mask()[small]
        assert mask.sum() == 3 * (64 - 30)
        np.testing.assert_array_equal(store.stamps()[small][:, 1:7, 1:6], GOOD[:, :6, :5])


def test_multi_extension_channel_names_must_match(tmp_path):
    planes = {"SCIENCE": GOOD[0], "TEMPLATE": GOOD[1]}
    write_mef(tmp_path / "a.fits", planes)
    write_mef(tmp_path / "b.fits", {"SCIENCE": GOOD[0], "DIFFERENCE": GOOD[1]})
    source = FitsSource(inputs=[tmp_path / "a.fits", tmp_path / "b.fits"])
    report = ingest_source(source, tmp_path / "s.h5")
    assert report.n_ingested == 1 and report.reject_reasons == {"wrong_channels": 1}


def test_real_ztf_triplets_with_edge_stamps_padded(tmp_path):
    names = ["472263571115090000", "396522680015040001", "472263571115115014", "1095578116115010003"]
    folder = tmp_path / "ztf"
    folder.mkdir()
    for name in names:
        shutil.copy(ZTF_TRIPLETS / f"{name}.fits.gz", folder)
    rejected = ingest_source(FitsSource(inputs=[folder], stamp_shape=(63, 63)), tmp_path / "r.h5")
    assert rejected.n_ingested == 2 and rejected.reject_reasons == {"wrong_shape": 2}
    source = FitsSource(
        inputs=[folder], stamp_shape=(63, 63), size_policy="pad", header_keys=["CANDID", "RB"]
    )
    report = ingest_source(source, tmp_path / "p.h5")
    assert report.n_ingested == 4 and report.n_rejected == 0
    with open_store(tmp_path / "p.h5") as store:
        cat = store.catalog()
        assert store.channels == ["SCIENCE", "TEMPLATE", "DIFFERENCE"]
        assert sorted(cat["candid"]) == sorted(names)
        assert cat["object_id"].str.startswith("ZTF").all()
        edge = cat["candid"].tolist().index("396522680015040001")  # 41x63 with 160 NaN per plane
        assert store.mask()[edge, 0].sum() == (63 - 41) * 63 + 160
        assert np.isfinite(store.stamps()).all() and store.stamps().min() > -1e30
        assert len(store.attrs["source_sha256"]) == 64
