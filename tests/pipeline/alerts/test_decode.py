"""Reading real alert packets: every sample file in tests/data/ztf_alerts (ZTF pre-2.0 .. 3.5 from
ztf-avro-alert and Fink, Rubin lsst.v9_0) decoded and checked against manifest.csv / manifest_rubin.csv; the
fast decode equals fastavro + gzip + astropy; the isdiffpos convention on the real stamps; CCD-edge padding;
many packets per file; bad input rejected per packet with its reason."""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib

import fastavro
import numpy as np
import pytest
from astropy.io import fits

from data_catalogs.alert_schemas import CUTOUT_FIELDS, DIFF_SIGN
from pipeline.alerts import (
    AlertDecoder,
    conform,
    decode_alert_bytes,
    decode_alert_file,
    decode_cutout,
    expand_alert_inputs,
    fits_bytes,
    is_alert_name,
    read_alerts,
    read_header,
    simple_primary_layout,
)
from tests.conftest import ZTF_ALERTS
from tests.pipeline.alerts.alert_helpers import manifest, rubin_sample_files, ztf_sample_files

pytestmark = pytest.mark.filterwarnings("ignore:Found a SIMPLE card")  # real ZTF headers, astropy path


def _records(path):
    """(writer schema, records) of a file, read with plain fastavro (the reference)."""
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        return reader.writer_schema, list(reader)


def _plain_cutout(data: bytes) -> np.ndarray:
    """The reference decode of a cutout: gzip (if gzipped) + astropy, primary HDU data as float32."""
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    with fits.open(io.BytesIO(raw)) as hdul:
        return hdul[0].data.astype(np.float32)


def _container(schema, records, codec="null") -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, schema, records, codec=codec)
    return buf.getvalue()


def _float_equal(a, b) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return a == pytest.approx(float(b), rel=1e-12, abs=0)


# ------------------------------------------------------------------------------------- the real samples
def test_every_sample_file_is_copied_and_decoded():
    # F_formats (Parquet, JSON, lsst.v10_0) has its own manifest and tests: test_formats.py
    sets = [p for p in ZTF_ALERTS.iterdir() if p.is_dir() and p.name != "F_formats"]
    files = expand_alert_inputs(sets)
    in_manifests = {ZTF_ALERTS / r["file"] for r in manifest()} | set(rubin_sample_files())
    assert in_manifests <= set(files) and len(in_manifests) == 107
    alerts, rejects = read_alerts(sets)
    assert rejects == [] and len(alerts) == len(files) == 107


def test_ztf_fields_and_shapes_match_the_manifest():
    rows = manifest()
    assert len(rows) == 97
    for row in rows:
        decoded = decode_alert_file(ZTF_ALERTS / row["file"])
        assert decoded.rejects == [] and len(decoded.alerts) == int(row["n_alerts_in_file"]) == 1
        alert = decoded.alerts[0]
        got = alert.row
        assert got["survey"] == "ztf" and got["schemavsn"] == row["schemavsn"]
        assert got["objectId"] == row["objectId"] and got["candid"] == int(row["candid"])
        assert got["fid"] == int(row["fid"]) and got["band"] == {1: "g", 2: "r", 3: "i"}[got["fid"]]
        assert got["isdiffpos"] == row["isdiffpos"] and got["nbad"] == int(row["nbad"])
        assert got["rbversion"] == row["rbversion"] and got["drbversion"] == row["drbversion"]
        for name in ("jd", "magpsf", "rb", "ssdistnr", "drb"):
            assert _float_equal(got[name], float(row[name]) if row[name] else math.nan), (row["file"], name)
        h, w = (int(v) for v in row["shape_sci"].split("x"))
        assert row["shape_ref"] == row["shape_diff"] == row["shape_sci"]
        assert alert.pixels.shape == alert.mask.shape == (3, h, w)
        assert (got["cutout_height"], got["cutout_width"]) == (h, w)
        # masked = NaN in each cutout + blank sentinels (the manifest counts those over the triplet)
        nan_total = sum(int(row[k]) for k in ("nan_sci", "nan_ref", "nan_diff"))
        assert int(alert.mask.sum()) == nan_total + int(row["n_pix_below_minus1e30"]), row["file"]
        assert np.isfinite(alert.pixels).all() and alert.pixels.dtype == np.float32
        assert (alert.pixels[alert.mask] == 0).all()


