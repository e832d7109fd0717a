"""Physics and determinism of the simulated real/bogus triplets (pipeline.simulate.transients.dataset)."""

from __future__ import annotations

import filecmp

import galsim
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from pipeline.io import header_pixel_scale, read_stamp
from pipeline.simulate.transients import KINDS, REAL_KINDS, SURVEYS, simulate_transients, simulate_triplet


def _unit_psf(truth: dict, survey: str, size: int) -> np.ndarray:
    """Unit-flux science PSF at the injected position, drawn independently with GalSim."""
    model = SURVEYS[survey]
    psf = galsim.Moffat(beta=model.moffat_beta, fwhm=truth["fwhm_science"])
    image = psf.drawImage(
        nx=size, ny=size, scale=model.pixel_scale, offset=(truth["dx"], truth["dy"]), method="no_pixel"
    )
    return image.array


@pytest.mark.parametrize("survey", ["hits", "ztf"])
def test_point_source_flux_in_difference_matches_injected_flux(survey):
    pulls = []
    for index in range(40):
        trip = simulate_triplet(survey, seed=5, index=index, kind="point_isolated")
        diff = trip.stamps["DIFFERENCE"].astype(np.float64)
        if trip.truth["isdiffpos"] == "f":
            diff = -diff
        unit = _unit_psf(trip.truth, survey, diff.shape[0])
        p2 = np.sum(unit**2)
        flux_hat = np.sum(unit * diff) / p2  # PSF-fit flux
        sigma = np.sqrt(np.sum(unit**2 * trip.variance)) / p2
        pulls.append((flux_hat - trip.truth["flux"]) / sigma)
    pulls = np.array(pulls)
    assert np.all(np.abs(pulls) < 4.5), pulls
    assert abs(pulls.mean()) < 0.5
    assert 0.6 < pulls.std() < 1.4


def test_total_flux_of_ztf_point_source_matches_injected_flux():
    for index in range(15):
        trip = simulate_triplet("ztf", seed=8, index=index, kind="point_isolated")
        diff = trip.stamps["DIFFERENCE"].astype(np.float64) * (1 if trip.truth["isdiffpos"] == "t" else -1)
        total, noise = diff.sum(), np.sqrt(trip.variance.sum())
        # a 63 px stamp holds all but ~1e-4 of a 2-5" Moffat beta=3 profile
        assert abs(total - trip.truth["flux"]) < 4 * noise + 1e-3 * trip.truth["flux"]


def _minor_width(diff: np.ndarray, variance: np.ndarray, threshold: float = 3.0) -> float:
    """Minor-axis sigma (px) of the >3 sigma connected blob at the centre, flux-weighted second moments."""
    labels, _ = ndimage.label(diff / np.sqrt(variance) > threshold)
    c = diff.shape[0] // 2
    window = np.full(diff.shape, -np.inf)
    window[c - 3 : c + 4, c - 3 : c + 4] = diff[c - 3 : c + 4, c - 3 : c + 4]
    peak = np.unravel_index(np.argmax(window), diff.shape)
    assert labels[peak] > 0
    y, x = np.nonzero(labels == labels[peak])
    w = diff[y, x]
    cov = np.cov(np.vstack([x, y]), aweights=w, bias=True)
    return float(np.sqrt(max(np.linalg.eigvalsh(cov)[0], 0.0)))


@pytest.mark.parametrize("survey", ["hits", "ztf"])
def test_cosmic_rays_are_sharper_than_the_psf(survey):
    model = SURVEYS[survey]
    cr_widths, psf_widths = [], []
    for index in range(60):
        trip = simulate_triplet(survey, seed=11, index=index, kind="cosmic_ray")
        if trip.truth["in_template"]:
            continue
        diff = trip.stamps["DIFFERENCE"].astype(np.float64) * (1 if trip.truth["isdiffpos"] == "t" else -1)
        width = _minor_width(diff, trip.variance)
        psf_sigma = trip.truth["fwhm_science"] / 2.3548 / model.pixel_scale
        assert width < 0.6 * psf_sigma, (index, width, psf_sigma)
        cr_widths.append(width)
    for index in range(60):
        trip = simulate_triplet(survey, seed=11, index=index, kind="point_isolated")
        if trip.truth["snr"] > 60:  # bright enough for the same moment measurement
            psf_widths.append(
                _minor_width(
                    trip.stamps["DIFFERENCE"].astype(np.float64)
                    * (1 if trip.truth["isdiffpos"] == "t" else -1),
                    trip.variance,
                )
            )
    assert len(cr_widths) > 20 and len(psf_widths) > 5
    assert max(cr_widths) < min(psf_widths)


