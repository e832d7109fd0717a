"""One simulated real/bogus candidate: :func:`simulate_triplet` assembles its scene, exposures and truth.

The physics (what each class looks like, how the difference is made) is described in
:mod:`pipeline.simulate.transients.dataset`. Steps, in the order they draw from the candidate's random stream: the
class and the observing conditions; the field stars; the class's sources or artefact (:func:`_real_source`,
:func:`_detector_artifact`, :func:`_static_star`); the template and science noise (:func:`_expose`). Stamps
are ``(size, size)`` float32 ADU (SNR: dimensionless); the variance is ``(size, size)`` float64 ADU^2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import galsim
import numpy as np

from pipeline.simulate.runner import object_rngs
from pipeline.simulate.transients.artifacts import artifact_image, bleed
from pipeline.simulate.transients.noise import (
    add_noise,
    expected_variance,
    flux_for_snr,
    kernel_power,
    kernel_sigma,
    matched_snr,
    noise_params,
    smooth,
    snr_map,
)
from pipeline.simulate.transients.scene import (
    Source,
    field_stars,
    moffat_psf,
    random_offset,
    render,
    unit_psf,
)
from pipeline.simulate.transients.surveys import (
    FWHM_PER_SIGMA,
    KINDS,
    REAL_KINDS,
    SURVEYS,
    Conditions,
    SurveyModel,
)


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


@dataclass
class _Setup:
    """What every class of candidate shares: the survey, the conditions, the PSFs and the noise level."""

    survey: SurveyModel
    kind: str
    cond: Conditions
    size: int  # stamp side, px (twice the survey's for a noise peak, cut down later)
    psf_science: galsim.GSObject
    psf_template: galsim.GSObject
    psf_pix: float  # science FWHM, px
    kernel_sigma: float  # matching kernel, px
    var_bg: float  # background variance of the difference at the candidate, ADU^2
    unit_centre: np.ndarray  # (size, size) unit-flux science PSF at the centre
    noise_per_flux: float  # flux error of a point source on the bare background, ADU


@dataclass
class _Scene:
    """The candidate's sources and artefact before noise, and its truth so far."""

    static: list[Source]  # in both the template and the science image
    truth: dict[str, Any]
    matched_psf: galsim.GSObject  # the PSF the template is matched to (the science PSF unless mismatched)
    transient: list[Source] = field(default_factory=list)  # in the science image only
    matched_shift: tuple[float, float] = (0.0, 0.0)  # misalignment of the matched template, px
    artifact: np.ndarray | None = None  # (size, size) ADU, unconvolved
    artifact_in_template: bool = False
    saturate: bool = False
    rendered: tuple[np.ndarray, np.ndarray] | None = None  # static scene through the science / template PSF


@dataclass
class _Exposures:
    """Noisy template, science and difference (ADU), the difference's variance (ADU^2) and its noiseless
    model (ADU; None until known)."""

    template: np.ndarray
    science: np.ndarray
    difference: np.ndarray
    variance: np.ndarray
    model_difference: np.ndarray | None


def _draw_kind(survey: SurveyModel, rng: np.random.Generator, kind: str | None) -> str:
    """The candidate's class: drawn from ``survey.mix`` (always, so the stream is the same) unless forced."""
    names = list(survey.mix)
    probs = np.array([survey.mix[k] for k in names], dtype=float)
    drawn = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    kind = kind or drawn
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    return kind


def _setup(survey: SurveyModel, kind: str, rng: np.random.Generator) -> _Setup:
    cond = survey.sample_conditions(rng)
    size = survey.size * 2 if kind == "noise_peak" else survey.size
    k_sigma = kernel_sigma(survey, cond)
    # background noise of the difference at the candidate, for setting fluxes from S/N
    var_bg = cond.sigma_science**2 + cond.sigma_template**2 * kernel_power(k_sigma)
    unit_centre = unit_psf(survey, cond.fwhm_science, size)
    return _Setup(
        survey=survey,
        kind=kind,
        cond=cond,
        size=size,
        psf_science=moffat_psf(survey, cond.fwhm_science),
        psf_template=moffat_psf(survey, cond.fwhm_template),
        psf_pix=cond.fwhm_science / survey.pixel_scale,
        kernel_sigma=k_sigma,
        var_bg=var_bg,
        unit_centre=unit_centre,
        noise_per_flux=np.sqrt(var_bg * np.sum(unit_centre**2)) / np.sum(unit_centre**2),
    )