def test_rubin_fields_and_shapes_match_the_manifest():
    rows = manifest("manifest_rubin.csv")
    assert len(rows) == 10
    for row in rows:
        (alert,) = decode_alert_file(ZTF_ALERTS / row["file"]).alerts
        got = alert.row
        assert got["survey"] == "rubin" and got["schemavsn"] == row["lsst_schema_version"] == "lsst.v9_0"
        assert got["candid"] == int(row["diaSourceId"]) and got["band"] == row["band"]
        assert got["jd"] == pytest.approx(float(row["midpointMjdTai"]) + 2400000.5, abs=1e-9)
        assert got["reliability"] == pytest.approx(float(row["reliability"]), rel=1e-7)
        assert math.isnan(got["rb"]) and math.isnan(got["drb"]) and got["diff_sign"] == 1 and got["fid"] == -1
        for field, channel in zip(
            ("cutoutScience", "cutoutTemplate", "cutoutDifference"), range(3), strict=True
        ):
            primary = row[field].split("|")[0]  # PRIMARY:32x32 - the image; UNCERT and PSFIMAGE are not read
            assert primary.startswith("PRIMARY:")
            assert "x".join(map(str, alert.pixels[channel].shape)) == primary.split(":")[1]


def test_fast_decode_equals_fastavro_gzip_astropy_on_every_sample():
    """The acceptance check behind the benchmark: same pixels, same NaN/blank positions, same fields."""
    for path in [*ztf_sample_files(), *rubin_sample_files()]:
        _, records = _records(path)
        (alert,) = decode_alert_file(path).alerts
        for channel, field in enumerate(CUTOUT_FIELDS):
            cutout = records[0][field]
            data = cutout["stampData"] if isinstance(cutout, dict) else cutout
            assert simple_primary_layout(fits_bytes(data, "x")) is not None  # the fast path was taken
            plain = _plain_cutout(data)
            bad = ~np.isfinite(plain) | (np.abs(plain) >= 1e30)
            np.testing.assert_array_equal(alert.mask[channel], bad)
            np.testing.assert_array_equal(alert.pixels[channel][~bad], plain[~bad])
            slow_pixels, slow_mask = decode_cutout(data, "x", fast=False)  # astropy (pipeline.io.fits)
            np.testing.assert_array_equal(slow_pixels, alert.pixels[channel])
            np.testing.assert_array_equal(slow_mask, alert.mask[channel])
        if alert.row["survey"] == "ztf":
            cand = records[0]["candidate"]
            for name in ("ra", "dec", "magpsf", "xpos", "ypos"):
                assert alert.row[name] == cand[name]


def test_isdiffpos_convention_on_the_real_stamps():
    """'t': difference = science - reference (*_scimref); 'f': reference - science (*_refmsci); either
    way the candidate is positive in the difference stamp."""
    agree = 0
    rows = manifest()
    for row in rows:
        path = ZTF_ALERTS / row["file"]
        (alert,) = decode_alert_file(path).alerts
        sign = alert.row["diff_sign"]
        assert sign == DIFF_SIGN[row["isdiffpos"]]
        name = row["diff_fileName"]
        assert ("scimref" in name and sign == 1) or ("refmsci" in name and sign == -1)
        _, records = _records(path)
        assert records[0]["cutoutDifference"]["fileName"] == name
        # physics: the difference correlates with (science - scaled template) with the sign diff_sign
        sci, ref, diff = (np.where(alert.mask[c], np.nan, alert.pixels[c]) for c in range(3))
        box = (slice(27, 36), slice(27, 36)) if alert.pixels.shape[1:] == (63, 63) else None
        if box is None:
            continue
        s = np.nan_to_num(sci[box] - np.nanmedian(sci)).ravel()
        t = np.nan_to_num(ref[box] - np.nanmedian(ref)).ravel()
        d = np.nan_to_num(diff[box] - np.nanmedian(diff))
        corr = np.corrcoef(s - t * (s @ t) / (t @ t), d.ravel())[0, 1]
        assert corr * sign > -0.5, row["file"]  # never clearly the other way
        agree += corr * sign > 0.5
        assert d.sum() > 0, row["file"]  # the candidate is positive in the stamp
    assert agree >= 0.6 * len(rows)


