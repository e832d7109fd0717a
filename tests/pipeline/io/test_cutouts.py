"""pipeline.io.cutouts and pipeline.ingest.catalog_cutouts: sky and pixel positions, edges, rejects, counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from pipeline.ingest import CutoutReader, CutoutSource, ingest, ingest_source
from pipeline.io import StampRejected, cut_stamp, pixel_positions, read_fits_image
from pipeline.store import open_store


def _image_with_wcs(path, shape=(100, 120), channels=1):
    """A FITS image whose pixel (x, y) holds the value 1000*y + x; TAN WCS, 1 arcsec/px, centre at (150, 2)."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    plane = (1000.0 * y + x).astype(np.float32)
    data = plane if channels == 1 else np.stack([plane + 1e6 * c for c in range(channels)])
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
    header = wcs.to_header()
    fits.PrimaryHDU(data, header).writeto(path)
    return path, wcs


def test_sky_and_pixel_positions_agree(tmp_path):
    path, wcs = _image_with_wcs(tmp_path / "img.fits")
    image = read_fits_image(path)
    ra, dec = wcs.pixel_to_world_values(40.0, 30.0)
    x, y = pixel_positions(image, np.array([ra]), np.array([dec]))
    assert x[0] == pytest.approx(40.0, abs=1e-6) and y[0] == pytest.approx(30.0, abs=1e-6)
    cut = cut_stamp(image, x[0], y[0], 11)
    assert cut.pixels.shape == (1, 11, 11) and not cut.mask.any()
    assert cut.pixels[0, 5, 5] == 1000 * 30 + 40  # the centre pixel is the requested one
    assert cut.ra == pytest.approx(float(ra)) and cut.dec == pytest.approx(float(dec))


def test_edge_stamp_is_padded_and_masked(tmp_path):
    path, _ = _image_with_wcs(tmp_path / "img.fits", shape=(50, 60), channels=3)
    image = read_fits_image(path)
    cut = cut_stamp(image, 1.0, 2.0, 9)  # 3 columns and 2 rows fall off the image
    assert cut.pixels.shape == (3, 9, 9)
    assert cut.mask.sum() == 3 * (9 * 9 - 6 * 7)
    assert cut.mask[:, :2, :].all() and cut.mask[:, :, :3].all()
    assert (cut.pixels[cut.mask] == 0).all()
    assert cut.pixels[2, 4, 4] == 1000 * 2 + 1 + 2e6


def test_outside_nan_and_no_wcs_rejected(tmp_path):
    path, _ = _image_with_wcs(tmp_path / "img.fits")
    image = read_fits_image(path)
    with pytest.raises(StampRejected) as info:
        cut_stamp(image, 500.0, 20.0, 9)
    assert info.value.reason == "outside_image"
    with pytest.raises(StampRejected) as info:
        cut_stamp(image, np.nan, 20.0, 9)
    assert info.value.reason == "bad_position"
    fits.PrimaryHDU(np.ones((20, 20), np.float32)).writeto(tmp_path / "nowcs.fits")
    with pytest.raises(StampRejected) as info:
        pixel_positions(read_fits_image(tmp_path / "nowcs.fits"), np.array([1.0]), np.array([1.0]))
    assert info.value.reason == "no_wcs"


def test_ingest_cutouts_counts_add_up(tmp_path):
    path, wcs = _image_with_wcs(tmp_path / "img.fits")
    ra, dec = wcs.pixel_to_world_values([10.0, 60.0, 119.0, 5000.0, 30.0], [10.0, 50.0, 99.0, 20.0, np.nan])
    catalog = pd.DataFrame(
        {"objectId": ["a", "b", "c", "far", "nan"], "ra": ra, "dec": dec, "mag": [18, 19, 20, 21, 22]}
    )
    catalog.to_csv(tmp_path / "cat.csv", index=False)
    source = CutoutSource(image=path, catalog=tmp_path / "cat.csv", size=15)
    report = ingest_source(source, tmp_path / "run" / "stamps.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (5, 3, 2)
    assert report.reject_reasons == {"outside_image": 1, "bad_position": 1}
    rejects = pd.read_csv(tmp_path / "run" / "rejects.csv")
    assert sorted(rejects["source"].str.split(":").str[-1]) == ["far", "nan"]
    with open_store(tmp_path / "run" / "stamps.h5") as store:
        cat = store.catalog()
        assert cat["object_id"].tolist() == ["a", "b", "c"]
        assert cat["mag"].tolist() == [18, 19, 20]
        assert store.mask()[2].sum() == 15 * 15 - 8 * 8  # corner stamp: a quarter inside
        assert store.pixel_scale_arcsec == pytest.approx(1.0)


def in_memory(tmp_path, **options) -> CutoutSource:
    """A cutout source on ``nowcs.fits`` whose catalog is a DataFrame handed to the reader."""
    return CutoutSource(image=tmp_path / "nowcs.fits", catalog="<DataFrame>", **options)


def test_ingest_cutouts_pixel_positions_and_missing_columns(tmp_path):
    fits.PrimaryHDU(np.arange(400, dtype=np.float32).reshape(20, 20)).writeto(tmp_path / "nowcs.fits")
    cat = pd.DataFrame({"x": [10, 3], "y": [10, 4]})
    report = ingest(
        CutoutReader(in_memory(tmp_path, size=5, x_col="x", y_col="y"), table=cat), tmp_path / "p.h5"
    )
    assert report.n_ingested == 2
    with open_store(tmp_path / "p.h5") as store:
        assert store.stamps()[1, 0, 2, 2] == 4 * 20 + 3
    sky_table = pd.DataFrame({"ra": [1.0], "dec": [2.0]})
    sky = ingest(CutoutReader(in_memory(tmp_path, size=5), table=sky_table), tmp_path / "s.h5")
    assert sky.n_ingested == 0 and sky.reject_reasons == {"no_wcs": 1} and sky.store is None
    with pytest.raises(ValueError, match="lacks position columns"):
        reader = CutoutReader(in_memory(tmp_path, size=5), table=pd.DataFrame({"r": [1.0]}))
        ingest(reader, tmp_path / "q.h5")
