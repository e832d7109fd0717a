"""Alert packets into a stamp store through StoreBuilder: real ZTF and Rubin samples, candidate-centred
padding, one survey per store, and bad files rejected with reasons while the rest is ingested."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from data_catalogs.alert_schemas import ALERT_COLUMNS
from pipeline.ingest import AlertSource, ingest_source
from pipeline.store import open_store
from tests.conftest import ZTF_ALERTS
from tests.pipeline.alerts.alert_helpers import manifest, rubin_sample_files


def _rejects(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_ingest_real_ztf_sets(tmp_path):
    sets = [ZTF_ALERTS / "A_ztf-avro-alert", ZTF_ALERTS / "C_fink-broker_local_2020-01-01"]
    report = ingest_source(AlertSource(inputs=sets), tmp_path / "stamps.h5")
    rows = {r["file"].split("/", 1)[1]: r for r in manifest() if r["set"].startswith(("A_", "C_"))}
    assert report.n_inputs == report.n_ingested == len(rows) == 66 and report.n_rejected == 0
    with open_store(tmp_path / "stamps.h5") as store:
        assert store.channels == ["SCIENCE", "TEMPLATE", "DIFFERENCE"] and store.stamp_shape == (63, 63)
        assert store.pixel_scale_arcsec == pytest.approx(1.01)
        assert set(ALERT_COLUMNS) | {"object_id", "source"} <= set(store.catalog_columns)
        catalog = store.catalog()
        stamps, mask = store.stamps(), store.mask().astype(bool)
    assert (catalog["object_id"] == catalog["objectId"]).all()
    for i, rec in catalog.iterrows():
        row = rows[rec["source"].rsplit("/", 1)[1].split("#")[0]]
        assert rec["candid"] == int(row["candid"]) and rec["isdiffpos"] == row["isdiffpos"]
        h, w = (int(v) for v in row["shape_sci"].split("x"))
        pad = 3 * (63 * 63 - h * w)
        masked = sum(int(row[k]) for k in ("nan_sci", "nan_ref", "nan_diff", "n_pix_below_minus1e30"))
        assert mask[i].sum() == masked + pad  # NaN + blank + padding, all masked
        assert (rec["cutout_height"], rec["cutout_width"]) == (h, w)
    assert np.isfinite(stamps).all() and (stamps[mask] == 0).all()


def test_rubin_store_and_one_survey_per_store(tmp_path):
    report = ingest_source(
        AlertSource(inputs=rubin_sample_files(), stamp_shape=(71, 71)), tmp_path / "rubin.h5"
    )
    assert report.n_ingested == 10 and report.n_rejected == 0
    with open_store(tmp_path / "rubin.h5") as store:
        assert store.pixel_scale_arcsec == pytest.approx(0.2) and store.stamp_shape == (71, 71)
        assert set(store.catalog()["survey"]) == {"rubin"}

    mixed = [ZTF_ALERTS / manifest()[0]["file"], *rubin_sample_files()[:3]]
    report = ingest_source(AlertSource(inputs=mixed), tmp_path / "mixed.h5")
    assert (report.n_inputs, report.n_ingested, report.reject_reasons) == (4, 1, {"wrong_survey": 3})


def test_bad_files_are_rejected_and_the_rest_ingested(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good = [ZTF_ALERTS / r["file"] for r in manifest()[:4]]
    for path in good:
        shutil.copy(path, folder)
    (folder / "junk.avro").write_bytes(b"not avro at all")
    data = good[0].read_bytes()
    (folder / "half.avro").write_bytes(data[: len(data) // 2])
    (folder / ".hidden.avro").write_bytes(data)  # hidden: being written elsewhere, never read
    source = AlertSource(inputs=[folder, tmp_path / "missing.avro"], workers=1)
    report = ingest_source(source, tmp_path / "stamps.h5")
    assert report.n_inputs == report.n_ingested + report.n_rejected == 7
    assert report.n_ingested == 4
    assert report.reject_reasons == {"not_avro": 1, "truncated_avro": 1, "unreadable": 1}
    rejects = {r["source"].rsplit("/", 1)[1]: r["reason"] for r in _rejects(report.rejects)}
    assert rejects == {"junk.avro": "not_avro", "half.avro#0": "truncated_avro", "missing.avro": "unreadable"}


def test_size_policy_reject_keeps_edge_stamps_out(tmp_path):
    edge = [ZTF_ALERTS / r["file"] for r in manifest() if r["shape_sci"] != "63x63"]
    full = [ZTF_ALERTS / r["file"] for r in manifest()[:2]]
    report = ingest_source(AlertSource(inputs=[*full, *edge], size_policy="reject"), tmp_path / "s.h5")
    assert report.n_ingested == 2 and report.reject_reasons == {"wrong_shape": len(edge)}
