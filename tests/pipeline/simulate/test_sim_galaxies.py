"""Simulated galaxies: photometry, colours, shapes, noise, file formats and determinism."""

from __future__ import annotations

import filecmp

import galsim
import numpy as np
import pytest
from astropy.stats import mad_std
from PIL import Image

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, tree_violations
from pipeline.io import header_pixel_scale, read_stamp
from pipeline.simulate.galaxies import GalaxyImaging, simulate_galaxies, simulate_galaxy

IMAGING = GalaxyImaging()


def _mag(cube: np.ndarray, band: int) -> float:
    return IMAGING.zero_point[band] - 2.5 * np.log10(cube[band].sum())


def test_star_flux_matches_its_magnitude_within_noise():
    for index in range(6):
        gal = simulate_galaxy(IMAGING, seed=3, index=index, kind="star")
        fwhm = gal.truth["psf_fwhm_r"]
        # the fraction of a point source's light that falls inside the stamp, from GalSim
        inside = (
            galsim.Kolmogorov(fwhm=fwhm)
            .drawImage(nx=IMAGING.size, ny=IMAGING.size, scale=IMAGING.pixel_scale)
            .array.sum()
        )
        expected = IMAGING.flux(gal.truth["r_mag"], 1) * inside
        noise = np.sqrt(IMAGING.size**2 * IMAGING.sigma_sky(1) ** 2 + expected / IMAGING.gain[1])
        assert abs(gal.cube[1].sum() - expected) < 4 * noise


def test_background_noise_is_sky_poisson_plus_read_noise():
    gal = simulate_galaxy(IMAGING, seed=3, index=0, kind="star")
    for band in range(3):
        corner = gal.cube[band, :20, :20]
        assert mad_std(corner) == pytest.approx(IMAGING.sigma_sky(band), rel=0.15)
        assert abs(np.median(corner)) < 0.3 * IMAGING.sigma_sky(band)  # sky subtracted


def test_ellipticals_are_redder_than_irregulars_and_bulges_redder_than_disks():
    ell = [simulate_galaxy(IMAGING, 4, i, kind="elliptical").cube for i in range(8)]
    irr = [simulate_galaxy(IMAGING, 4, i, kind="irregular").cube for i in range(8)]
    g_r_ell = [_mag(c, 0) - _mag(c, 1) for c in ell]
    g_r_irr = [_mag(c, 0) - _mag(c, 1) for c in irr]
    assert np.median(g_r_ell) > np.median(g_r_irr) + 0.2
    inner_minus_outer = []
    for i in range(40):
        gal = simulate_galaxy(IMAGING, 4, i, kind="disk")
        if gal.truth["bulge_to_total"] < 0.3 or gal.truth["r_mag"] > 16.5 or gal.truth["r_e"] < 2.5:
            continue
        yy, xx = np.indices(gal.cube.shape[1:]) - IMAGING.size // 2
        r = np.hypot(xx, yy) * IMAGING.pixel_scale
        inner, outer = r < 1.0, (r > 1.5 * gal.truth["r_e"]) & (r < 2.5 * gal.truth["r_e"])
        colour = [-2.5 * np.log10(gal.cube[0][m].sum() / gal.cube[1][m].sum()) for m in (inner, outer)]
        inner_minus_outer.append(colour[0] - colour[1])
    assert len(inner_minus_outer) >= 3
    assert np.median(inner_minus_outer) > 0.1


def test_edge_on_disks_look_flat_and_face_on_ones_round():
    edge = [simulate_galaxy(IMAGING, 6, i, kind="edge_on").truth["apparent_q"] for i in range(8)]
    assert np.isfinite(edge).all()
    assert np.median(edge) < 0.35 and max(edge) < 0.7  # a big bulge rounds the adaptive moments
    disks = [simulate_galaxy(IMAGING, 6, i, kind="disk").truth for i in range(30)]
    face_on = [t["apparent_q"] for t in disks if t["inclination"] < 35 and t["r_e"] > 2.5]
    assert face_on and np.nanmedian(face_on) > 0.7


def test_faint_small_galaxies_confuse_volunteers_more():
    truths = [simulate_galaxy(IMAGING, 7, i).truth for i in range(60)]
    small = [
        t["confusion"] for t in truths if t["type"] not in ("star", "artifact") and t["resolution"] < 1.2
    ]
    large = [
        t["confusion"] for t in truths if t["type"] not in ("star", "artifact") and t["resolution"] > 2.5
    ]
    assert small and large and np.median(small) > np.median(large) + 0.1


def test_outputs_are_deterministic_and_readable(tmp_path):
    tables = simulate_galaxies(6, tmp_path / "a", seed=2, workers=1, chunk_size=6, jpeg=True)
    simulate_galaxies(6, tmp_path / "b", seed=2, workers=2, chunk_size=2, jpeg=True)
    simulate_galaxies(6, tmp_path / "c", seed=3, workers=1)
    for sub in ("", "images", "jpeg"):
        names = sorted(p.name for p in (tmp_path / "a" / sub).iterdir() if p.is_file())
        _, mismatch, errors = filecmp.cmpfiles(
            tmp_path / "a" / sub, tmp_path / "b" / sub, names, shallow=False
        )
        assert not mismatch and not errors
    assert not filecmp.cmp(
        tmp_path / "a" / "images" / "100000.fits", tmp_path / "c" / "images" / "100000.fits", shallow=False
    )
    assert (tmp_path / "a" / "training_solutions.csv").read_bytes() != (
        tmp_path / "c" / "training_solutions.csv"
    ).read_bytes()

    solutions = tables["training_solutions"]
    assert list(solutions.columns) == ["GalaxyID", *ANSWER_COLUMNS]
    assert all(not p for p in tree_violations(solutions[list(ANSWER_COLUMNS)].to_numpy(), tol=1e-9))
    stamp = read_stamp(tmp_path / "a" / "images" / "100003.fits")
    assert stamp.channels == ["g", "r", "i"]
    assert stamp.pixels.shape == (3, 69, 69)
    assert stamp.header["OBJECT"] == "100003"
    assert header_pixel_scale(stamp) == pytest.approx(0.396)
    with Image.open(tmp_path / "a" / "jpeg" / "100003.jpg") as jpg:
        assert jpg.size == (424, 424) and jpg.mode == "RGB"
    truth = tables["truth"]
    assert list(truth["GalaxyID"]) == list(range(100000, 100006))
    assert truth["n_volunteers"].between(10, 80).all()


def test_image_size_and_pixel_scale_are_options():
    imaging = GalaxyImaging(size=45, pixel_scale=0.6)
    gal = simulate_galaxy(imaging, seed=1, index=0)
    assert gal.cube.shape == (3, 45, 45) and gal.cube.dtype == np.float32


def test_simulated_catalog_and_images_ingest_with_no_rejects_at_the_default_tolerance(tmp_path):
    """The written CSV keeps enough digits for the tree checks of the Kaggle reader (tol 1e-6)."""
    from pipeline.ingest import ingest_galaxy_zoo

    simulate_galaxies(12, tmp_path / "sim", seed=5, workers=1)
    report = ingest_galaxy_zoo(
        tmp_path / "sim" / "training_solutions.csv", tmp_path / "sim" / "images", tmp_path / "gz.h5"
    )
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (12, 12, 0), report.reject_reasons
