"""Drawing simulated galaxies: GalSim components through a per-band Kolmogorov PSF (:func:`draw_models`) and
SDSS-like sky, Poisson and read noise (:func:`add_sky_noise`), shared by the FITS style
(:func:`pipeline.simulate.galaxies.dataset.render_galaxy`) and the ``sdss-jpeg`` style
(:mod:`pipeline.simulate.galaxies.sdss_jpeg`)."""

from __future__ import annotations

import galsim
import numpy as np

from pipeline.simulate.galaxies.profiles import Component, GalaxyImaging

N_BANDS = 3  # g, r, i


def draw_models(
    comps: list[Component],
    imaging: GalaxyImaging,
    fwhm_r: float,
    bands: tuple[int, ...] = (0, 1, 2),
    gsparams: galsim.GSParams | None = None,
) -> np.ndarray:
    """Noiseless ``(3, size, size)`` float64 g, r, i images (ADU per pixel of ``imaging``) of ``comps``
    convolved with a Kolmogorov PSF of FWHM ``fwhm_r`` arcsec in r (``imaging.psf_band_ratio`` per band);
    a component of negative flux (a dust lane) subtracts. Bands not in ``bands`` stay zero; ``gsparams``
    (GalSim accuracy, default GalSim's) applies to the whole convolution."""
    n = imaging.size
    models = np.zeros((N_BANDS, n, n))
    for b in bands:
        psf = galsim.Kolmogorov(fwhm=fwhm_r * imaging.psf_band_ratio[b])
        parts = []
        for comp in comps:
            flux = imaging.flux(comp.band_mags()[b], b)
            sign = -1.0 if comp.profile.flux < 0 else 1.0
            parts.append(comp.profile.withFlux(sign * flux))
        if parts:
            image = galsim.ImageD(n, n, scale=imaging.pixel_scale)
            galsim.Convolve(galsim.Sum(parts), psf, gsparams=gsparams).drawImage(image)
            models[b] = image.array
    return models


def add_sky_noise(models: np.ndarray, imaging: GalaxyImaging, rng: np.random.Generator) -> np.ndarray:
    """``(3, H, W)`` sky-subtracted noisy images, float64 ADU: Poisson(``(model + sky) x gain``) electrons
    plus Gaussian read noise, back to ADU, minus the sky (the random draws: per band, Poisson then read
    noise)."""
    out = np.empty_like(models)
    for b in range(models.shape[0]):
        gain, sky = imaging.gain[b], imaging.sky_adu(b)
        expected = np.maximum(models[b] + sky, 0.0)
        electrons = rng.poisson(expected * gain) + rng.normal(0.0, imaging.read_noise, size=expected.shape)
        out[b] = electrons / gain - sky
    return out
