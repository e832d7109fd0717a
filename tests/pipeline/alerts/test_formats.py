"""Every format brokers keep alerts in (issue 20 item 4), on real alerts: Avro containers with every codec
fastavro knows, made from real packets, decode to the null-codec file's alerts; Fink's Parquet rows (ZTF
3.3/4.02, Rubin lsst.v10_0), a Rubin lsst.v10_0 Avro packet and a braai JSON alert (tests/data/ztf_alerts/
F_formats) decode with their manifest fields; a Parquet row and the Avro packet of the same alert give the
same Alert; unreadable files and rows get their named reasons; a duplicated packet is scored and ingested
once and counted as ``duplicate``."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import shutil

import fastavro
import numpy as np
import pandas as pd
import pytest

from models.checkpoints import load_checkpoint
from pipeline.alerts import (
    alert_format,
    decode_alert_bytes,
    decode_alert_file,
    expand_alert_inputs,
    is_alert_name,
    read_alerts,
    read_header,
    score_alert_files,
)
from pipeline.alerts.frames import score_alert_frame
from pipeline.ingest.alert_packets import ingest_alerts
from pipeline.scoring import Scorer
from tests.conftest import ZTF_ALERTS
from tests.pipeline.alerts.alert_helpers import manifest, write_ztf_checkpoint

FORMATS = ZTF_ALERTS / "F_formats"
#: The same real alert as a Fink Avro packet and as a row of a Fink Parquet file.
SAME_AVRO = FORMATS / "fink-client_1786109905715015005.avro"
SAME_PARQUET = FORMATS / "fink-science_2439886a_superluminous_test_alerts_row18.parquet"
BRAAI = FORMATS / "braai_dbf2c6a3_714287740515015072.json"
RUBIN_PARQUET = FORMATS / "rubin_fink-science_7fcbc67a_rubin_sample_data_10_0_rows0-2.parquet"
CODECS = ("deflate", "snappy", "zstandard", "bzip2", "xz", "lz4")


def _same_row(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def _same_alerts(got, want) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert _same_row(g.row, w.row), (g.source, w.source)
        np.testing.assert_array_equal(g.pixels, w.pixels)
        np.testing.assert_array_equal(g.mask, w.mask)


# ------------------------------------------------------------------------------------------- Avro codecs
@pytest.fixture(scope="module")
def container(tmp_path_factory):
    """Six real ZTF 3.3 packets of set C (one writer schema) written into one container per codec."""
    rows = [r for r in manifest() if r["file"].startswith("C_")][:6]
    schema, records = None, []
    for row in rows:
        with open(ZTF_ALERTS / row["file"], "rb") as fh:
            reader = fastavro.reader(fh)
            schema = schema or reader.writer_schema
            records.extend(reader)
    folder = tmp_path_factory.mktemp("codecs")
    paths = {}
    for codec in ("null", *CODECS):
        paths[codec] = folder / f"six-{codec}.avro"
        with open(paths[codec], "wb") as fh:
            fastavro.writer(fh, fastavro.parse_schema(schema), records, codec=codec, sync_interval=100_000)
    return paths, [int(r["candid"]) for r in rows]


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_decodes_to_the_null_codec_alerts(container, codec):
    paths, candids = container
    data = paths[codec].read_bytes()
    assert read_header(data, codec)[1] == codec  # really written with that codec
    reference = decode_alert_file(paths["null"])
    decoded = decode_alert_file(paths[codec])
    assert reference.rejects == [] and decoded.rejects == []
    assert [a.row["candid"] for a in decoded.alerts] == candids
    assert [a.source.rsplit("#", 1)[1] for a in decoded.alerts] == [str(i) for i in range(len(candids))]
    _same_alerts(decoded.alerts, reference.alerts)


# --------------------------------------------------------------------------------- Parquet, JSON, v10
def _formats_manifest() -> list[dict[str, str]]:
    with open(FORMATS / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _value(text: str) -> float:
    return float(text) if text else math.nan


def test_fink_parquet_rubin_v10_and_json_alerts_decode_with_their_fields():
    rows = _formats_manifest()
    formats = {alert_format(b"", ZTF_ALERTS / r["file"]) for r in rows}
    assert formats == {"parquet", "avro", "json"}
    assert {r["schemavsn"] for r in rows} >= {"4.02", "3.3", "3.2", "lsst.v10_0"}
    alerts, rejects = read_alerts([FORMATS])
    assert rejects == []
    by_source = {a.source: a for a in alerts}
    for m in rows:
        alert = by_source[f"{ZTF_ALERTS / m['file']}#{m['row']}"]
        row = alert.row
        assert row["candid"] == int(m["candid"]) and row["schemavsn"] == m["schemavsn"]
        assert row["survey"] == ("rubin" if m["survey"] == "LSST" else "ztf")
        if row["survey"] == "ztf":
            assert row["objectId"] == m["objectId"] and row["isdiffpos"] == m["isdiffpos"]
        for name in ("rb", "drb", "reliability", "jd"):
            assert row[name] == pytest.approx(_value(m[name]), rel=1e-12, nan_ok=True), (m["file"], name)
        assert alert.pixels.shape == (3, *map(int, m["shape_sci"].split("x")))
        assert int(alert.mask[0].sum()) == int(m["nan_sci"])
    # every row of the Parquet files is an input: the 2-row Rubin file gives 2 alerts, rows 0 and 1
    assert sorted(s for s in by_source if s.startswith(str(RUBIN_PARQUET))) == [
        f"{RUBIN_PARQUET}#0",
        f"{RUBIN_PARQUET}#1",
    ]


def test_a_parquet_row_and_the_avro_packet_of_one_alert_decode_alike():
    avro, parquet = decode_alert_file(SAME_AVRO), decode_alert_file(SAME_PARQUET)
    assert avro.rejects == parquet.rejects == []
    assert avro.alerts[0].row["candid"] == 1786109905715015005
    _same_alerts(parquet.alerts, avro.alerts)


def test_json_alerts_as_array_lines_and_plain_base64_decode_alike(tmp_path):
    one = decode_alert_file(BRAAI)
    assert one.rejects == [] and one.alerts[0].row["objectId"] == "ZTF18acrkaks"
    item = json.loads(BRAAI.read_text())
    plain = {**item}  # cutouts as plain base64 strings, candid as extended JSON
    plain["candid"] = {"$numberLong": str(item["candid"])}
    for field in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
        plain[field] = {**item[field], "stampData": item[field]["stampData"]["$binary"]}
    (tmp_path / "array.json").write_text(json.dumps([item, plain]))
    (tmp_path / "lines.json").write_text(json.dumps(item) + "\n" + json.dumps(plain) + "\n")
    for name in ("array.json", "lines.json"):
        decoded = decode_alert_file(tmp_path / name)
        assert decoded.rejects == [] and len(decoded.alerts) == 2
        _same_alerts(decoded.alerts, one.alerts * 2)


# ------------------------------------------------------------------------------------- named rejects
def test_unreadable_files_and_rows_have_their_own_reasons(tmp_path):
    parquet = RUBIN_PARQUET.read_bytes()
    cases = {
        "junk.parquet": (b"not parquet", {"not_parquet"}),
        "cut.parquet": (parquet[: len(parquet) // 2], {"truncated_parquet"}),
        "junk.json": (b"not json", {"not_json"}),
        "cut.json": (BRAAI.read_bytes()[:5000], {"not_json"}),
    }
    for name, (data, reasons) in cases.items():
        decoded = decode_alert_bytes(data, name)
        assert decoded.alerts == [] and {r.reason for r in decoded.rejects} == reasons, name
        assert all(r.source == name and name in r.error for r in decoded.rejects)
    # a corrupt data page: each row of its row group is that row's reject, never the file's end
    start = len(parquet) // 10
    flipped = parquet[:start] + bytes(b ^ 0xFF for b in parquet[start : start + 64]) + parquet[start + 64 :]
    decoded = decode_alert_bytes(flipped, "flipped.parquet")
    assert [(r.source, r.reason) for r in decoded.rejects] == [
        ("flipped.parquet#0", "truncated_parquet"),
        ("flipped.parquet#1", "truncated_parquet"),
    ]
    # Parquet that is not alerts: one reject; a JSON alert whose cutout is not base64: that alert's
    buf = io.BytesIO()
    pd.DataFrame({"a": [1, 2]}).to_parquet(buf)
    assert [r.reason for r in decode_alert_bytes(buf.getvalue(), "table.parquet").rejects] == [
        "unknown_schema"
    ]
    item = json.loads(BRAAI.read_text())
    item["cutoutTemplate"]["stampData"] = "%%% not base64"
    both = json.dumps([item, json.loads(BRAAI.read_text())]).encode()
    decoded = decode_alert_bytes(both, "two.json")
    assert len(decoded.alerts) == 1 and [(r.source, r.reason) for r in decoded.rejects] == [
        ("two.json#0", "not_json")
    ]
    assert "cutoutTemplate" in decoded.rejects[0].error


def test_folders_list_parquet_and_json_alert_files(tmp_path):
    for name in ("a.avro", "b.PARQUET", "c.json", "d.parquet.partial", ".e.json", "f.csv"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in expand_alert_inputs([tmp_path])] == ["a.avro", "b.PARQUET", "c.json"]
    assert is_alert_name("x.snappy.parquet") and not is_alert_name("x.json.tmp")
    # a file is read by its content, whatever its name says
    assert alert_format(SAME_PARQUET.read_bytes()[:8], "renamed.avro") == "parquet"
    assert alert_format(base64.b64encode(b"x"), "x.json") == "json"


# ------------------------------------------------------------------------------------------ duplicates
@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    module, card = load_checkpoint(write_ztf_checkpoint(tmp_path_factory.mktemp("model") / "model.ckpt"))
    return Scorer(module, card)


@pytest.fixture
def duplicated(tmp_path):
    """A real packet, its byte copy under another name, and the same alert as a Fink Parquet row."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAME_AVRO, folder / "a.avro")
    shutil.copy(SAME_AVRO, folder / "b-copy.avro")
    shutil.copy(SAME_PARQUET, folder / "c.parquet")
    shutil.copy(BRAAI, folder / "d.json")  # another alert
    return folder


