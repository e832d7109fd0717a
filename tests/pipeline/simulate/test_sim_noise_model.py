"""Noise, background and PSF of the real ZTF triplets, and the ZTF-like simulation measured against them."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.stats import mad_std

from pipeline.simulate.transients import (
    HSM_FWHM_PER_MOFFAT3_FWHM,
    SURVEYS,
    ZTF_EXPOSURES,
    central_fwhm,
    exposure_conditions,
    lag1_correlation,
    measure_triplets,
    sample_triplet_paths,
    simulate_triplet,
)


@pytest.fixture(scope="module")
def real():
    return measure_triplets()


@pytest.fixture(scope="module")
def simulated():
    return [simulate_triplet("ztf", seed=21, index=i) for i in range(160)]


def test_real_samples_are_measured_with_masks_respected(real):
    assert len(sample_triplet_paths()) == 97
    assert len(real) == 97
    for channel in ("science", "template", "difference"):
        assert np.isfinite(real[f"sigma_{channel}"]).all()
        assert (real[f"sigma_{channel}"] > 0).all()
    # the blank sentinel -3.4e38 would wreck any statistic it reached
    assert real["sky_template"].abs().max() < 1e4
    assert (real["masked_fraction"] > 0).any()
    assert real["fwhm_science"].notna().sum() >= 25
    assert 1.5 < real["fwhm_science"].median() < 5.0  # arcsec


def test_simulator_constants_are_the_measured_exposures(real):
    table = exposure_conditions(real, exclude=[1660293514215])
    assert len(table) == len(ZTF_EXPOSURES)
    for row, const in zip(table.itertuples(index=False), ZTF_EXPOSURES, strict=True):
        assert row.pid == const[0] and row.n == const[1]
        np.testing.assert_allclose(
            [row.sky_science, row.sigma_science, row.sky_template, row.sigma_template, row.fwhm_science],
            const[2:],
            rtol=0.01,
            atol=0.006,
        )


@pytest.mark.parametrize("channel", ["science", "template", "difference"])
def test_simulated_ztf_noise_is_within_a_factor_1_5_of_the_real_alerts(real, simulated, channel):
    sim = np.array([mad_std(t.stamps[channel.upper()]) for t in simulated])
    obs = real[f"sigma_{channel}"].to_numpy()
    # the real noise is bimodal (nights with 5 DN and with 15 DN), so compare the log-mean and, where it is
    # not at the gap between the modes, the median
    ratio_geo = np.exp(np.mean(np.log(sim)) - np.mean(np.log(obs)))
    assert 1 / 1.5 < ratio_geo < 1.5, ratio_geo
    if channel != "template":
        ratio_median = np.median(sim) / np.median(obs)
        assert 1 / 1.5 < ratio_median < 1.5, ratio_median
    lo, hi = np.percentile(obs, [5, 95])
    assert np.mean((sim > lo / 1.5) & (sim < hi * 1.5)) > 0.9


def test_simulated_differences_are_white_and_background_free_like_the_real_ones(real, simulated):
    noise_only = [t for t in simulated if t.truth["kind"] == "noise_peak"] or simulated[:20]
    corr = np.median([lag1_correlation(t.stamps["DIFFERENCE"]) for t in noise_only])
    assert abs(corr - real["corr_difference"].median()) < 0.1
    sky = np.median([np.median(t.stamps["DIFFERENCE"]) for t in simulated])
    assert abs(sky) < 0.3 * real["sigma_difference"].median()


def test_simulated_psf_width_is_measured_back_by_the_real_data_method():
    ratios = []
    for index in range(25):
        trip = simulate_triplet("ztf", seed=13, index=index, kind="point_isolated")
        if trip.truth["snr"] < 40 or trip.truth["isdiffpos"] != "t":
            continue
        fwhm = central_fwhm(trip.stamps["DIFFERENCE"], None, SURVEYS["ztf"].pixel_scale)
        ratios.append(fwhm / (trip.truth["fwhm_science"] * HSM_FWHM_PER_MOFFAT3_FWHM))
    assert len(ratios) >= 8
    assert abs(np.median(ratios) - 1.0) < 0.08
