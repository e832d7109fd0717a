"""Candidates made on real ZTF triplets (:mod:`pipeline.simulate.transients.backgrounds`): simulated point
sources and artefacts added to real science, template and difference stamps, and the labelled alerts
themselves.

Kinds (``injected_kind``, drawn from :data:`BACKGROUND_MIX` per candidate; all in DN, positions in px from the
stamp centre, PSFs Moffat beta=3 of the background's own seeing, :func:`pipeline.simulate.transients.scene.render`):

- real ``injected_point``: a point source at a uniform sub-pixel offset (|dx|, |dy| <= 0.5) of injected
  matched-filter S/N log-uniform in the survey's ``snr_range`` (6-300) on the background's difference noise,
  added to the science and to the difference: ``difference' = difference + P`` and ``science' = science + P``
  exactly (the real noise is kept everywhere; the source's own Poisson noise is not added); template unchanged.
  On an alert whose candidate fades (``isdiffpos = f``) the source fades too (``science' = science - P``), so
  that it adds to the candidate; in the alert's own orientation the difference still gains ``+P``.
- bogus ``dipole_misalignment``: a static star in all three images, its difference a misaligned subtraction
  ``F (P(x) - P(x + s))`` with ``|s|`` 0.2-0.6 px, residual peak S/N 6-60.
- bogus ``cosmic_ray``, ``hot_pixel``, ``bad_column``: the simulator's artefacts
  (:func:`pipeline.simulate.transients.artifacts.artifact_image`) at the background's noise, in the science and
  the difference.
- bogus ``saturated_star``: a star 1.2-10x over saturation in the science (clipped core and bleed trail,
  :func:`~pipeline.simulate.transients.artifacts.bleed`), unsaturated in the template; the difference holds the
  clipped core minus the star and the trail.
- bogus ``edge_nan``: a CCD edge or NaN block 2-8 px from the centre (every channel masked beyond it, written
  as NaN) with a subtraction residual of 3-30 sigma along its border in the difference.
- ``labelled_real`` / ``labelled_bogus``: the background alert itself, with its label from ``--labels`` (or a
  store's ``/labels/real``); only when such labels are given.

The background's own candidate sits at the centre of every stamp. So that a label is never a guess, the
kind decides which backgrounds it may use: real kinds only those whose centre candidate is real, bogus
kinds only those whose centre is bogus (a real source on a real candidate is still real; an artefact on a
bogus candidate is still bogus). Backgrounds of unknown class are not used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.simulate.runner import object_rngs
from pipeline.simulate.transients.artifacts import artifact_image, bleed
from pipeline.simulate.transients.backgrounds import Background, BackgroundSet
from pipeline.simulate.transients.noise import matched_snr
from pipeline.simulate.transients.scene import Source, moffat_psf, random_offset, render, unit_psf
from pipeline.simulate.transients.surveys import Conditions, SurveyModel
from pipeline.simulate.transients.triplet import Triplet

#: Kinds of candidates on real backgrounds and their default fractions (real 0.5, bogus 0.5). The
#: ``labelled_*`` kinds are left out (and the rest renormalised) where no labels are given.
BACKGROUND_MIX: dict[str, float] = {
    "injected_point": 0.40,
    "labelled_real": 0.10,
    "dipole_misalignment": 0.10,
    "cosmic_ray": 0.08,
    "hot_pixel": 0.04,
    "bad_column": 0.04,
    "saturated_star": 0.06,
    "edge_nan": 0.08,
    "labelled_bogus": 0.10,
}
REAL_BACKGROUND_KINDS = ("injected_point", "labelled_real")
#: Random stream of a background candidate (:func:`pipeline.simulate.runner.object_rngs`); the pure
#: simulator uses stream 0, so a row's draws never depend on which source it came from.
STREAM = 1


def background_mix(backgrounds: BackgroundSet) -> dict[str, float]:
    """:data:`BACKGROUND_MIX` for these backgrounds (labelled kinds only with explicit labels).

    Raises:
        ValueError: no background with a real (or a bogus) centre candidate, so that class cannot be made.
    """
    mix = {
        k: v for k, v in BACKGROUND_MIX.items() if backgrounds.explicit_labels or not k.startswith("labelled")
    }
    for label, name in ((1, "real"), (0, "bogus")):
        if not backgrounds.with_label(label):
            raise ValueError(
                f"no background alert has a {name} centre candidate ({len(backgrounds.backgrounds)} usable); "
                "real points go on real alerts and artefacts on bogus ones: give --labels candid,real or "
                "alerts with drb/rb scores of both classes"
            )
    return mix


def _conditions(bg: Background) -> Conditions:
    return Conditions(
        sky_science=bg.sky_science,
        sigma_science=bg.sigma_difference,  # artefact amplitudes are set against the difference noise
        sky_template=0.0,
        sigma_template=bg.sigma_template,
        fwhm_science=bg.fwhm_science,
        fwhm_template=bg.fwhm_template,
    )


def _point(survey: SurveyModel, bg: Background, rng: np.random.Generator, truth: dict) -> list[np.ndarray]:
    """``injected_point``: ``[science, template, difference]`` additions (DN)."""
    x, y = random_offset(rng)
    lo, hi = survey.snr_range
    snr = float(10 ** rng.uniform(np.log10(lo), np.log10(hi)))
    unit = unit_psf(survey, bg.fwhm_science, survey.size, x, y)
    # S/N on white difference noise; the sign of the alert's own candidate (a fading one fades further)
    flux = bg.diff_sign * snr * bg.sigma_difference / float(np.sqrt(np.sum(unit**2)))
    add = flux * unit
    truth.update(flux=flux, dx=x, dy=y)
    return [add, np.zeros_like(add), add]


def _static_star(
    survey: SurveyModel, bg: Background, rng: np.random.Generator, truth: dict, kind: str
) -> list[np.ndarray]:
    """``dipole_misalignment`` or ``saturated_star``: ``[science, template, difference]`` additions (DN)."""
    size, scale = survey.size, survey.pixel_scale
    x, y = random_offset(rng)
    psf_s, psf_t = moffat_psf(survey, bg.fwhm_science), moffat_psf(survey, bg.fwhm_template)
    unit_s = render([Source(None, 1.0, x, y)], psf_s, size, scale)
    unit_t = render([Source(None, 1.0, x, y)], psf_t, size, scale)
    truth.update(dx=x, dy=y)
    if kind == "saturated_star":
        flux = float(survey.saturation * 10 ** rng.uniform(np.log10(1.2), 1.0) / unit_s.max())
        science = bleed(bg.pixels[0].astype(np.float64) + flux * unit_s, survey.saturation)
        added = science - bg.pixels[0]
        truth.update(flux=flux)
        return [added, flux * unit_t, added - flux * unit_s]
    shift = float(rng.uniform(0.2, 0.6))
    phi = float(rng.uniform(0, 2 * np.pi))
    moved = render([Source(None, 1.0, x, y)], psf_s, size, scale, (shift * np.cos(phi), shift * np.sin(phi)))
    resid = unit_s - moved
    target = 10 ** rng.uniform(np.log10(6.0), np.log10(60.0))
    flux = float(target * bg.sigma_difference / np.abs(resid).max())
    flux = min(flux, 0.5 * survey.saturation / unit_s.max())
    truth.update(flux=flux, shift=shift)
    return [flux * unit_s, flux * unit_t, flux * resid]


def _edge(
    survey: SurveyModel, bg: Background, rng: np.random.Generator, truth: dict
) -> tuple[list[np.ndarray], np.ndarray]:
    """``edge_nan``: additions (a residual strip along the border in the difference) and the new mask."""
    size, c = survey.size, survey.size // 2
    distance = int(rng.integers(2, 9))
    side = int(rng.integers(4))
    width = int(rng.integers(1, 4))
    amp = float(
        rng.choice([-1.0, 1.0]) * bg.sigma_difference * 10 ** rng.uniform(np.log10(3.0), np.log10(30.0))
    )
    masked = np.zeros((size, size), bool)
    strip = np.zeros((size, size))
    edge = c + distance  # first masked row/column, counted from the centre outwards
    masked[edge:, :] = True
    strip[edge - width : edge, :] = amp
    masked, strip = np.rot90(masked, side).copy(), np.rot90(strip, side).copy()
    truth.update(flux=float(strip.sum()), length=float(distance), width=float(width), dx=0.0, dy=0.0)
    zero = np.zeros((size, size))
    return [zero, zero, strip], masked


def _additions(
    kind: str, survey: SurveyModel, bg: Background, rng: np.random.Generator, truth: dict
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """What ``kind`` adds to the science, template and difference (DN), and the extra mask (or None)."""
    zero = np.zeros((survey.size, survey.size))
    if kind == "injected_point":
        return _point(survey, bg, rng, truth), None
    if kind in ("dipole_misalignment", "saturated_star"):
        return _static_star(survey, bg, rng, truth, kind), None
    if kind in ("cosmic_ray", "hot_pixel", "bad_column"):
        image, info = artifact_image(kind, survey, _conditions(bg), rng, survey.size)
        truth.update(info)
        return [image, zero, image], None
    if kind == "edge_nan":
        return _edge(survey, bg, rng, truth)
    truth.update(flux=0.0)  # labelled_real / labelled_bogus: the alert as it is
    return [zero, zero, zero], None


def _pick(
    mix: dict[str, float], backgrounds: BackgroundSet, rng: np.random.Generator, kind: str | None
) -> tuple[str, int]:
    """The kind (drawn always, so the stream is the same when it is forced) and the background's index."""
    names = list(mix)
    probs = np.array([mix[k] for k in names])
    drawn = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    if kind is not None and kind not in BACKGROUND_MIX:
        raise ValueError(f"unknown background kind {kind!r}; expected one of {list(BACKGROUND_MIX)}")
    kind = kind or drawn
    pool = backgrounds.with_label(1 if kind in REAL_BACKGROUND_KINDS else 0)
    return kind, pool[int(rng.integers(len(pool)))]