def test_isdiffpos_one_and_zero_of_early_packets():
    schema, records = _records(ZTF_ALERTS / manifest()[0]["file"])
    early = [dict(records[0], candidate={**records[0]["candidate"], "isdiffpos": v}) for v in ("1", "0")]
    decoded = decode_alert_bytes(_container(schema, early), "early.avro")
    assert [a.row["isdiffpos"] for a in decoded.alerts] == ["1", "0"]
    assert [a.row["diff_sign"] for a in decoded.alerts] == [1, -1]


def test_edge_stamps_are_padded_with_the_candidate_centred():
    """41x63 (cut at the bottom, ypos 10.4), 45x63 (ypos 13.9), 63x53 (cut at the right, xpos 3051)."""
    expected_offsets = {"41x63": (22, 0), "45x63": (18, 0), "63x53": (0, 0)}
    for row in manifest():
        if row["shape_sci"] not in expected_offsets or "396522680015040001" in row["file"]:
            continue  # 396522680015040001: a bogus whose peak is off centre; checked for the offset only below
        (alert,) = decode_alert_file(ZTF_ALERTS / row["file"]).alerts
        pixels, mask = conform(alert.pixels, alert.mask, (63, 63), alert.row)
        top, left = expected_offsets[row["shape_sci"]]
        h, w = alert.pixels.shape[1:]
        assert pixels.shape == mask.shape == (3, 63, 63)
        np.testing.assert_array_equal(pixels[:, top : top + h, left : left + w], alert.pixels)
        assert mask.sum() == alert.mask.sum() + 3 * (63 * 63 - h * w)
        diff = pixels[2]
        peak = np.unravel_index(np.argmax(diff[20:43, 20:43]), (23, 23))
        assert abs(peak[0] + 20 - 31) <= 1 and abs(peak[1] + 20 - 31) <= 1, row["file"]
    (alert,) = decode_alert_file(ZTF_ALERTS / "A_ztf-avro-alert/7a0e26c2_396522680015040001.avro").alerts
    pixels, mask = conform(alert.pixels, alert.mask, (63, 63), alert.row)
    assert mask[:, :22].all() and not mask[:, 22:].all()  # the 22 missing rows are below the stamp


def test_rubin_stamps_pad_centred_and_larger_ones_are_refused():
    alerts = [decode_alert_file(p).alerts[0] for p in rubin_sample_files()]
    small = next(a for a in alerts if a.pixels.shape[1] == 30)
    _pixels, mask = conform(small.pixels, small.mask, (63, 63), small.row)
    assert mask[:, :16].all() and mask[:, 46:].all() and not mask[:, 16:46, 16:46].all()
    big = next(a for a in alerts if a.pixels.shape[1] == 69)
    from pipeline.io import StampRejected

    with pytest.raises(StampRejected, match="69x69, larger than 63x63") as info:
        conform(big.pixels, big.mask, (63, 63), big.row, "big")
    assert info.value.reason == "wrong_shape"


# ------------------------------------------------------------------------------------- many per file
@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_many_packets_per_file_in_order(codec):
    files = sorted((ZTF_ALERTS / "B_fink-broker_datasim_2018-11-29").glob("*.avro"))[:5]
    schema, _ = _records(files[0])
    records = [_records(f)[1][0] for f in files]
    decoded = decode_alert_bytes(_container(schema, records, codec), "many.avro")
    assert decoded.rejects == []
    assert [a.row["candid"] for a in decoded.alerts] == [r["candid"] for r in records]
    assert [a.source for a in decoded.alerts] == [f"many.avro#{i}" for i in range(5)]
    single = decode_alert_file(files[3]).alerts[0]
    np.testing.assert_array_equal(decoded.alerts[3].pixels, single.pixels)


