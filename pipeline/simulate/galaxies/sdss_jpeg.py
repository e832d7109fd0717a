"""The ``sdss-jpeg`` style: simulated galaxies rendered like the Galaxy Zoo 2 / Kaggle JPEGs.

The real images (Willett et al. 2013) are SDSS colour composites cut out around each galaxy: 424x424 px at
``0.024 x petroR90_r`` arcsec/px (so every galaxy spans a similar share of its image), planes R, G, B =
bands i, r, g through the Lupton et al. (2004) asinh stretch, 8-bit, JPEG quality 75 (4:2:0), with the
SDSS PSF (~1.4" FWHM), sky noise on the native 0.396" pixels and the neighbours in the field.

:func:`simulate_sdss_galaxy` does the same with a galaxy of :func:`pipeline.simulate.galaxies.profiles.sample_galaxy`:

1. ``petroR90_r`` of the PSF-convolved r-band model (:func:`petro_r90`, SDSS's Petrosian definition:
   ratio 0.2, flux within 2 R_P) sets the image scale ``s = 0.024 petroR90`` arcsec/px (petroR90 >= 3",
   the GZ2 sample's lower limit).
2. Field stars and galaxies (:func:`neighbours`) are scattered over the field, ``density`` per arcmin^2
   down to r = 22 with counts rising 0.3 dex/mag.
3. Bands g, r, i are drawn on a grid of at most ``render_max`` px (native 0.396" pixels where that covers
   the field, coarser otherwise) with Poisson sky and read noise, in native-pixel surface brightness,
   put on the r zero point and weighted (``weights`` for i, r, g).
4. :func:`astropy.visualization.make_lupton_rgb` (per-channel black points ``sky_8bit`` below the sky,
   ``stretch`` and ``Q``) makes the 8-bit composite, which is resampled to 424 px (bilinear, as a cutout
   service resamples the survey's colour frames) and JPEG-encoded.

The parameters are set from summary statistics of the real dev images only (sky level and noise per
channel, central colour, size, concentration, saturation, share with a bright neighbour:
``benchmarks/galaxy_realism.py``), never fitted per galaxy.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import galsim
import numpy as np

from pipeline.simulate.galaxies.drawing import add_sky_noise, draw_models
from pipeline.simulate.galaxies.profiles import DISK, RED, Component, GalaxyImaging

NATIVE_SCALE = 0.396  # arcsec/px of SDSS frames
#: GalSim accuracy of the style: 8-bit JPEGs need far less than GalSim's defaults (5e-3, 1e-3), and the
#: FFTs shrink with it.
FAST = galsim.GSParams(folding_threshold=2e-2, maxk_threshold=5e-3)
GALAXY_EXTENT = 3.0  # half-width of the galaxy's stamp, in petroR90

#: Morphology mix of the style: fewer stars and artifacts than the FITS style (the GZ2 sample is galaxies
#: selected by the SDSS pipeline; Class1.3 averages 0.02-0.03 in the Kaggle labels), more disks and fewer
#: edge-on ones (set from the real label means: Class1.2, Class2.1, Class4.1).
SDSS_MIX: dict[str, float] = {
    "elliptical": 0.25,
    "disk": 0.56,
    "edge_on": 0.07,
    "merger": 0.05,
    "irregular": 0.05,
    "lens": 0.01,
    "star": 0.005,
    "artifact": 0.005,
}


@dataclass(frozen=True)
class SdssJpegStyle:
    """How :func:`render_sdss_jpeg` makes a Kaggle-like JPEG (lengths in arcsec, fluxes in r-band ADU of a
    native 0.396" pixel)."""

    size: int = 424  # px
    scale_per_r90: float = 0.024  # image arcsec/px per arcsec of petroR90_r (GZ2)
    min_r90: float = 3.0  # arcsec
    render_max: int = 212  # px, largest grid drawn before resampling
    weights: tuple[float, float, float] = (1.04, 1.2, 1.6)  # i, r, g as R, G, B
    stretch: float = 50.0  # in units of the r-band sky sigma of a native pixel
    q: float = 8.0
    sky_8bit: tuple[float, float, float] = (2.9, 3.8, 0.5)  # R, G, B black point below the sky
    quality: int = 75
    #: neighbours per arcmin^2 brighter than r = 22: an effective density, set by the share of real images
    #: with a bright neighbour (higher than SDSS counts, as the simulated galaxies are smaller on the sky)
    density: float = 20.0
    #: S/N scale of the volunteers' confusion (the FITS style's is 200): GZ2 volunteers saw each galaxy
    #: blown up to its image, and the real vote marginals show far more features than at 200
    snr_scale: float = 30.0
    mix: dict[str, float] = field(default_factory=lambda: dict(SDSS_MIX))


def petro_r90(image: np.ndarray, scale: float) -> float:
    """SDSS Petrosian R90 (arcsec) of a noiseless image centred on the array: Petrosian radius R_P where the
    surface brightness in the annulus 0.8-1.25 r is 0.2 of the mean within r; R90 encloses 90 % of the
    flux within 2 R_P (all of it when no R_P is found on the image)."""
    side = image.shape[0]
    y, x = np.indices(image.shape)
    r = np.hypot(x - (side - 1) / 2, y - (side - 1) / 2).ravel() * scale
    order = np.argsort(r)
    r, flux = r[order], np.clip(image.ravel()[order], 0.0, None)
    growth = np.cumsum(flux)
    radii = np.arange(1.0, r[-1] / 1.25, 0.5 * scale)
    inner = np.searchsorted(r, 0.8 * radii)
    outer = np.searchsorted(r, 1.25 * radii)
    within = np.searchsorted(r, radii)
    annulus = (growth[outer - 1] - growth[inner - 1]) / np.maximum(outer - inner, 1)
    mean = growth[within - 1] / np.maximum(within, 1)
    below = np.nonzero(annulus < 0.2 * mean)[0]
    limit = 2.0 * radii[below[0]] if below.size else r[-1]
    total = growth[min(np.searchsorted(r, limit), len(r)) - 1]
    if total <= 0:
        return 0.0
    return float(r[np.searchsorted(growth, 0.9 * total)])


class Neighbour(NamedTuple):
    """A field star or galaxy: its unshifted component, position (arcsec from the centre) and half-light
    radius (arcsec, 0 for a star)."""

    comp: Component
    x: float
    y: float
    r_e: float


def neighbours(rng: np.random.Generator, field_arcsec: float, density: float) -> list[Neighbour]:
    """Field stars and small galaxies over a square field of side ``field_arcsec``: Poisson(``density`` per
    arcmin^2 x area) sources with r magnitudes 22 - Exponential(1/(0.3 ln 10)) (>= 13.5), half stars
    (colours of main-sequence stars) and half exponential disks of 0.4-2" (red or blue).

    Returns:
        one :class:`Neighbour` per source.
    """
    count = int(rng.poisson(density * (field_arcsec / 60.0) ** 2))
    out = []
    for _ in range(count):
        mag = max(13.5, 22.0 - float(rng.exponential(1.0 / (0.3 * np.log(10)))))
        x, y = rng.uniform(-field_arcsec / 2, field_arcsec / 2, size=2)
        if rng.random() < 0.5:
            profile, r_e = galsim.DeltaFunction(), 0.0
            colour = (float(rng.uniform(0.3, 1.4)), float(rng.uniform(0.1, 0.6)))
        else:
            r_e = float(np.exp(rng.uniform(np.log(0.4), np.log(2.0))))
            profile = galsim.Exponential(half_light_radius=r_e).shear(
                q=float(rng.uniform(0.3, 1.0)), beta=float(rng.uniform(0, np.pi)) * galsim.radians
            )
            colour = RED if rng.random() < 0.4 else DISK
        out.append(Neighbour(Component(profile, mag, *colour), float(x), float(y), r_e))
    return out


def draw_field(
    comps: list[Component],
    others: list[Neighbour],
    grid: GalaxyImaging,
    fwhm_r: float,
    r90: float,
) -> np.ndarray:
    """Noiseless ``(3, n, n)`` g, r, i ADU per pixel of ``grid``: the galaxy drawn on a centred stamp of
    ``GALAXY_EXTENT`` x ``r90`` (arcsec) half-width (the FFT cost grows with the stamp), each neighbour on
    its own small stamp in the r-band PSF, scaled to its flux in each band."""
    n, scale = grid.size, grid.pixel_scale
    half = min(n // 2, int(np.ceil(GALAXY_EXTENT * r90 / scale)))
    m = 2 * half + n % 2  # same parity as n: the stamp's centre is the image's
    pad = (n - m) // 2
    models = np.zeros((3, n, n))
    models[:, pad : pad + m, pad : pad + m] = draw_models(comps, replace(grid, size=m), fwhm_r, gsparams=FAST)
    psf = galsim.Kolmogorov(fwhm=fwhm_r, gsparams=FAST)
    for comp, x, y, r_e in others:
        col, row = (n - 1) / 2 + x / scale, (n - 1) / 2 + y / scale
        ic, ir = round(col), round(row)
        reach = (6.0 if comp.r_mag < 17.0 else 3.0) * fwhm_r + 4.0 * r_e  # bright stars' wings show
        h = int(np.ceil(reach / scale)) + 1
        stamp = galsim.Convolve(comp.profile, psf, gsparams=FAST).drawImage(
            nx=2 * h + 1, ny=2 * h + 1, scale=scale, offset=(col - ic, row - ir)
        )
        r0, r1, c0, c1 = max(ir - h, 0), min(ir + h + 1, n), max(ic - h, 0), min(ic + h + 1, n)
        if r0 >= r1 or c0 >= c1:
            continue
        cut = stamp.array[r0 - (ir - h) : r1 - (ir - h), c0 - (ic - h) : c1 - (ic - h)]
        for b, mag in enumerate(comp.band_mags()):
            models[b, r0:r1, c0:c1] += grid.flux(mag, b) * cut
    return models


def composite(bands: np.ndarray, imaging: GalaxyImaging, style: SdssJpegStyle) -> np.ndarray:
    """``(3, n, n)`` g, r, i ADU per pixel of ``imaging`` -> ``(n, n, 3)`` uint8 R, G, B (row 0 at the top)
    by :func:`astropy.visualization.make_lupton_rgb`, in native-pixel surface brightness on the r zero
    point."""
    from astropy.visualization import LuptonAsinhStretch, ManualInterval, make_lupton_rgb

    native = replace(imaging, pixel_scale=NATIVE_SCALE)
    area = (NATIVE_SCALE / imaging.pixel_scale) ** 2
    zp = imaging.zero_point
    planes = [bands[b] * area * 10 ** (0.4 * (zp[1] - zp[b])) for b in (2, 1, 0)]  # i, r, g
    planes = [p * w for p, w in zip(planes, style.weights, strict=True)]
    stretch = style.stretch * native.sigma_sky(1)
    intervals = [ManualInterval(vmin=-level / 255.0 * stretch, vmax=None) for level in style.sky_8bit]
    rgb = make_lupton_rgb(
        *planes, interval=intervals, stretch_object=LuptonAsinhStretch(stretch=stretch, Q=style.q)
    )
    return np.ascontiguousarray(rgb[::-1])  # GalSim row 0 is the bottom


def close_neighbour(others: list[Neighbour], galaxy_mag: float, r90: float) -> bool:
    """Whether a neighbour no more than 2 mag fainter than the galaxy lies within 1.5 ``r90`` (arcsec) of
    its centre: what makes Galaxy Zoo volunteers answer "odd" (overlapping star or galaxy)."""
    for comp, x, y, _ in others:
        if comp.r_mag < galaxy_mag + 2.0 and np.hypot(x, y) < 1.5 * r90:
            return True
    return False


def simulate_sdss_galaxy(
    imaging: GalaxyImaging, style: SdssJpegStyle, seed: int, index: int
) -> tuple[bytes, dict, np.ndarray]:
    """Galaxy ``index`` of the run with ``seed`` as a Kaggle-like JPEG (deterministic).

    Returns:
        ``(jpeg_bytes, truth, votes)``; truth adds ``image_scale`` (arcsec/px), ``petro_r90`` (arcsec) and
        ``close_neighbour`` to the FITS style's.
    """
    from pipeline.simulate.galaxies.dataset import FIRST_GALAXY_ID, classify_galaxy, seeing
    from pipeline.simulate.galaxies.profiles import sample_galaxy
    from pipeline.simulate.runner import object_rngs

    rng, deviate = object_rngs(seed, index)
    native = replace(imaging, mix=dict(style.mix))
    comps, truth = sample_galaxy(native, rng, deviate)
    fwhm_r = seeing(imaging, rng)
    truth["psf_fwhm_r"] = fwhm_r
    probe = replace(imaging, size=64, pixel_scale=0.8)
    model_r = draw_models(comps, probe, fwhm_r, bands=(1,), gsparams=FAST)[1]
    r90 = max(petro_r90(model_r, probe.pixel_scale), style.min_r90)
    scale = style.scale_per_r90 * r90
    field_arcsec = style.size * scale
    others = neighbours(rng, field_arcsec, style.density)
    side = min(style.render_max, max(16, round(field_arcsec / NATIVE_SCALE)))
    grid = replace(imaging, size=side, pixel_scale=field_arcsec / side)
    bands = add_sky_noise(draw_field(comps, others, grid, fwhm_r, r90), grid, rng)
    truth.update(
        image_scale=scale, petro_r90=r90, close_neighbour=int(close_neighbour(others, truth["r_mag"], r90))
    )
    votes = classify_galaxy(truth, model_r, imaging, seed, index, style.snr_scale)
    galaxy_id = FIRST_GALAXY_ID + index
    return encode_jpeg(composite(bands, grid, style), style), {"GalaxyID": galaxy_id, **truth}, votes


def encode_jpeg(rgb: np.ndarray, style: SdssJpegStyle) -> bytes:
    """``(n, n, 3)`` uint8 -> ``style.size`` px JPEG bytes (bilinear resampling, quality ``style.quality``,
    4:2:0 chroma subsampling like the Kaggle files)."""
    from PIL import Image

    image = Image.fromarray(rgb)
    if rgb.shape[0] != style.size:
        image = image.resize((style.size, style.size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=style.quality, subsampling="4:2:0")
    return buffer.getvalue()


def sdss_jpeg_chunk(
    start: int, stop: int, *, imaging: GalaxyImaging, style: SdssJpegStyle, seed: int, out_dir: str
) -> list[dict]:
    """Galaxies ``start .. stop - 1`` as ``images/<GalaxyID>.jpg`` under ``out_dir``; one row (``index``,
    ``truth``, ``votes``) per galaxy (for :func:`pipeline.simulate.runner.run_chunks`)."""
    from pipeline.io import atomic_path

    rows = []
    for index in range(start, stop):
        data, truth, votes = simulate_sdss_galaxy(imaging, style, seed, index)
        with atomic_path(Path(out_dir) / "images" / f"{truth['GalaxyID']}.jpg") as tmp:
            tmp.write_bytes(data)
        rows.append({"index": index, "truth": truth, "votes": votes})
    return rows
