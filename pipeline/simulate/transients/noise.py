"""Noise, image subtraction and matched-filter S/N of the simulated triplets (:mod:`pipeline.simulate.transients.dataset`).

Images are ``(H, W)`` float64 in ADU, variances in ADU^2; ``sky`` is the sky level (ADU), ``sigma`` the
background noise (ADU) and ``gain`` the detector gain (e-/ADU). The template is matched to the science PSF by
a Gaussian kernel of sigma :func:`kernel_sigma` (px), ``sigma_k^2 = sigma_sci^2 - sigma_tmpl^2``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from pipeline.simulate.transients.surveys import FWHM_PER_SIGMA, Conditions, SurveyModel


def noise_params(sky: float, sigma: float, gain: float) -> tuple[float, float]:
    """Effective gain (e-/ADU) and read-noise variance (ADU^2) giving background noise ``sigma`` on ``sky``.

    The read noise takes the background variance the sky's Poisson noise leaves, ``sigma^2 - sky / gain``
    (for background-subtracted real stamps it also stands in for the sky that was removed). Where the sky
    alone would exceed ``sigma`` (a coadded template, whose effective gain is the sum over its frames), the
    gain is raised so the sky gives 80 % of the variance."""
    gain = max(gain, sky / (0.8 * sigma**2))
    return gain, max(sigma**2 - sky / gain, 0.0)


def expected_variance(model: np.ndarray, sky: float, sigma: float, gain: float) -> np.ndarray:
    """Per-pixel variance (ADU^2) of ``model + sky`` under :func:`noise_params`."""
    gain, read_var = noise_params(sky, sigma, gain)
    return np.maximum(model + sky, 0.0) / gain + read_var


def add_noise(
    model: np.ndarray, sky: float, sigma: float, gain: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``model + sky`` with Poisson noise on the electrons plus Gaussian read noise (:func:`noise_params`);
    returns (image, variance map), ADU. (numpy's Poisson sampler is used rather than ``galsim.CCDNoise``,
    which is 50x slower per pixel for these means.)"""
    gain, read_var = noise_params(sky, sigma, gain)
    expected = np.maximum(model + sky, 0.0)
    image = rng.poisson(expected * gain) / gain + rng.normal(0.0, np.sqrt(read_var), size=model.shape)
    return image, expected / gain + read_var


def flux_for_snr(snr: float, unit_psf: np.ndarray, var0: np.ndarray, gain: float) -> float:
    """Flux (ADU) whose matched-filter S/N is ``snr`` on a background of variance ``var0`` (ADU^2), counting
    the source's own Poisson noise: solves ``F sum(P^2) = snr sqrt(sum(P^2 (var0 + F P / gain)))``."""
    p2 = float(np.sum(unit_psf**2))
    a = p2**2
    b = snr**2 * float(np.sum(unit_psf**3)) / gain
    c = snr**2 * float(np.sum(unit_psf**2 * var0))
    return float((b + np.sqrt(b * b + 4 * a * c)) / (2 * a))


def kernel_sigma(survey: SurveyModel, cond: Conditions) -> float:
    """Gaussian matching-kernel sigma (px) that blurs the template PSF to the science PSF."""
    s_sci = cond.fwhm_science / FWHM_PER_SIGMA / survey.pixel_scale
    s_tmp = cond.fwhm_template / FWHM_PER_SIGMA / survey.pixel_scale
    return float(np.sqrt(max(s_sci**2 - s_tmp**2, 0.0)))


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` convolved with the matching kernel of ``sigma`` px (unchanged below 0.05 px)."""
    return ndimage.gaussian_filter(image, sigma, mode="nearest") if sigma > 0.05 else image


def kernel_power(sigma: float) -> float:
    """Sum of squares of the normalised Gaussian matching kernel (variance reduction of smoothed noise)."""
    if sigma <= 0.05:
        return 1.0
    delta = np.zeros((41, 41))
    delta[20, 20] = 1.0
    return float(np.sum(ndimage.gaussian_filter(delta, sigma, mode="constant") ** 2))


def matched_snr(diff: np.ndarray, variance: np.ndarray, unit_psf: np.ndarray) -> float:
    """Matched-filter S/N of ``diff`` for a unit PSF image: ``sum(P D) / sqrt(sum(P^2 V))``."""
    return float(np.sum(unit_psf * diff) / np.sqrt(np.sum(unit_psf**2 * variance)))


def snr_map(diff: np.ndarray, variance: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Matched-filter S/N at every pixel for a symmetric unit PSF ``kernel`` (FFT convolution)."""
    num = signal.fftconvolve(diff, kernel, mode="same")
    den = np.sqrt(np.maximum(signal.fftconvolve(variance, kernel**2, mode="same"), 1e-12))
    return num / den