def test_snr_channel_is_difference_over_its_noise():
    backgrounds = []
    for index in range(30):
        trip = simulate_triplet("hits", seed=2, index=index, kind="noise_peak")
        snr = trip.stamps["SNR"]
        np.testing.assert_allclose(
            snr, trip.stamps["DIFFERENCE"] / np.sqrt(trip.variance), rtol=1e-4, atol=1e-5
        )
        backgrounds.append(snr.ravel())
    std = np.std(np.concatenate(backgrounds))
    assert 0.85 < std < 1.25  # unit noise (the matching kernel correlates the template part slightly)


def test_real_sources_respect_the_snr_floor_and_noise_peaks_stay_below_it():
    truths = pd.DataFrame([simulate_triplet("hits", seed=4, index=i).truth for i in range(600)])
    assert set(truths["kind"]) <= set(KINDS)
    real = truths[truths["real"] == 1]
    assert set(real["kind"]) <= set(REAL_KINDS)
    assert 0.4 < truths["real"].mean() < 0.6
    assert (real["snr"].abs() >= SURVEYS["hits"].snr_range[0] * 0.98).all()
    noise = truths.loc[truths["kind"] == "noise_peak", "snr_measured"].abs()
    assert len(noise) > 10
    assert noise.max() < SURVEYS["hits"].snr_range[0]
    assert noise.median() > 2.0  # they are peaks, not random positions


def test_bogus_classes_look_like_their_cause():
    sat = simulate_triplet("ztf", seed=1, index=0, kind="saturated_star")
    assert sat.stamps["SCIENCE"].max() <= SURVEYS["ztf"].saturation + 1e-3
    assert np.sum(np.isclose(sat.stamps["SCIENCE"], SURVEYS["ztf"].saturation)) > 3  # clipped core + bleed
    dipole = simulate_triplet("hits", seed=1, index=1, kind="dipole_misalignment")
    diff = dipole.stamps["SNR"]
    assert diff.max() > 5 and diff.min() < -5  # positive and negative lobes
    col = simulate_triplet("hits", seed=1, index=3, kind="bad_column")
    d = col.stamps["DIFFERENCE"]
    column_means = np.abs(d.mean(axis=0))
    assert column_means.max() > 3 * np.median(column_means)


def test_ztf_negative_candidates_are_flipped_like_real_alerts():
    flipped = 0
    for index in range(40):
        trip = simulate_triplet("ztf", seed=9, index=index, kind="variable_star")
        if trip.truth["flux"] < 0 and abs(trip.truth["snr"]) > 10:
            assert trip.truth["isdiffpos"] == "f"
            c = trip.stamps["DIFFERENCE"].shape[0] // 2
            assert trip.stamps["DIFFERENCE"][c - 1 : c + 2, c - 1 : c + 2].sum() > 0
            flipped += 1
    assert flipped > 3


def test_same_seed_gives_identical_files_for_any_worker_count(tmp_path):
    a = simulate_transients(14, tmp_path / "a", survey="hits", seed=3, workers=1, chunk_size=14)
    b = simulate_transients(14, tmp_path / "b", survey="hits", seed=3, workers=2, chunk_size=4)
    c = simulate_transients(14, tmp_path / "c", survey="hits", seed=4, workers=1)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 14 + 2  # FITS files + labels.csv + simulation.json
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)
    assert not mismatch and not errors
    pd.testing.assert_frame_equal(a, b)
    fits_names = [n for n in names if n.endswith(".fits.gz")]
    _, differ, _ = filecmp.cmpfiles(tmp_path / "a", tmp_path / "c", fits_names, shallow=False)
    assert len(differ) == len(fits_names)
    assert not a["kind"].equals(c["kind"]) or not np.allclose(a["flux"], c["flux"])


@pytest.mark.parametrize("survey", ["hits", "ztf"])
def test_files_read_back_with_channels_ids_and_pixel_scale(tmp_path, survey):
    labels = simulate_transients(3, tmp_path, survey=survey, seed=1, workers=1)
    model = SURVEYS[survey]
    for row in labels.itertuples():
        stamp = read_stamp(tmp_path / f"{row.id}.fits.gz")
        assert stamp.channels == list(model.extensions)
        assert stamp.pixels.shape == (len(model.extensions), model.size, model.size)
        assert stamp.header["OBJECT"] == row.id
        assert stamp.header["REAL"] == row.real
        assert header_pixel_scale(stamp) == pytest.approx(model.pixel_scale)
        assert not stamp.mask.any()
