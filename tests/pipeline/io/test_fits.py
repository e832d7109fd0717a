"""pipeline.io.fits: every FITS layout, the real ZTF cutouts, and every bad input."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from astropy.io import fits

from pipeline.io import StampRejected, fits_stem, read_stamp
from tests.conftest import ZTF_TRIPLETS, read_alert, write_fits, write_mef

RNG = np.random.default_rng(0)


def test_2d_primary_hdu_is_one_native_float32_channel(tmp_path):
    data = RNG.normal(size=(21, 21)).astype(">f4")
    stamp = read_stamp(write_fits(tmp_path / "a.fits", data))
    assert stamp.pixels.shape == (1, 21, 21)
    assert stamp.pixels.dtype == np.float32 and stamp.pixels.dtype.isnative
    np.testing.assert_array_equal(stamp.pixels[0], data.astype("=f4"))
    assert stamp.channels == ["0"] and not stamp.mask.any()


def test_cube_channels_named_from_header(tmp_path):
    cube = RNG.normal(size=(3, 16, 20)).astype(np.float32)
    named = read_stamp(write_fits(tmp_path / "c.fits", cube, CHNAME1="g", CHNAME2="r", CHNAME3="i"))
    assert named.channels == ["g", "r", "i"] and named.pixels.shape == (3, 16, 20)
    np.testing.assert_array_equal(named.pixels, cube)
    assert read_stamp(write_fits(tmp_path / "d.fits", cube)).channels == ["0", "1", "2"]


def test_multi_extension_named_and_reordered(tmp_path):
    planes = {n: np.full((8, 8), i, np.float32) for i, n in enumerate(["SCIENCE", "TEMPLATE", "DIFFERENCE"])}
    path = write_mef(tmp_path / "m.fits", planes, OBJECTID="ZTF00abc")
    stamp = read_stamp(path)
    assert stamp.channels == ["SCIENCE", "TEMPLATE", "DIFFERENCE"]
    assert stamp.header["OBJECTID"] == "ZTF00abc"
    picked = read_stamp(path, extensions=["difference", "SCIENCE"])
    assert picked.channels == ["DIFFERENCE", "SCIENCE"]
    assert picked.pixels[:, 0, 0].tolist() == [2.0, 0.0]


def test_gzipped_file_and_bytes_read_the_same(tmp_path):
    data = RNG.normal(size=(10, 12)).astype(np.float32)
    plain = read_stamp(write_fits(tmp_path / "p.fits", data))
    zipped = read_stamp(write_fits(tmp_path / "p.fits.gz", data, gz=True))
    from_bytes = read_stamp((tmp_path / "p.fits.gz").read_bytes())
    np.testing.assert_array_equal(plain.pixels, zipped.pixels)
    np.testing.assert_array_equal(plain.pixels, from_bytes.pixels)
    assert fits_stem(tmp_path / "p.fits.gz") == "p"


def test_nan_inf_and_blank_sentinel_are_masked_not_passed_on(tmp_path):
    data = np.ones((5, 5), np.float32)
    data[0, 0], data[1, 1], data[2, 2] = np.nan, -3.4028235e38, np.inf
    stamp = read_stamp(write_fits(tmp_path / "n.fits", data))
    assert stamp.mask.sum() == 3
    assert np.isfinite(stamp.pixels).all() and stamp.pixels[stamp.mask].tolist() == [0.0, 0.0, 0.0]
    assert stamp.pixels[~stamp.mask].tolist() == [1.0] * 22


def test_integer_blank_keyword_is_masked(tmp_path):
    data = np.arange(16, dtype=np.int16).reshape(4, 4)
    data[3, 3] = -999
    stamp = read_stamp(write_fits(tmp_path / "i.fits", data, BLANK=-999))
    assert stamp.mask.sum() == 1 and stamp.mask[0, 3, 3]
    assert stamp.pixels[0, 1, 1] == 5.0


@pytest.mark.filterwarnings("ignore:Found a SIMPLE card")  # real ZTF headers; read_stamp records it itself
@pytest.mark.parametrize("cutout", ["cutoutScience", "cutoutTemplate", "cutoutDifference"])
def test_real_ztf_alert_cutouts_from_gzipped_bytes(ztf_alert_paths, cutout):
    for path in ztf_alert_paths:
        alert = read_alert(path)
        raw = alert[cutout]["stampData"]
        assert raw[:2] == b"\x1f\x8b"  # real packets carry gzipped FITS
        stamp = read_stamp(raw, name=f"{path.name}:{cutout}")
        with fits.open(io.BytesIO(gzip.decompress(raw))) as hdul:
            truth = hdul[0].data
        assert truth.dtype.byteorder == ">"  # the real data is big-endian
        assert stamp.pixels.shape[1:] == truth.shape
        bad = ~np.isfinite(truth) | (np.abs(truth) >= 1e30)
        np.testing.assert_array_equal(stamp.mask[0], bad)
        np.testing.assert_array_equal(stamp.pixels[0][~bad], truth[~bad].astype(np.float32))


def test_real_alert_with_blank_template_and_nan_science():
    stamp = read_stamp(ZTF_TRIPLETS / "472263571115090000.fits.gz")  # manifest: 1183 blank, 139 NaN in ref
    assert stamp.channels == ["SCIENCE", "TEMPLATE", "DIFFERENCE"]
    assert stamp.mask[1].sum() == 1183 + 139
    assert stamp.mask[0].sum() == 1322
    assert stamp.pixels.min() > -1e30


def test_real_edge_of_ccd_stamp_keeps_its_shape():
    stamp = read_stamp(ZTF_TRIPLETS / "396522680015040001.fits.gz")
    assert stamp.pixels.shape == (3, 41, 63)


def _rejected(source, **kwargs) -> StampRejected:
    with pytest.raises(StampRejected) as info:
        read_stamp(source, **kwargs)
    return info.value


def test_truncated_gzip(tmp_path):
    raw = (ZTF_TRIPLETS / "472263571115090000.fits.gz").read_bytes()
    err = _rejected(raw[: len(raw) // 2], name="half.fits.gz")
    assert err.reason == "truncated_gzip" and "half.fits.gz" in str(err)


def test_truncated_fits(tmp_path):
    path = write_fits(tmp_path / "t.fits", np.ones((100, 100), np.float32))
    short = tmp_path / "short.fits"
    short.write_bytes(path.read_bytes()[:6000])
    err = _rejected(short)
    assert err.reason == "truncated_fits" and "short.fits" in str(err)


def test_not_fits_and_empty_and_missing(tmp_path):
    (tmp_path / "x.fits").write_text("this is not FITS")
    assert _rejected(tmp_path / "x.fits").reason == "not_fits"
    (tmp_path / "e.fits").write_bytes(b"")
    assert _rejected(tmp_path / "e.fits").reason == "not_fits"
    assert _rejected(tmp_path / "missing.fits").reason == "unreadable"


def test_empty_hdu(tmp_path):
    err = _rejected(write_fits(tmp_path / "empty.fits", None))
    assert err.reason == "empty_hdu" and "empty.fits" in str(err)


def test_bad_dimensions_and_mixed_shapes(tmp_path):
    assert (
        _rejected(write_fits(tmp_path / "4d.fits", np.ones((2, 2, 4, 4), np.float32))).reason
        == "bad_dimensions"
    )
    mixed = write_mef(
        tmp_path / "mix.fits", {"A": np.ones((4, 4), np.float32), "B": np.ones((5, 5), np.float32)}
    )
    assert _rejected(mixed).reason == "bad_dimensions"
    assert read_stamp(mixed, extensions=["B"]).pixels.shape == (1, 5, 5)


def test_missing_extension_names_what_the_file_has(tmp_path):
    path = write_mef(tmp_path / "m.fits", {"SCIENCE": np.ones((4, 4), np.float32)})
    err = _rejected(path, extensions=["SCIENCE", "TEMPLATE"])
    assert err.reason == "wrong_channels" and "TEMPLATE" in str(err) and "SCIENCE" in str(err)


def test_all_masked_stamp_is_rejected(tmp_path):
    assert (
        _rejected(write_fits(tmp_path / "nan.fits", np.full((4, 4), np.nan, np.float32))).reason
        == "all_masked"
    )
