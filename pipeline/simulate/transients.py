"""Simulated real/bogus difference-imaging triplets (template, science, difference [, SNR]) with known truth.

Every candidate is rendered with GalSim: a scene of static sources (field stars, a host galaxy, a variable
star) is drawn with the template PSF into the template and with the science PSF into the science stamp,
the transient or artifact is added, sky + Poisson + read noise is applied (electrons, gain), and the
difference is ``science - sky - matched template``. The matched template is the static scene drawn with the
science PSF plus the template's own noise convolved with the Gaussian matching kernel
``sigma_k^2 = sigma_sci^2 - sigma_tmpl^2`` (as Alard-Lupton/ZOGY subtraction does). The SNR channel (HiTS) is
the difference over the square root of its per-pixel variance. Stamps are centred on the candidate.

Surveys (:data:`SURVEYS`, :mod:`pipeline.simulate.transient_surveys`): ``hits`` (4x21x21 at 0.263"/px,
TEMPLATE/SCIENCE/DIFFERENCE/SNR, DECam-like) and ``ztf`` (3x63x63 at 1.01"/px, SCIENCE/TEMPLATE/DIFFERENCE,
noise, background and PSF measured on the shipped real ZTF triplets).

Classes and default mix (:data:`DEFAULT_MIX`, half real, half bogus):

- real: ``point_isolated`` (hostless point source), ``point_on_host`` (on a Sersic host, offset 0-1.5 r_e),
  ``variable_star`` (star in the template, flux change in the science, 30 % fading). Injected matched-filter
  S/N is log-uniform between ``snr_range`` (default 6-300).
- bogus: ``cosmic_ray`` (unconvolved 1-6 px tracks 0.2-0.5 px wide), ``hot_pixel`` (1-2 pixels),
  ``bad_column`` (full or partial column offset), ``dipole_misalignment`` (star subtracted with a 0.15-0.6
  px shift), ``dipole_psf_mismatch`` (matching kernel off by 8-30 % in FWHM), ``saturated_star`` (clipped core
  plus bleed trail in the science), ``noise_peak`` (source-free stamp centred on its strongest
  matched-filter peak). Artifacts (CR, hot pixel, column) sit in the template with probability
  ``template_artifacts`` (HiTS: single-epoch template) and then appear negative in the difference.

Learnability (documented hardest cases): a detection pipeline triggers at 5 sigma, but a pure-noise peak at 5
sigma cannot be told from a real source at 5 sigma, which would make ~1 % of labels ambiguous. Here real
sources start at S/N 6 (counting the Poisson noise of a host or star under them) and noise peaks are the
strongest matched-filter peak of a source-free stamp (median 3.0, 99 % below 4.6 sigma), so the two overlap
only where noise pulls a faint real source down. Measured on the default 20,000-triplet HiTS set (seed 0):
faint reals (S/N < 8) 3.8 %, noise peaks 5.9 %, and the best threshold on the measured S/N between noise peaks
and reals errs on 0.18 % of the set (``benchmarks/simulate.py`` prints these). PSF-mismatch residuals start at
a peak S/N of 10 so that their negative ring stays visible (a fainter one looks like a real point source).

Truth (``labels.csv``, one row per candidate): ``id``, ``real`` (0/1), ``kind``, ``artifact_type`` (the
bogus kind, ``none`` for real), ``flux`` (ADU, injected flux change / artifact flux, signed as in the
science-minus-template difference), ``snr`` (matched-filter S/N of the noiseless difference at the
candidate), ``snr_measured`` (same filter on the noisy difference), offsets ``dx``/``dy`` (px from the stamp
centre), conditions (``sky_science``, ``sigma_science``, ``sigma_template``, ``fwhm_science``,
``fwhm_template`` in ADU and arcsec), and per-kind parameters (``host_flux``, ``host_r_e``, ``template_flux``,
``shift``, ``psf_ratio``, ``length``, ``in_template``), ``isdiffpos``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import galsim
import numpy as np
import pandas as pd
from astropy.io import fits
from scipy import ndimage, signal

from pipeline import __version__
from pipeline.cpus import usable_cpus
from pipeline.simulate.runner import object_rngs, run_chunks, write_fits
from pipeline.simulate.transient_surveys import (
    BOGUS_KINDS,
    DEFAULT_MIX,
    FWHM_PER_SIGMA,
    HSM_FWHM_PER_MOFFAT3_FWHM,
    KINDS,
    REAL_KINDS,
    SURVEYS,
    ZTF_EXPOSURES,
    Conditions,
    SurveyModel,
)

__all__ = [
    "BOGUS_KINDS",
    "DEFAULT_MIX",
    "HSM_FWHM_PER_MOFFAT3_FWHM",
    "KINDS",
    "LABEL_COLUMNS",
    "REAL_KINDS",
    "SURVEYS",
    "ZTF_EXPOSURES",
    "Conditions",
    "SurveyModel",
    "Triplet",
    "candidate_id",
    "simulate_transients",
    "simulate_triplet",
    "triplet_hdulist",
]


@dataclass
class Triplet:
    """One simulated candidate.

    Attributes:
        stamps: extension name -> ``(H, W)`` float32 in ADU (SNR: dimensionless), in the order of
            ``survey.extensions``.
        variance: ``(H, W)`` float64 per-pixel variance of the difference, ADU^2.
        truth: the generating parameters (one ``labels.csv`` row, without ``id``).
    """

    stamps: dict[str, np.ndarray]
    variance: np.ndarray
    truth: dict[str, Any]


# --- rendering helpers --------------------------------------------------------------------------------


@dataclass
class _Source:
    profile: galsim.GSObject | None  # None: a point source
    flux: float  # ADU
    x: float  # px from the stamp centre
    y: float


def _psf(survey: SurveyModel, fwhm: float) -> galsim.GSObject:
    return galsim.Moffat(beta=survey.moffat_beta, fwhm=fwhm)


def _render(
    sources: list[_Source], psf: galsim.GSObject, size: int, scale: float, shift=(0.0, 0.0)
) -> np.ndarray:
    """Noiseless ``(size, size)`` float64 image (ADU) of point/extended sources seen through ``psf``."""
    image = galsim.ImageD(size, size, scale=scale)
    for src in sources:
        if src.flux == 0:
            continue
        obj = psf if src.profile is None else galsim.Convolve(src.profile, psf)
        obj.withFlux(src.flux).drawImage(
            image, offset=(src.x + shift[0], src.y + shift[1]), method="no_pixel", add_to_image=True
        )
    return image.array.copy()


def _unit_psf(survey: SurveyModel, fwhm: float, size: int, x: float = 0.0, y: float = 0.0) -> np.ndarray:
    return _render([_Source(None, 1.0, x, y)], _psf(survey, fwhm), size, survey.pixel_scale)


def _noise_params(sky: float, sigma: float, gain: float) -> tuple[float, float]:
    """Effective gain (e-/ADU) and read-noise variance (ADU^2) giving background noise ``sigma`` on ``sky``.

    The read noise takes the background variance the sky's Poisson noise leaves, ``sigma^2 - sky / gain``
    (for background-subtracted real stamps it also stands in for the sky that was removed). Where the sky
    alone would exceed ``sigma`` (a coadded template, whose effective gain is the sum over its frames), the
    gain is raised so the sky gives 80 % of the variance."""
    gain = max(gain, sky / (0.8 * sigma**2))
    return gain, max(sigma**2 - sky / gain, 0.0)


def _variance(model: np.ndarray, sky: float, sigma: float, gain: float) -> np.ndarray:
    """Per-pixel variance (ADU^2) of ``model + sky`` under :func:`_noise_params`."""
    gain, read_var = _noise_params(sky, sigma, gain)
    return np.maximum(model + sky, 0.0) / gain + read_var


def _noisy(model: np.ndarray, sky: float, sigma: float, gain: float, rng: np.random.Generator):
    """``model + sky`` with Poisson noise on the electrons plus Gaussian read noise (:func:`_noise_params`);
    returns (image, variance map), ADU. (numpy's Poisson sampler is used rather than ``galsim.CCDNoise``,
    which is 50x slower per pixel for these means.)"""
    gain, read_var = _noise_params(sky, sigma, gain)
    expected = np.maximum(model + sky, 0.0)
    image = rng.poisson(expected * gain) / gain + rng.normal(0.0, np.sqrt(read_var), size=model.shape)
    return image, expected / gain + read_var


def _flux_for_snr(snr: float, unit_psf: np.ndarray, var0: np.ndarray, gain: float) -> float:
    """Flux (ADU) whose matched-filter S/N is ``snr`` on a background of variance ``var0`` (ADU^2), counting
    the source's own Poisson noise: solves ``F sum(P^2) = snr sqrt(sum(P^2 (var0 + F P / gain)))``."""
    p2 = float(np.sum(unit_psf**2))
    a = p2**2
    b = snr**2 * float(np.sum(unit_psf**3)) / gain
    c = snr**2 * float(np.sum(unit_psf**2 * var0))
    return float((b + np.sqrt(b * b + 4 * a * c)) / (2 * a))


