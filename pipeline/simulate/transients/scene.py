"""The sources of a simulated real/bogus candidate and how they are drawn (:mod:`pipeline.simulate.transients.dataset`).

A :class:`Source` is a point source or a GalSim profile with a flux (ADU) and an offset (px from the stamp
centre); :func:`render` draws a list of them through a Moffat PSF (:func:`moffat_psf`, FWHM in arcsec) into a
noiseless ``(size, size)`` float64 image in ADU. :func:`field_stars` draws the unrelated stars of a stamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np

from pipeline.simulate.transients.surveys import FWHM_PER_SIGMA, Conditions, SurveyModel


@dataclass
class Source:
    """One source of the scene."""

    profile: galsim.GSObject | None  # None: a point source
    flux: float  # ADU
    x: float  # px from the stamp centre
    y: float


def moffat_psf(survey: SurveyModel, fwhm: float) -> galsim.GSObject:
    """The survey's Moffat PSF of ``fwhm`` arcsec."""
    return galsim.Moffat(beta=survey.moffat_beta, fwhm=fwhm)


def render(
    sources: list[Source],
    psf: galsim.GSObject,
    size: int,
    scale: float,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Noiseless ``(size, size)`` float64 image (ADU) of point/extended sources seen through ``psf``.

    ``scale`` is the pixel scale (arcsec/px); ``shift`` moves every source by ``(dx, dy)`` px."""
    image = galsim.ImageD(size, size, scale=scale)
    for src in sources:
        if src.flux == 0:
            continue
        obj = psf if src.profile is None else galsim.Convolve(src.profile, psf)
        obj.withFlux(src.flux).drawImage(
            image, offset=(src.x + shift[0], src.y + shift[1]), method="no_pixel", add_to_image=True
        )
    return image.array.copy()


def unit_psf(survey: SurveyModel, fwhm: float, size: int, x: float = 0.0, y: float = 0.0) -> np.ndarray:
    """``(size, size)`` image of a unit-flux point source at ``(x, y)`` px from the centre, FWHM in arcsec."""
    return render([Source(None, 1.0, x, y)], moffat_psf(survey, fwhm), size, survey.pixel_scale)


def random_offset(rng: np.random.Generator, half: float = 0.5) -> tuple[float, float]:
    """``(dx, dy)`` px, each uniform in ``[-half, half]``."""
    return float(rng.uniform(-half, half)), float(rng.uniform(-half, half))


def field_stars(survey: SurveyModel, cond: Conditions, rng: np.random.Generator, size: int) -> list[Source]:
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
        stars.append(Source(None, float(flux), float(x), float(y)))
    return stars