def background_triplet(
    survey: SurveyModel,
    backgrounds: BackgroundSet,
    mix: dict[str, float],
    seed: int,
    index: int,
    kind: str | None = None,
) -> Triplet:
    """Candidate ``index`` of a run with ``seed`` made on a real background (deterministic in ``(seed,
    index)`` and the backgrounds): its kind and background drawn from ``mix`` (:func:`background_mix`);
    ``kind`` forces one of :data:`BACKGROUND_MIX`.

    Returns:
        a :class:`~pipeline.simulate.transients.triplet.Triplet` of ``(63, 63)`` float32 stamps in DN
        (masked pixels NaN) whose truth adds ``background`` (candid), ``background_label``,
        ``injected_kind`` and ``fwhm_source`` to the simulator's columns.
    """
    rng, _ = object_rngs(seed, index, STREAM)
    kind, which = _pick(mix, backgrounds, rng, kind)
    bg = backgrounds.backgrounds[which]
    real = int(kind in REAL_BACKGROUND_KINDS)
    truth: dict[str, Any] = {"kind": kind, "real": real, "dx": 0.0, "dy": 0.0}
    additions, extra_mask = _additions(kind, survey, bg, rng, truth)
    mask = bg.mask if extra_mask is None else bg.mask | extra_mask[None]
    channels = [bg.pixels[c].astype(np.float64) + additions[c] for c in range(3)]
    return _finish(survey, bg, channels, mask, truth)