def test_a_duplicated_packet_is_scored_once_and_counted(scorer, duplicated, tmp_path):
    report = score_alert_files([duplicated], scorer, tmp_path / "out")
    assert (report.n_inputs, report.n_scored, report.n_rejected, report.n_duplicates) == (4, 2, 2, 2)
    assert report.reject_reasons == {"duplicate": 2}
    scored = pd.read_parquet(tmp_path / "out" / "scored.parquet")
    assert sorted(scored["candid"]) == [714287740515015072, 1786109905715015005]
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv")
    assert [s.rsplit("/", 1)[1] for s in rejects["source"]] == ["b-copy.avro#0", "c.parquet#0"]
    assert all(f"duplicate of {duplicated / 'a.avro'}#0" in e for e in rejects["error"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_inputs"] == summary["n_scored"] + summary["n_rejected"] == 4


def test_a_duplicated_packet_is_ingested_once_and_counted(duplicated, tmp_path):
    report = ingest_alerts([duplicated], tmp_path / "stamps.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (4, 2, 2)
    assert report.reject_reasons == {"duplicate": 2}
    rejects = pd.read_csv(report.rejects)
    assert all(f"duplicate of {duplicated / 'a.avro'}#0" in e for e in rejects["error"])


def test_a_repeated_frame_row_is_scored_once(scorer):
    with open(SAME_AVRO, "rb") as fh:
        rec = next(fastavro.reader(fh))
    row = {
        k: rec[k]
        for k in ("objectId", "candid", "candidate", "cutoutScience", "cutoutTemplate", "cutoutDifference")
    }
    result = score_alert_frame(pd.DataFrame([row, row]), scorer)
    assert list(result["reason"]) == ["", "duplicate"] and "duplicate of row 0" in result.loc[1, "error"]
    assert np.isfinite(result["rb"].iloc[0]) and np.isnan(result["rb"].iloc[1])
    assert list(result["candid"]) == [1786109905715015005] * 2