def _render_static(setup: _Setup, scene: _Scene) -> tuple[np.ndarray, np.ndarray]:
    scale = setup.survey.pixel_scale
    return (
        render(scene.static, setup.psf_science, setup.size, scale),
        render(scene.static, setup.psf_template, setup.size, scale),
    )


def _host(setup: _Setup, scene: _Scene, rng: np.random.Generator, x: float, y: float) -> None:
    """A Sersic host galaxy 0-1.5 r_e from the point source at ``(x, y)`` px."""
    survey, scale = setup.survey, setup.survey.pixel_scale
    r_e = float(rng.uniform(*survey.host_r_e))
    n = round(float(rng.uniform(0.8, 4.0)), 1)  # GalSim caches Sersic tables per n
    q = float(rng.uniform(0.4, 1.0))
    host = galsim.Sersic(n=n, half_light_radius=r_e).shear(
        q=q, beta=float(rng.uniform(0, np.pi)) * galsim.radians
    )
    sep = float(rng.uniform(0.0, 1.5)) * r_e / scale
    phi = float(rng.uniform(0, 2 * np.pi))
    host_snr = 10 ** rng.uniform(np.log10(20.0), np.log10(500.0))
    area = np.sqrt(4 * np.pi) * np.hypot(setup.psf_pix / FWHM_PER_SIGMA, r_e / scale)
    host_flux = float(host_snr * setup.cond.sigma_science * area)
    scene.static.append(Source(host, host_flux, x + sep * np.cos(phi), y + sep * np.sin(phi)))
    scene.truth.update(host_flux=host_flux, host_r_e=r_e, host_n=n, host_q=q, host_sep=sep * scale)


def _exact_flux(setup: _Setup, scene: _Scene, flux: float, target: float, x: float, y: float) -> float:
    """The flux (sign of ``flux``) of S/N ``target``, counting the Poisson noise of the host / star and of
    the source itself; renders the static scene (kept in ``scene.rendered``)."""
    survey, cond, size, k_sigma = setup.survey, setup.cond, setup.size, setup.kernel_sigma
    scene.rendered = _render_static(setup, scene)
    fade = render(
        [Source(None, min(flux, 0.0), x, y)], setup.psf_science, size, survey.pixel_scale
    )  # fading: less Poisson noise
    var0 = expected_variance(scene.rendered[0] + fade, cond.sky_science, cond.sigma_science, survey.gain)
    var0 += smooth(
        expected_variance(scene.rendered[1], cond.sky_template, cond.sigma_template, survey.gain), k_sigma
    ) * kernel_power(k_sigma)
    gain_s = noise_params(cond.sky_science, cond.sigma_science, survey.gain)[0]
    exact = flux_for_snr(target, unit_psf(survey, cond.fwhm_science, size, x, y), var0, gain_s)
    return float(np.sign(flux)) * exact


def _real_source(setup: _Setup, scene: _Scene, rng: np.random.Generator) -> None:
    """A point source (isolated, on a host, or a variable star) of injected S/N in ``survey.snr_range``."""
    kind = setup.kind
    x, y = random_offset(rng)
    lo, hi = setup.survey.snr_range
    target = float(10 ** rng.uniform(np.log10(lo), np.log10(hi)))
    flux = target * setup.noise_per_flux  # on the bare background; refined below
    scene.truth.update(dx=x, dy=y)
    if kind == "point_on_host":
        _host(setup, scene, rng, x, y)
    if kind == "variable_star":
        fading = rng.random() < 0.3
        if fading:
            template_flux = flux / rng.uniform(0.1, 0.9)
            flux = -flux
        else:
            template_flux = flux * 10 ** rng.uniform(-1.0, 1.0)
        scene.static.append(Source(None, template_flux, x, y))
        scene.truth.update(template_flux=template_flux)
    flux = _exact_flux(setup, scene, flux, target, x, y)
    if kind == "variable_star" and flux < 0:
        flux = max(flux, -0.95 * scene.truth["template_flux"])  # a star cannot fade below zero flux
    scene.transient.append(Source(None, flux, x, y))
    scene.truth["flux"] = flux