def test_worker_processes_give_the_same_files_alerts_and_rejects_in_order(tmp_path):
    bad = tmp_path / "bad.avro"
    bad.write_bytes(b"not an avro file")
    files = [*ztf_sample_files(), bad, tmp_path / "missing.avro"]  # edge stamps of several shapes too
    serial = list(AlertDecoder(1, digest=True).decode(files))
    with AlertDecoder(2, files_per_task=8, digest=True) as decoder:
        pooled = list(decoder.decode(files))
    assert [d.path for d in pooled] == [str(f) for f in files]
    assert {a.pixels.shape for d in pooled for a in d.alerts} != {(3, 63, 63)}
    for p, s in zip(pooled, serial, strict=True):
        assert (p.sha256, p.rejects) == (s.sha256, s.rejects)
        assert [a.source for a in p.alerts] == [a.source for a in s.alerts]
        for a, b in zip(p.alerts, s.alerts, strict=True):
            assert repr(a.row) == repr(b.row)  # repr: NaN fields compare unequal
            np.testing.assert_array_equal(a.pixels, b.pixels)
            np.testing.assert_array_equal(a.mask, b.mask)
            assert a.mask.dtype == bool and a.pixels.dtype == np.float32
    assert [r.reason for d in pooled for r in d.rejects][-2:] == ["not_avro", "unreadable"]