def _kernel_sigma(survey: SurveyModel, cond: Conditions) -> float:
    """Gaussian matching-kernel sigma (px) that blurs the template PSF to the science PSF."""
    s_sci = cond.fwhm_science / FWHM_PER_SIGMA / survey.pixel_scale
    s_tmp = cond.fwhm_template / FWHM_PER_SIGMA / survey.pixel_scale
    return float(np.sqrt(max(s_sci**2 - s_tmp**2, 0.0)))


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(image, sigma, mode="nearest") if sigma > 0.05 else image


def _kernel_power(sigma: float) -> float:
    """Sum of squares of the normalised Gaussian matching kernel (variance reduction of smoothed noise)."""
    if sigma <= 0.05:
        return 1.0
    delta = np.zeros((41, 41))
    delta[20, 20] = 1.0
    return float(np.sum(ndimage.gaussian_filter(delta, sigma, mode="constant") ** 2))


def _matched_snr(diff: np.ndarray, variance: np.ndarray, unit_psf: np.ndarray) -> float:
    """Matched-filter S/N of ``diff`` for a unit PSF image: ``sum(P D) / sqrt(sum(P^2 V))``."""
    return float(np.sum(unit_psf * diff) / np.sqrt(np.sum(unit_psf**2 * variance)))


def _snr_map(diff: np.ndarray, variance: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Matched-filter S/N at every pixel for a symmetric unit PSF ``kernel`` (FFT convolution)."""
    num = signal.fftconvolve(diff, kernel, mode="same")
    den = np.sqrt(np.maximum(signal.fftconvolve(variance, kernel**2, mode="same"), 1e-12))
    return num / den


def _random_offset(rng: np.random.Generator, half: float = 0.5) -> tuple[float, float]:
    return float(rng.uniform(-half, half)), float(rng.uniform(-half, half))


def _field_stars(survey: SurveyModel, cond: Conditions, rng: np.random.Generator, size: int) -> list[_Source]:
    """Unrelated stars (S/N 5-300 in the science image) placed away from the centre."""
    stars = []
    psf_pix = cond.fwhm_science / survey.pixel_scale
    min_sep = min(2.5 * psf_pix, 0.4 * size)
    for _ in range(int(rng.poisson(survey.field_stars))):
        radius = rng.uniform(min_sep, 0.5 * size)  # a ring around the candidate, corners included
        phi = rng.uniform(0.0, 2.0 * np.pi)
        x, y = radius * np.cos(phi), radius * np.sin(phi)
        snr = 5.0 * 10 ** rng.uniform(0.0, np.log10(60.0))
        flux = snr * cond.sigma_science * np.sqrt(4 * np.pi) * psf_pix / FWHM_PER_SIGMA
        stars.append(_Source(None, float(flux), float(x), float(y)))
    return stars


def _bleed(image: np.ndarray, saturation: float) -> np.ndarray:
    """Saturate ``image`` (ADU): charge above ``saturation`` spills up and down its column (bleed trail)."""
    out = image.copy()
    height = out.shape[0]
    for col in np.flatnonzero((out > saturation).any(axis=0)):
        column = out[:, col]
        rows = np.flatnonzero(column > saturation)
        excess = float(np.sum(column[rows] - saturation))
        column[rows] = saturation
        top, bottom = rows.min(), rows.max()
        while excess > 0 and (top > 0 or bottom < height - 1):
            for row in (top - 1, bottom + 1):
                if 0 <= row < height and excess > 0:
                    room = saturation - column[row]
                    take = min(max(room, 0.0), excess)
                    column[row] += take
                    excess -= take
            top, bottom = max(top - 1, 0), min(bottom + 1, height - 1)
        out[:, col] = column
    return out


def _artifact_image(kind: str, survey: SurveyModel, cond: Conditions, rng: np.random.Generator, size: int):
    """Unconvolved artifact (ADU) for ``cosmic_ray``, ``hot_pixel`` or ``bad_column``, and its truth."""
    image = np.zeros((size, size))
    c = size // 2
    sigma = cond.sigma_science
    if kind == "cosmic_ray":
        length = float(rng.uniform(*survey.cosmic_ray_length))
        width = float(rng.uniform(0.2, 0.5))
        angle = float(rng.uniform(0.0, np.pi))
        x, y = _random_offset(rng, 0.5)
        box = galsim.Box(width * survey.pixel_scale, length * survey.pixel_scale).rotate(
            angle * galsim.radians
        )
        unit = galsim.ImageD(size, size, scale=survey.pixel_scale)
        box.withFlux(1.0).drawImage(unit, offset=(x, y), method="auto")
        peak = float(rng.uniform(np.log10(8.0), np.log10(300.0)))
        flux = 10**peak * sigma / unit.array.max()
        image = unit.array * flux
        return image, {"flux": flux, "length": length, "dx": x, "dy": y, "width": width}
    if kind == "hot_pixel":
        amp = sigma * 10 ** rng.uniform(np.log10(8.0), np.log10(300.0))
        image[c, c] = amp
        if rng.random() < 0.3:  # a hot pair
            dy, dx = ((0, 1), (1, 0), (0, -1), (-1, 0))[int(rng.integers(4))]
            image[c + dy, c + dx] = amp * rng.uniform(0.3, 1.0)
        return image, {"flux": float(image.sum()), "dx": 0.0, "dy": 0.0}
    # bad column: full or partial, through or next to the centre
    col = c + int(rng.integers(-1, 2))
    amp = sigma * rng.uniform(2.5, 30.0)
    start = 0 if rng.random() < 0.5 else int(rng.integers(0, c))
    image[start:, col] = amp
    if rng.random() < 0.4:  # part of a column may read low instead
        image[start:, col] *= -1
    return image, {"flux": float(image.sum()), "dx": float(col - c), "dy": 0.0, "length": float(size - start)}


# --- one candidate ------------------------------------------------------------------------------------


def simulate_triplet(survey: SurveyModel | str, seed: int, index: int, kind: str | None = None) -> Triplet:
    """Render candidate ``index`` of the run with ``seed`` (deterministic in ``(seed, index)``).

    Args:
        survey: a :class:`SurveyModel` or its name (``"hits"``, ``"ztf"``).
        seed: the run's seed.
        index: the candidate's index.
        kind: force a class (one of :data:`KINDS`); None draws it from ``survey.mix``.

    Returns:
        a :class:`Triplet` whose stamps are ``(size, size)`` float32 ADU.
    """
    if isinstance(survey, str):
        survey = SURVEYS[survey]
    rng, _ = object_rngs(seed, index)
    names = list(survey.mix)
    probs = np.array([survey.mix[k] for k in names], dtype=float)
    drawn = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    kind = kind or drawn
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    cond = survey.sample_conditions(rng)
    size = survey.size * 2 if kind == "noise_peak" else survey.size
    scale = survey.pixel_scale
    psf_s, psf_t = _psf(survey, cond.fwhm_science), _psf(survey, cond.fwhm_template)
    psf_pix = cond.fwhm_science / scale
    k_sigma = _kernel_sigma(survey, cond)
    # background noise of the difference at the candidate, for setting fluxes from S/N
    var_bg = cond.sigma_science**2 + cond.sigma_template**2 * _kernel_power(k_sigma)
    unit_centre = _unit_psf(survey, cond.fwhm_science, size)
    noise_per_flux = np.sqrt(var_bg * np.sum(unit_centre**2)) / np.sum(unit_centre**2)  # flux error, ADU

    static = _field_stars(survey, cond, rng, size)
    transient: list[_Source] = []
    truth: dict[str, Any] = {"kind": kind, "real": int(kind in REAL_KINDS), "dx": 0.0, "dy": 0.0}
    matched_psf, matched_shift = psf_s, (0.0, 0.0)
    artifact, artifact_in_template, saturate = None, False, False
    rendered: tuple[np.ndarray, np.ndarray] | None = None  # static scene through the science / template PSF

    if kind in REAL_KINDS:
        x, y = _random_offset(rng)
        lo, hi = survey.snr_range
        target = float(10 ** rng.uniform(np.log10(lo), np.log10(hi)))
        flux = target * noise_per_flux  # on the bare background; refined below
        truth.update(dx=x, dy=y)
        if kind == "point_on_host":
            r_e = float(rng.uniform(*survey.host_r_e))
            n = round(float(rng.uniform(0.8, 4.0)), 1)  # GalSim caches Sersic tables per n
            q = float(rng.uniform(0.4, 1.0))
            host = galsim.Sersic(n=n, half_light_radius=r_e).shear(
                q=q, beta=float(rng.uniform(0, np.pi)) * galsim.radians
            )
            sep = float(rng.uniform(0.0, 1.5)) * r_e / scale
            phi = float(rng.uniform(0, 2 * np.pi))
            host_snr = 10 ** rng.uniform(np.log10(20.0), np.log10(500.0))
            area = np.sqrt(4 * np.pi) * np.hypot(psf_pix / FWHM_PER_SIGMA, r_e / scale)
            host_flux = float(host_snr * cond.sigma_science * area)
            static.append(_Source(host, host_flux, x + sep * np.cos(phi), y + sep * np.sin(phi)))
            truth.update(host_flux=host_flux, host_r_e=r_e, host_n=n, host_q=q, host_sep=sep * scale)
        if kind == "variable_star":
            fading = rng.random() < 0.3
            if fading:
                template_flux = flux / rng.uniform(0.1, 0.9)
                flux = -flux
            else:
                template_flux = flux * 10 ** rng.uniform(-1.0, 1.0)
            static.append(_Source(None, template_flux, x, y))
            truth.update(template_flux=template_flux)
        # exact flux for the target S/N, counting the Poisson noise of the host / star and of the source
        rendered = (_render(static, psf_s, size, scale), _render(static, psf_t, size, scale))
        fade = _render(
            [_Source(None, min(flux, 0.0), x, y)], psf_s, size, scale
        )  # fading: less Poisson noise
        var0 = _variance(rendered[0] + fade, cond.sky_science, cond.sigma_science, survey.gain)
        var0 += _smooth(
            _variance(rendered[1], cond.sky_template, cond.sigma_template, survey.gain), k_sigma
        ) * _kernel_power(k_sigma)
        gain_s = _noise_params(cond.sky_science, cond.sigma_science, survey.gain)[0]
        exact = _flux_for_snr(target, _unit_psf(survey, cond.fwhm_science, size, x, y), var0, gain_s)
        flux = float(np.sign(flux)) * exact
        if kind == "variable_star" and flux < 0:
            flux = max(flux, -0.95 * truth["template_flux"])  # a star cannot fade below zero flux
        transient.append(_Source(None, flux, x, y))
        truth["flux"] = flux
    elif kind in ("cosmic_ray", "hot_pixel", "bad_column"):
        artifact, info = _artifact_image(kind, survey, cond, rng, size)
        artifact_in_template = bool(rng.random() < survey.template_artifacts)
        truth.update(info, in_template=int(artifact_in_template))
        if artifact_in_template:
            truth["flux"] = -info["flux"]
    elif kind in ("dipole_misalignment", "dipole_psf_mismatch", "saturated_star"):
        x, y = _random_offset(rng)
        star = _Source(None, 1.0, x, y)
        if kind == "dipole_misalignment":
            shift_len = float(rng.uniform(0.15, 0.6))
            phi = float(rng.uniform(0, 2 * np.pi))
            matched_shift = (shift_len * np.cos(phi), shift_len * np.sin(phi))
            truth.update(shift=shift_len)
        elif kind == "dipole_psf_mismatch":
            ratio = float(1 + rng.choice([-1, 1]) * rng.uniform(0.08, 0.30))
            matched_psf = _psf(survey, cond.fwhm_science * ratio)
            truth.update(psf_ratio=ratio)
        if kind == "saturated_star":
            saturate = True
            star.flux = float(survey.saturation * 10 ** rng.uniform(np.log10(1.2), 1.0) / unit_centre.max())
        else:
            resid = _render([star], psf_s, size, scale) - _render(
                [star], matched_psf, size, scale, matched_shift
            )
            lo = 6.0 if kind == "dipole_misalignment" else 10.0  # a faint mismatch ring looks like a real PSF
            target = 10 ** rng.uniform(np.log10(lo), np.log10(lo * 10))
            star.flux = float(target * np.sqrt(var_bg) / np.abs(resid).max())
            star.flux = min(star.flux, 0.5 * survey.saturation / unit_centre.max())
        static.append(star)
        truth.update(flux=star.flux, dx=x, dy=y)
    else:  # noise_peak: nothing but the field
        truth["flux"] = 0.0

    # science and template
    if rendered is None:
        rendered = (_render(static, psf_s, size, scale), _render(static, psf_t, size, scale))
    static_s, model_t = rendered
    model_s = static_s + _render(transient, psf_s, size, scale)
    if matched_psf is psf_s and matched_shift == (0.0, 0.0):
        model_m = static_s  # the static scene, matched to the science PSF
    else:
        model_m = _render(static, matched_psf, size, scale, matched_shift)
    template, var_t = _noisy(model_t, cond.sky_template, cond.sigma_template, survey.gain, rng)
    science, var_s = _noisy(model_s, cond.sky_science, cond.sigma_science, survey.gain, rng)
    if artifact is not None:
        if artifact_in_template:
            template = template + artifact
        else:
            science = science + artifact
    if saturate:
        science = _bleed(science, survey.saturation)
    noise_t = template - cond.sky_template - model_t  # includes a template artifact, if any
    matched = model_m + _smooth(noise_t, k_sigma)
    var_m = _smooth(var_t, k_sigma) * _kernel_power(k_sigma)
    difference = science - cond.sky_science - matched
    variance = var_s + var_m

    if kind == "noise_peak":
        # centre a stamp of survey.size on the strongest matched-filter peak of the source-free difference
        half = survey.size // 2
        box = min(survey.size, 2 * int(3 * psf_pix) + 1)  # the PSF out to ~3 FWHM
        snr_map = _snr_map(difference, variance, _unit_psf(survey, cond.fwhm_science, box))
        inner = np.abs(snr_map[half : size - half, half : size - half])
        py, px = np.unravel_index(int(np.argmax(inner)), inner.shape)
        window = (slice(py, py + survey.size), slice(px, px + survey.size))
        template, science, difference, variance = (
            a[window] for a in (template, science, difference, variance)
        )
        model_diff = np.zeros_like(difference)
        size = survey.size
        unit_centre = _unit_psf(survey, cond.fwhm_science, size)
    else:
        model_diff = model_s - model_m
        if artifact is not None:
            model_diff = model_diff + (_smooth(-artifact, k_sigma) if artifact_in_template else artifact)
        if saturate:
            model_diff = _bleed(model_s + cond.sky_science, survey.saturation) - cond.sky_science - model_m

    unit_at = _unit_psf(survey, cond.fwhm_science, size, truth["dx"], truth["dy"])
    snr_true = _matched_snr(model_diff, variance, unit_at)
    snr_measured = _matched_snr(difference, variance, unit_at)
    isdiffpos = "t"
    if survey.flip_negative and _matched_snr(difference, variance, unit_centre) < 0:
        difference, isdiffpos = -difference, "f"
    stamps = {"TEMPLATE": template, "SCIENCE": science, "DIFFERENCE": difference}
    if survey.has_snr:
        stamps["SNR"] = difference / np.sqrt(variance)
    truth.update(
        snr=snr_true,
        snr_measured=snr_measured,
        isdiffpos=isdiffpos,
        sky_science=cond.sky_science,
        sigma_science=cond.sigma_science,
        sigma_template=cond.sigma_template,
        fwhm_science=cond.fwhm_science,
        fwhm_template=cond.fwhm_template,
    )
    ordered = {ext: stamps[ext].astype(np.float32) for ext in survey.extensions}
    return Triplet(stamps=ordered, variance=variance, truth=truth)


def candidate_id(survey: SurveyModel | str, index: int) -> str:
    """Candidate id of simulated triplet ``index``: ``sim-hits-0000042``."""
    name = survey if isinstance(survey, str) else survey.name
    return f"sim-{name}-{index:07d}"


def triplet_hdulist(
    triplet: Triplet, survey: SurveyModel, cid: str, reuse: fits.HDUList | None = None
) -> fits.HDUList:
    """Multi-extension FITS of a triplet: empty primary (``OBJECT``, ``PIXSCALE``, truth keys) + one image
    extension per channel in ``survey.extensions`` order.

    ``reuse``: an HDU list this function returned before for the same survey; it is updated in place and
    returned (the same bytes as a fresh one, 5x faster to write: astropy's HDU construction dominates)."""
    if reuse is None:
        reuse = fits.HDUList([fits.PrimaryHDU()])
        for ext, data in triplet.stamps.items():
            hdu = fits.ImageHDU(data, name=ext)
            hdu.header["BUNIT"] = "" if ext == "SNR" else "ADU"
            reuse.append(hdu)
    else:
        for hdu, data in zip(reuse[1:], triplet.stamps.values(), strict=True):
            hdu.data = data
    h = reuse[0].header
    h["OBJECT"] = (cid, "simulated candidate id")
    h["PIXSCALE"] = (survey.pixel_scale, "arcsec/pixel")
    h["SURVEY"] = (survey.name, "simulated survey model")
    h["REAL"] = (int(triplet.truth["real"]), "1 real, 0 bogus")
    h["KIND"] = (triplet.truth["kind"], "simulated class")
    h["ISDIFPOS"] = (triplet.truth["isdiffpos"], "t: science-template, f: template-science")
    h["FWHM"] = (round(float(triplet.truth["fwhm_science"]), 4), "science PSF FWHM, arcsec (Moffat)")
    h["ORIGIN"] = (f"stampflow {__version__} simulate transients", "")
    return reuse


def _chunk(start: int, stop: int, *, survey: str, seed: int, out_dir: str, compress: bool) -> list[dict]:
    model = SURVEYS[survey]
    rows = []
    suffix = ".fits.gz" if compress else ".fits"
    hdul = None
    for index in range(start, stop):
        triplet = simulate_triplet(model, seed, index)
        cid = candidate_id(model, index)
        first = hdul is None
        hdul = triplet_hdulist(triplet, model, cid, reuse=hdul)
        write_fits(hdul, Path(out_dir) / f"{cid}{suffix}", compress, verify=first)
        kind = triplet.truth["kind"]
        rows.append(
            {
                "id": cid,
                "index": index,
                "artifact_type": "none" if kind in REAL_KINDS else kind,
                **triplet.truth,
            }
        )
    return rows


LABEL_COLUMNS = (
    "id",
    "real",
    "kind",
    "artifact_type",
    "flux",
    "snr",
    "snr_measured",
    "isdiffpos",
    "dx",
    "dy",
    "sky_science",
    "sigma_science",
    "sigma_template",
    "fwhm_science",
    "fwhm_template",
    "host_flux",
    "host_r_e",
    "host_n",
    "host_q",
    "host_sep",
    "template_flux",
    "shift",
    "psf_ratio",
    "length",
    "width",
    "in_template",
)


def simulate_transients(
    n: int,
    out_dir: str | os.PathLike,
    *,
    survey: str = "hits",
    seed: int = 0,
    workers: int | None = None,
    chunk_size: int = 500,
    compress: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """Simulate ``n`` candidates into ``out_dir``: one FITS file per candidate and ``labels.csv``.

    Files: ``<id>.fits.gz`` (or ``.fits``) multi-extension FITS (see :func:`triplet_hdulist`),
    ``labels.csv`` (:data:`LABEL_COLUMNS`, one row per candidate in index order) and ``simulation.json``
    (survey model, seed, count, code version). Same ``seed`` -> byte-identical files, whatever ``workers``.

    Args:
        n: number of candidates.
        out_dir: output folder (created).
        survey: ``"hits"`` (4x21x21) or ``"ztf"`` (3x63x63).
        seed: run seed.
        workers: processes (default: all CPUs of this process).
        chunk_size: candidates per task.
        compress: gzip the FITS files.
        progress: show a tqdm bar.

    Returns:
        the labels table.
    """
    if survey not in SURVEYS:
        raise ValueError(f"unknown survey {survey!r}; expected one of {sorted(SURVEYS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_chunks(
        _chunk,
        n,
        chunk_size=chunk_size,
        workers=usable_cpus() if workers is None else workers,
        progress=progress,
        desc=f"simulate {survey} triplets",
        survey=survey,
        seed=seed,
        out_dir=str(out),
        compress=compress,
    )
    labels = pd.DataFrame(rows).reindex(columns=list(LABEL_COLUMNS))
    labels.to_csv(out / "labels.csv", index=False, float_format="%.6g")
    meta = {
        "what": "stampflow simulated real/bogus triplets",
        "survey": asdict(SURVEYS[survey]),
        "n": n,
        "seed": seed,
        "created_by": f"stampflow {__version__}",
        "files": "<id>.fits.gz" if compress else "<id>.fits",
    }
    (out / "simulation.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return labels