def _detector_artifact(setup: _Setup, scene: _Scene, rng: np.random.Generator) -> None:
    """A cosmic ray, hot pixel or bad column, in the science image or (negative) in the template."""
    scene.artifact, info = artifact_image(setup.kind, setup.survey, setup.cond, rng, setup.size)
    scene.artifact_in_template = bool(rng.random() < setup.survey.template_artifacts)
    scene.truth.update(info, in_template=int(scene.artifact_in_template))
    if scene.artifact_in_template:
        scene.truth["flux"] = -info["flux"]


def _static_star(setup: _Setup, scene: _Scene, rng: np.random.Generator) -> None:
    """A star badly subtracted: a misaligned or PSF-mismatched template, or saturated in the science."""
    survey, size, scale, kind = setup.survey, setup.size, setup.survey.pixel_scale, setup.kind
    x, y = random_offset(rng)
    star = Source(None, 1.0, x, y)
    if kind == "dipole_misalignment":
        shift_len = float(rng.uniform(0.15, 0.6))
        phi = float(rng.uniform(0, 2 * np.pi))
        scene.matched_shift = (shift_len * np.cos(phi), shift_len * np.sin(phi))
        scene.truth.update(shift=shift_len)
    elif kind == "dipole_psf_mismatch":
        ratio = float(1 + rng.choice([-1, 1]) * rng.uniform(0.08, 0.30))
        scene.matched_psf = moffat_psf(survey, setup.cond.fwhm_science * ratio)
        scene.truth.update(psf_ratio=ratio)
    if kind == "saturated_star":
        scene.saturate = True
        star.flux = float(survey.saturation * 10 ** rng.uniform(np.log10(1.2), 1.0) / setup.unit_centre.max())
    else:
        resid = render([star], setup.psf_science, size, scale) - render(
            [star], scene.matched_psf, size, scale, scene.matched_shift
        )
        lo = 6.0 if kind == "dipole_misalignment" else 10.0  # a faint mismatch ring looks like a real PSF
        target = 10 ** rng.uniform(np.log10(lo), np.log10(lo * 10))
        star.flux = float(target * np.sqrt(setup.var_bg) / np.abs(resid).max())
        star.flux = min(star.flux, 0.5 * survey.saturation / setup.unit_centre.max())
    scene.static.append(star)
    scene.truth.update(flux=star.flux, dx=x, dy=y)


def _scene(setup: _Setup, rng: np.random.Generator) -> _Scene:
    """The field stars and the class's own sources or artefact."""
    kind = setup.kind
    scene = _Scene(
        static=field_stars(setup.survey, setup.cond, rng, setup.size),
        truth={"kind": kind, "real": int(kind in REAL_KINDS), "dx": 0.0, "dy": 0.0},
        matched_psf=setup.psf_science,
    )
    if kind in REAL_KINDS:
        _real_source(setup, scene, rng)
    elif kind in ("cosmic_ray", "hot_pixel", "bad_column"):
        _detector_artifact(setup, scene, rng)
    elif kind in ("dipole_misalignment", "dipole_psf_mismatch", "saturated_star"):
        _static_star(setup, scene, rng)
    else:  # noise_peak: nothing but the field
        scene.truth["flux"] = 0.0
    return scene