# ------------------------------------------------------------------------------------- bad input
def test_bad_files_and_packets_are_rejected_with_reasons(tmp_path):
    good = ZTF_ALERTS / manifest()[1]["file"]
    schema, records = _records(good)
    data = good.read_bytes()
    rec = records[0]
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)
    packets = [
        rec,
        dict(rec, cutoutTemplate=None),  # no cutout
        dict(rec, cutoutScience={"fileName": "sci.jpg", "stampData": jpeg}),  # early test packets
        dict(rec, cutoutDifference={"fileName": "d.fits.gz", "stampData": zlib.compress(b"x" * 100)}),
        dict(rec, cutoutScience={"fileName": "x", "stampData": gzip.compress(b"SIMPLE  =" + b" " * 50)}),
        dict(rec, cutoutScience={"fileName": "x", "stampData": rec["cutoutScience"]["stampData"][:500]}),
    ]
    mixed = decode_alert_bytes(_container(schema, packets), "mixed.avro")
    assert len(mixed.alerts) == 1 and mixed.alerts[0].source == "mixed.avro#0"
    reasons = {r.source: (r.reason, r.error) for r in mixed.rejects}
    assert reasons["mixed.avro#1"][0] == "no_cutouts" and "cutoutTemplate" in reasons["mixed.avro#1"][1]
    assert reasons["mixed.avro#2"] == (
        "not_fits",
        "mixed.avro#2:cutoutScience: not a FITS file (is a JPEG image)",
    )
    assert reasons["mixed.avro#3"][0] == "not_fits"  # zlib, not gzip: not FITS either
    assert reasons["mixed.avro#4"][0] == "bad_header"  # a header without END
    assert reasons["mixed.avro#5"][0] == "truncated_gzip"
    assert mixed.n_packets == len(packets)

    other = {"type": "record", "name": "weather", "fields": [{"name": "t", "type": "double"}]}
    unknown = decode_alert_bytes(_container(other, [{"t": 1.0}, {"t": 2.0}]), "weather.avro")
    assert [(r.source, r.reason) for r in unknown.rejects] == [
        ("weather.avro#0", "unknown_schema"),
        ("weather.avro#1", "unknown_schema"),
    ]

    (tmp_path / "notavro.avro").write_bytes(b"hello world")
    (tmp_path / "empty.avro").write_bytes(b"")
    (tmp_path / "cut.avro").write_bytes(data[: len(data) // 2])
    (tmp_path / "header.avro").write_bytes(data[:100])
    cases = {
        "notavro.avro": "not_avro",
        "empty.avro": "not_avro",
        "cut.avro": "truncated_avro",
        "header.avro": "truncated_avro",
        "missing.avro": "unreadable",
    }
    for name, reason in cases.items():
        decoded = decode_alert_file(tmp_path / name)
        assert decoded.alerts == [] and [r.reason for r in decoded.rejects] == [reason], name
        assert decoded.rejects[0].source.startswith(str(tmp_path / name))
    # garbage after a valid header: one reject for the unreadable rest, not one per imagined packet
    offset = read_header(data, "x")[3]
    garbage = data[:offset] + np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    decoded = decode_alert_bytes(garbage, "garbage.avro")
    assert decoded.alerts == [] and 1 <= len(decoded.rejects) <= 2
    assert {r.reason for r in decoded.rejects} == {"truncated_avro"}
    # two packets, the file cut inside the second: the first is kept, the second rejected by index
    two = _container(schema, [rec, rec])
    cut = decode_alert_bytes(two[: len(two) - 3000], "two.avro")
    assert len(cut.alerts) == 1 and [(r.source, r.reason) for r in cut.rejects] == [
        ("two.avro#1", "truncated_avro")
    ]


def test_temporary_names_are_not_alert_files(tmp_path):
    assert is_alert_name("a/b/123.avro") and is_alert_name("X.AVRO")
    for name in (".123.avro", "123.avro.partial", "123.avro.tmp", "123.partial.avro", "123.fits"):
        assert not is_alert_name(name), name
    (tmp_path / "sub").mkdir()
    for name in ("sub/a.avro", "b.avro", ".c.avro", "d.avro.part"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in expand_alert_inputs([tmp_path])] == ["b.avro", "a.avro"]


def _with_card(fits_bytes: bytes, card: bytes, start: int = 0) -> bytes:
    """FITS bytes with the card of the same keyword, in the header starting at ``start``, replaced."""
    raw = bytearray(fits_bytes)
    pos = start
    while raw[pos : pos + 8] != card[:8]:
        pos += 80
    raw[pos : pos + 80] = card.ljust(80)
    return bytes(raw)


BAD_CARDS = [
    b"BITPIX  =                   17",
    b"BITPIX  = 'abc'",
    b"NAXIS   =                  999",
    b"NAXIS1  =                 63.5",
]


@pytest.mark.parametrize("card", BAD_CARDS)
def test_a_bad_header_card_in_a_cutout_is_a_reject_of_that_alert(card):
    """Issue 18: the packet with the broken cutout is one ``bad_header`` reject (a Rubin cutout with
    ``BITPIX = 17`` used to end the whole file with KeyError); the packets beside it are decoded, both ways."""
    for path, gzipped in ((ZTF_ALERTS / manifest()[1]["file"], True), (rubin_sample_files()[0], False)):
        schema, records = _records(path)
        rec = records[0]
        if gzipped:
            broken = gzip.compress(_with_card(gzip.decompress(rec["cutoutScience"]["stampData"]), card))
            bad = dict(rec, cutoutScience=dict(rec["cutoutScience"], stampData=broken))
        else:
            bad = dict(rec, cutoutScience=_with_card(rec["cutoutScience"], card))
        for fast in (True, False):
            decoded = decode_alert_bytes(_container(schema, [rec, bad, rec]), "three.avro", fast=fast)
            assert [a.source for a in decoded.alerts] == ["three.avro#0", "three.avro#2"]
            assert [(r.source, r.reason) for r in decoded.rejects] == [("three.avro#1", "bad_header")]
            assert decoded.rejects[0].error.startswith("three.avro#1:cutoutScience: ")


def test_a_bad_card_in_an_extension_the_cutout_does_not_use_costs_nothing():
    """A Rubin cutout's UNCERT/PSFIMAGE extensions are never read: both decoders keep the packet."""
    schema, records = _records(rubin_sample_files()[0])
    rec = records[0]
    science = bytes(rec["cutoutScience"])
    bad = dict(rec, cutoutScience=_with_card(science, BAD_CARDS[0], science.index(b"XTENSION")))
    for fast in (True, False):
        decoded = decode_alert_bytes(_container(schema, [bad]), "one.avro", fast=fast)
        assert (len(decoded.alerts), decoded.rejects) == (1, [])


@pytest.mark.parametrize("cut", [1, 5, 15, 16])
def test_a_file_cut_inside_its_final_sync_marker_counts_each_packet_once(cut):
    """Issue 18: a one-packet file cut in (or right before) its last sync marker is one input, one alert."""
    data = (ZTF_ALERTS / manifest()[1]["file"]).read_bytes()
    decoded = decode_alert_bytes(data[: len(data) - cut], "cut.avro")
    assert (len(decoded.alerts), decoded.rejects) == (1, [])
    # two blocks whose first marker is corrupt: the first packet, and one reject for the unreadable rest
    schema, records = _records(ZTF_ALERTS / manifest()[1]["file"])
    one = _container(schema, records[:1])
    two = one + one[read_header(one, "x")[3] :]  # a second block (and marker) after the first
    broken_marker = two[: len(one) - 16] + bytes(16) + two[len(one) :]
    assert len(decode_alert_bytes(two, "two.avro").alerts) == 2
    decoded = decode_alert_bytes(broken_marker, "two.avro")
    assert len(decoded.alerts) == 1 and [(r.source, r.reason) for r in decoded.rejects] == [
        ("two.avro", "truncated_avro")
    ]


# --------------------------------------------------------------------------------- codecs and names
def _with_codec(container: bytes, codec: bytes) -> bytes:
    """A null-codec container with its header's ``avro.codec`` set to ``codec`` (blocks unchanged)."""
    header = fastavro.schemaless_reader(io.BytesIO(container), fastavro.read.HEADER_SCHEMA)
    out = io.BytesIO()
    fastavro.schemaless_writer(
        out, fastavro.read.HEADER_SCHEMA, {**header, "meta": {**header["meta"], "avro.codec": codec}}
    )
    return out.getvalue() + container[read_header(container, "x")[3] :]


@pytest.mark.parametrize("codec", ["snappy", "zstandard", "lz4"])
def test_a_codec_whose_library_is_missing_is_missing_codec_never_corrupt(codec):
    """Issue 18: a valid file in a codec fastavro cannot decode here (no cramjam, backports.zstd, lz4) is
    one ``missing_codec`` reject naming the codec and the package, never ``truncated_avro``; with the
    library installed it decodes like the null-codec file."""
    schema, records = _records(ZTF_ALERTS / manifest()[1]["file"])
    plain = decode_alert_bytes(_container(schema, records), "plain.avro")
    try:
        data = _container(schema, records, codec)
    except ValueError:  # fastavro cannot write it either: the library is missing
        data = _with_codec(_container(schema, records), codec.encode())
        decoded = decode_alert_bytes(data, "c.avro")
        assert decoded.alerts == [] and [(r.source, r.reason) for r in decoded.rejects] == [
            ("c.avro", "missing_codec")
        ]
        assert decoded.rejects[0].error.startswith(f"c.avro: the file's codec {codec!r} cannot be decoded")
        assert "install" in decoded.rejects[0].error
        return
    decoded = decode_alert_bytes(data, "c.avro")
    assert decoded.rejects == [] and [a.row for a in decoded.alerts] == [a.row for a in plain.alerts]


def test_a_codec_fastavro_does_not_know_is_unknown_codec():
    schema, records = _records(ZTF_ALERTS / manifest()[1]["file"])
    decoded = decode_alert_bytes(_with_codec(_container(schema, records), b"brotli"), "b.avro")
    assert [(r.source, r.reason) for r in decoded.rejects] == [("b.avro", "unknown_codec")]
    assert "'brotli'" in decoded.rejects[0].error


def test_a_file_name_that_is_not_utf8_is_a_bad_name_reject(tmp_path):
    """Issue 18: scoring read a non-UTF-8 name into its sources and failed writing the catalog
    (UnicodeEncodeError); the file is one ``bad_name`` reject named printably, its neighbours are read."""
    good = ZTF_ALERTS / manifest()[1]["file"]
    bad = tmp_path / os.fsdecode(b"caf\xe9.avro")
    bad.write_bytes(good.read_bytes())
    (tmp_path / "ok.avro").write_bytes(good.read_bytes())
    decoded = decode_alert_file(bad)
    assert decoded.alerts == [] and decoded.path == str(bad)
    assert [(r.source, r.reason) for r in decoded.rejects] == [(str(tmp_path / "caf\\xe9.avro"), "bad_name")]
    alerts, rejects = read_alerts([tmp_path])
    assert [a.source for a in alerts] == [f"{tmp_path / 'ok.avro'}#0"]
    assert [r.reason for r in rejects] == ["bad_name"]
    for text in [r.source for r in rejects] + [r.error for r in rejects]:
        text.encode("utf-8")  # storable