def _finish(
    survey: SurveyModel, bg: Background, channels: list[np.ndarray], mask: np.ndarray, truth: dict[str, Any]
) -> Triplet:
    """Measure the S/N, orient the difference as ZTF does (positive at the centre, ``isdiffpos``) and
    write masked pixels as NaN."""
    size = survey.size
    variance = np.full((size, size), bg.sigma_difference**2)
    difference = np.where(mask[2], 0.0, channels[2])
    unit_at = unit_psf(survey, bg.fwhm_science, size, truth["dx"], truth["dy"])
    model = difference - np.where(mask[2], 0.0, bg.pixels[2])
    snr = matched_snr(model, variance, unit_at)
    isdiffpos = "t"
    if matched_snr(difference, variance, unit_psf(survey, bg.fwhm_science, size)) < 0:
        channels[2], isdiffpos = -channels[2], "f"
    stamps = {
        name: np.where(mask[k], np.nan, channels[k]).astype(np.float32)
        for k, name in enumerate(("SCIENCE", "TEMPLATE", "DIFFERENCE"))
    }
    conditions = ("sky_science", "sigma_science", "sigma_template", "fwhm_science", "fwhm_template")
    truth.update({name: getattr(bg, name) for name in (*conditions, "fwhm_source")})
    truth.update(snr=snr, snr_measured=matched_snr(difference, variance, unit_at), isdiffpos=isdiffpos)
    # the candid as text: a float column would round 19-digit candids
    truth.update(background=str(bg.candid), background_label=bg.label, injected_kind=truth["kind"])
    return Triplet(stamps={ext: stamps[ext] for ext in survey.extensions}, variance=variance, truth=truth)