def _expose(setup: _Setup, scene: _Scene, rng: np.random.Generator) -> _Exposures:
    """Noisy template and science, and their difference against the PSF-matched template."""
    survey, cond, size, k_sigma = setup.survey, setup.cond, setup.size, setup.kernel_sigma
    scale = survey.pixel_scale
    if scene.rendered is None:
        scene.rendered = _render_static(setup, scene)
    static_s, model_t = scene.rendered
    model_s = static_s + render(scene.transient, setup.psf_science, size, scale)
    if scene.matched_psf is setup.psf_science and scene.matched_shift == (0.0, 0.0):
        model_m = static_s  # the static scene, matched to the science PSF
    else:
        model_m = render(scene.static, scene.matched_psf, size, scale, scene.matched_shift)
    template, var_t = add_noise(model_t, cond.sky_template, cond.sigma_template, survey.gain, rng)
    science, var_s = add_noise(model_s, cond.sky_science, cond.sigma_science, survey.gain, rng)
    if scene.artifact is not None:
        if scene.artifact_in_template:
            template = template + scene.artifact
        else:
            science = science + scene.artifact
    if scene.saturate:
        science = bleed(science, survey.saturation)
    noise_t = template - cond.sky_template - model_t  # includes a template artifact, if any
    matched = model_m + smooth(noise_t, k_sigma)
    var_m = smooth(var_t, k_sigma) * kernel_power(k_sigma)
    difference = science - cond.sky_science - matched
    # a noise peak's model is known only once its stamp is cut (:func:`_centre_on_noise_peak`)
    model_diff = None if setup.kind == "noise_peak" else _model_difference(setup, scene, model_s, model_m)
    return _Exposures(template, science, difference, var_s + var_m, model_diff)


def _model_difference(setup: _Setup, scene: _Scene, model_s: np.ndarray, model_m: np.ndarray) -> np.ndarray:
    """The noiseless difference (ADU) from the science and matched-template models: the transient, the
    artefact (smoothed by the matching kernel when in the template), the saturated star's residual."""
    cond, saturation = setup.cond, setup.survey.saturation
    model_diff = model_s - model_m
    if scene.artifact is not None:
        artifact = scene.artifact
        model_diff = model_diff + (
            smooth(-artifact, setup.kernel_sigma) if scene.artifact_in_template else artifact
        )
    if scene.saturate:
        model_diff = bleed(model_s + cond.sky_science, saturation) - cond.sky_science - model_m
    return model_diff


def _centre_on_noise_peak(setup: _Setup, exp: _Exposures) -> _Exposures:
    """Cut a stamp of ``survey.size`` centred on the strongest matched-filter peak of the source-free
    difference, whose noiseless model is zero."""
    survey, size = setup.survey, setup.size
    half = survey.size // 2
    box = min(survey.size, 2 * int(3 * setup.psf_pix) + 1)  # the PSF out to ~3 FWHM
    snr = snr_map(exp.difference, exp.variance, unit_psf(survey, setup.cond.fwhm_science, box))
    inner = np.abs(snr[half : size - half, half : size - half])
    py, px = np.unravel_index(int(np.argmax(inner)), inner.shape)
    window = (slice(py, py + survey.size), slice(px, px + survey.size))
    template, science, difference, variance = (
        a[window] for a in (exp.template, exp.science, exp.difference, exp.variance)
    )
    return _Exposures(template, science, difference, variance, np.zeros_like(difference))


def _measured_triplet(setup: _Setup, exp: _Exposures, truth: dict[str, Any]) -> Triplet:
    """Measure the S/N at the candidate, orient the difference (``flip_negative``: positive at the centre,
    ``isdiffpos``) and order the stamps as the survey's extensions."""
    survey, cond = setup.survey, setup.cond
    size = exp.difference.shape[0]
    unit_centre = setup.unit_centre if size == setup.size else unit_psf(survey, cond.fwhm_science, size)
    difference, variance = exp.difference, exp.variance
    unit_at = unit_psf(survey, cond.fwhm_science, size, truth["dx"], truth["dy"])
    snr_true = matched_snr(exp.model_difference, variance, unit_at)
    snr_measured = matched_snr(difference, variance, unit_at)
    isdiffpos = "t"
    if survey.flip_negative and matched_snr(difference, variance, unit_centre) < 0:
        difference, isdiffpos = -difference, "f"
    stamps = {"TEMPLATE": exp.template, "SCIENCE": exp.science, "DIFFERENCE": difference}
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
    setup = _setup(survey, _draw_kind(survey, rng, kind), rng)
    scene = _scene(setup, rng)
    exp = _expose(setup, scene, rng)
    if setup.kind == "noise_peak":
        exp = _centre_on_noise_peak(setup, exp)
    return _measured_triplet(setup, exp, scene.truth)
