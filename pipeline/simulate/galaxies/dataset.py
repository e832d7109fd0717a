"""Simulated multi-band galaxy stamps with known morphology and simulated Galaxy Zoo votes.

Each galaxy is a sum of GalSim profiles with their own colours (:mod:`pipeline.simulate.galaxies.profiles`:
ellipticals, disks with bulges, spiral arms, bars and rings, edge-on disks with rounded, boxy or no bulge
and dust lanes, mergers, irregulars, lenses, stars and artifacts), convolved with a Kolmogorov PSF per band
(g, r, i) and drawn with sky + Poisson + read noise, then sky-subtracted (ADU).

Stamp size: 69x69 px by default, the grid Dieleman et al. (2015) feed their network after cropping the 424 px
Kaggle images to 207 px and downsampling 3x, so the ``dieleman`` and ``small`` presets read these cubes
without resampling (and the 45x45 px parts cover the galaxy body). At 0.396"/px that is 27", enough for
half-light radii of 1-5" (the largest ellipticals are cut at their outskirts, as in survey cutouts) and
small enough that the small CNN trains on CPU (3x69x69 floats = 57 kB per galaxy).

Volunteers (:mod:`pipeline.simulate.galaxies.volunteers`) then classify each galaxy from its truth, with confusion
growing for small and faint galaxies (``snr_r`` inside the half-light radius, ``resolution`` = half-light
radius / PSF FWHM in r).

Output of :func:`simulate_galaxies` in ``out_dir``: ``images/<GalaxyID>.fits`` cubes ``(3, H, W)`` float32
ADU (header ``CHNAME1..3`` = g, r, i, ``OBJECT`` = GalaxyID, ``PIXSCALE``), optional ``jpeg/<GalaxyID>.jpg``
(424x424 gri composites like the Kaggle images), ``training_solutions.csv`` (Kaggle format: ``GalaxyID``,
``Class1.1`` .. ``Class11.6``), ``gz2_catalog.csv`` (GZ2 format counts and fractions), ``votes.csv`` (raw
counts), ``truth.csv`` (generating parameters) and ``simulation.json``.
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

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS
from pipeline import __version__
from pipeline.cpus import usable_cpus
from pipeline.simulate.galaxies.drawing import add_sky_noise, draw_models
from pipeline.simulate.galaxies.profiles import Component, GalaxyImaging, sample_galaxy
from pipeline.simulate.galaxies.sdss_jpeg import SdssJpegStyle, sdss_jpeg_chunk
from pipeline.simulate.galaxies.volunteers import (
    SNR_SCALE,
    confusion,
    gz2_table,
    kaggle_table,
    simulate_votes,
    votes_table,
)
from pipeline.simulate.runner import object_rngs, run_chunks, write_fits

BANDS = ("g", "r", "i")
FIRST_GALAXY_ID = 100000


@dataclass
class SimulatedGalaxy:
    """One simulated galaxy: ``cube`` ``(3, H, W)`` float32 ADU (sky-subtracted), ``truth`` parameters and
    ``votes`` ``(37,)`` int64 volunteer counts."""

    galaxy_id: int
    cube: np.ndarray
    truth: dict[str, Any]
    votes: np.ndarray


def _apparent_q(model: np.ndarray) -> float:
    """Axis ratio of a noiseless image: GalSim adaptive moments (HSM), or, where HSM fails (a galaxy larger
    than the stamp), the unweighted second moments of its positive pixels."""
    try:
        moments = galsim.hsm.FindAdaptiveMom(galsim.Image(np.ascontiguousarray(model)), strict=True)
        e = min(float(moments.observed_shape.e), 0.999)
        return float(np.sqrt((1.0 - e) / (1.0 + e)))
    except (galsim.GalSimHSMError, galsim.GalSimError):
        weights = np.clip(model, 0.0, None)
        if weights.sum() <= 0:
            return float("nan")
        y, x = np.indices(model.shape)
        cov = np.cov(np.vstack([x.ravel(), y.ravel()]), aweights=weights.ravel(), bias=True)
        low, high = np.linalg.eigvalsh(cov)
        return float(np.sqrt(max(low, 0.0) / high))


def render_galaxy(
    comps: list[Component], imaging: GalaxyImaging, rng: np.random.Generator, fwhm_r: float
) -> tuple[np.ndarray, np.ndarray]:
    """Draw components in g, r, i through a Kolmogorov PSF and add sky + Poisson + read noise.

    Args:
        comps: the galaxy's components.
        imaging: the imaging set-up.
        rng: random stream for the noise.
        fwhm_r: r-band PSF FWHM, arcsec.

    Returns:
        ``(cube, model)``: ``(3, H, W)`` float32 sky-subtracted noisy images and ``(3, H, W)`` float64
        noiseless models, ADU.
    """
    models = draw_models(comps, imaging, fwhm_r)
    return add_sky_noise(models, imaging, rng).astype(np.float32), models


def classify_galaxy(
    truth: dict[str, Any],
    model_r: np.ndarray,
    imaging: GalaxyImaging,
    seed: int,
    index: int,
    snr_scale: float = SNR_SCALE,
) -> np.ndarray:
    """Add ``psf_fwhm_r`` (already in ``truth``), ``snr_r``, ``resolution``, ``apparent_q``, ``confusion``
    and ``n_volunteers`` to ``truth`` and return the ``(37,)`` int64 votes of its volunteers.

    Args:
        truth: the galaxy's parameters with ``psf_fwhm_r`` (arcsec).
        model_r: noiseless PSF-convolved r-band image, ADU (any pixel scale: ``apparent_q`` is measured on
            it, the S/N counts its total flux).
        imaging: the imaging whose sky and pixels the S/N is counted in.
        seed, index: the run seed and the galaxy's index (votes come from stream 1).
        snr_scale: S/N scale of :func:`pipeline.simulate.galaxies.volunteers.confusion`.
    """
    fwhm_r = truth["psf_fwhm_r"]
    r_e = max(float(truth["r_e"]), fwhm_r / 2)
    flux_r = max(float(model_r.sum()), 0.0)
    npix = np.pi * (r_e / imaging.pixel_scale) ** 2
    snr = 0.5 * flux_r / np.sqrt(npix * imaging.sigma_sky(1) ** 2 + 0.5 * flux_r / imaging.gain[1])
    resolution = 10.0 if truth["type"] in ("star", "artifact") else float(truth["r_e"]) / fwhm_r
    truth.update(snr_r=float(snr), resolution=resolution, apparent_q=_apparent_q(model_r))
    truth["confusion"] = confusion(truth["snr_r"], resolution, snr_scale)
    vote_rng, _ = object_rngs(seed, index, stream=1)
    votes = simulate_votes(truth, vote_rng)
    truth["n_volunteers"] = int(votes[:3].sum())
    return votes


def seeing(imaging: GalaxyImaging, rng: np.random.Generator) -> float:
    """r-band PSF FWHM of one galaxy, arcsec: ``imaging.seeing`` x 10^N(0, 0.08), within 0.9-2.0."""
    return float(np.clip(imaging.seeing * 10 ** rng.normal(0.0, 0.08), 0.9, 2.0))


def simulate_galaxy(
    imaging: GalaxyImaging, seed: int, index: int, kind: str | None = None
) -> SimulatedGalaxy:
    """Render galaxy ``index`` of the run with ``seed`` and let volunteers classify it (deterministic).

    Returns:
        a :class:`SimulatedGalaxy` with ``GalaxyID = 100000 + index``.
    """
    rng, deviate = object_rngs(seed, index)
    comps, truth = sample_galaxy(imaging, rng, deviate, kind)
    truth["psf_fwhm_r"] = seeing(imaging, rng)
    cube, models = render_galaxy(comps, imaging, rng, truth["psf_fwhm_r"])
    votes = classify_galaxy(truth, models[1], imaging, seed, index)
    galaxy_id = FIRST_GALAXY_ID + index
    return SimulatedGalaxy(
        galaxy_id=galaxy_id, cube=cube, truth={"GalaxyID": galaxy_id, **truth}, votes=votes
    )


def galaxy_hdulist(galaxy: SimulatedGalaxy, imaging: GalaxyImaging) -> fits.HDUList:
    """FITS cube ``(3, H, W)`` float32 with ``CHNAME1..3`` (g, r, i), ``OBJECT``, ``PIXSCALE`` and the
    per-band zero point, sky, gain and PSF FWHM."""
    hdu = fits.PrimaryHDU(galaxy.cube)
    h = hdu.header
    h["OBJECT"] = (str(galaxy.galaxy_id), "GalaxyID")
    h["PIXSCALE"] = (imaging.pixel_scale, "arcsec/pixel")
    h["BUNIT"] = ("ADU", "sky-subtracted")
    for k, band in enumerate(BANDS, start=1):
        h[f"CHNAME{k}"] = (band, f"channel {k} band")
        h[f"MAGZP{k}"] = (imaging.zero_point[k - 1], f"{band}: magnitude of 1 ADU")
        h[f"SKY{k}"] = (round(imaging.sky_adu(k - 1), 4), f"{band}: subtracted sky, ADU/pixel")
        h[f"GAIN{k}"] = (imaging.gain[k - 1], f"{band}: e-/ADU")
        fwhm = galaxy.truth["psf_fwhm_r"] * imaging.psf_band_ratio[k - 1]
        h[f"PSFFWHM{k}"] = (round(fwhm, 4), f"{band}: PSF FWHM, arcsec")
    h["SIMTYPE"] = (galaxy.truth["type"], "simulated morphology")
    h["ORIGIN"] = (f"stampflow {__version__} simulate galaxies", "")
    return fits.HDUList([hdu])


#: Display weights of i, r, g (as R, G, B) on top of the conversion to a common zero point, so that
#: red bulges look yellow-orange and blue arms blue, as in SDSS colour composites.
JPEG_WEIGHTS = (1.0, 1.3, 2.0)


def write_jpeg(cube: np.ndarray, path: str | os.PathLike, imaging: GalaxyImaging, size: int = 424) -> None:
    """Kaggle-like ``size`` x ``size`` JPEG: gri composite (i, r, g as R, G, B) on a common zero point with
    the Lupton et al. (2004) asinh stretch (:func:`astropy.visualization.make_lupton_rgb`, stretch 20 sky
    sigma, Q 4), resampled with Lanczos.

    Args:
        cube: ``(3, H, W)`` g, r, i images, ADU.
        path: output file.
        imaging: the set-up the cube was made with (zero points and sky noise).
        size: output side, pixels.
    """
    from astropy.visualization import make_lupton_rgb
    from PIL import Image

    scale = [10 ** (0.4 * (imaging.zero_point[1] - zp)) for zp in imaging.zero_point]
    red, green, blue = (cube[b] * scale[b] * w for b, w in zip((2, 1, 0), JPEG_WEIGHTS, strict=True))
    sigma = imaging.sigma_sky(1)
    rgb = make_lupton_rgb(red, green, blue, minimum=-sigma, stretch=20.0 * sigma, Q=4)
    image = Image.fromarray(np.ascontiguousarray(rgb[::-1]))  # FITS row 0 is the bottom
    image.resize((size, size), Image.Resampling.LANCZOS).save(path, format="JPEG", quality=90)


def _chunk(
    start: int, stop: int, *, imaging: GalaxyImaging, seed: int, out_dir: str, jpeg: bool
) -> list[dict]:
    out = Path(out_dir)
    rows = []
    for index in range(start, stop):
        galaxy = simulate_galaxy(imaging, seed, index)
        write_fits(
            galaxy_hdulist(galaxy, imaging), out / "images" / f"{galaxy.galaxy_id}.fits", compress=False
        )
        if jpeg:
            write_jpeg(galaxy.cube, out / "jpeg" / f"{galaxy.galaxy_id}.jpg", imaging)
        rows.append({"index": index, "truth": galaxy.truth, "votes": galaxy.votes})
    return rows


TRUTH_COLUMNS = (
    "GalaxyID",
    "type",
    "r_mag",
    "r_e",
    "pa",
    "q",
    "apparent_q",
    "sersic_n",
    "inclination",
    "bulge_to_total",
    "bulge_shape",
    "arms",
    "pitch",
    "winding",
    "arm_strength",
    "bar",
    "bar_strength",
    "bar_length",
    "ring",
    "ring_radius",
    "disturbed",
    "dust_lane",
    "merger_sep",
    "merger_ratio",
    "tidal_tails",
    "n_knots",
    "artifact",
    "odd_feature",
    "psf_fwhm_r",
    "snr_r",
    "resolution",
    "confusion",
    "n_volunteers",
)
#: Galaxy styles and the truth columns each writes.
STYLES = {"fits": TRUTH_COLUMNS, "sdss-jpeg": (*TRUTH_COLUMNS, "image_scale", "petro_r90", "close_neighbour")}


def simulate_galaxies(
    n: int,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    imaging: GalaxyImaging | None = None,
    workers: int | None = None,
    chunk_size: int = 50,
    jpeg: bool = False,
    progress: bool = False,
    style: str = "fits",
    sdss_style: SdssJpegStyle | None = None,
) -> dict[str, pd.DataFrame]:
    """Simulate ``n`` galaxies with volunteer votes into ``out_dir`` (layout in the module docstring).

    Same ``seed`` -> byte-identical files, whatever ``workers`` or ``chunk_size``.

    Args:
        n: number of galaxies (GalaxyID 100000 .. 100000 + n - 1).
        out_dir: output folder (created).
        seed: run seed.
        imaging: stamp size, pixel scale and noise (default :class:`GalaxyImaging`).
        workers: processes (default: all CPUs of this process).
        chunk_size: galaxies per task.
        jpeg: also write 424x424 JPEGs (``fits`` style).
        progress: show a tqdm bar.
        style: ``fits`` (the cubes above) or ``sdss-jpeg``: ``images/<GalaxyID>.jpg`` rendered like the
            Kaggle images instead (:mod:`pipeline.simulate.galaxies.sdss_jpeg`; ``imaging`` gives its
            native SDSS imaging, ``size`` and ``pixel_scale`` unused).
        sdss_style: the ``sdss-jpeg`` parameters (default :class:`SdssJpegStyle`).

    Returns:
        ``{"training_solutions", "gz2", "votes", "truth"}`` tables as written.
    """
    if style not in STYLES:
        raise ValueError(f"unknown galaxy style {style!r}; expected one of {list(STYLES)}")
    imaging = imaging or GalaxyImaging()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if jpeg and style == "fits":
        (out / "jpeg").mkdir(parents=True, exist_ok=True)
    sdss_style = sdss_style or SdssJpegStyle()
    options = {"jpeg": jpeg} if style == "fits" else {"style": sdss_style}
    rows = run_chunks(
        _chunk if style == "fits" else sdss_jpeg_chunk,
        n,
        chunk_size=chunk_size,
        workers=usable_cpus() if workers is None else workers,
        progress=progress,
        desc="simulate galaxies",
        imaging=imaging,
        seed=seed,
        out_dir=str(out),
        **options,
    )
    ids = [row["truth"]["GalaxyID"] for row in rows]
    votes = np.stack([row["votes"] for row in rows]) if rows else np.zeros((0, len(ANSWER_COLUMNS)), np.int64)
    tables = {
        "training_solutions": kaggle_table(ids, votes),
        "gz2": gz2_table(ids, votes, [row["truth"]["n_volunteers"] for row in rows]),
        "votes": votes_table(ids, votes),
        "truth": pd.DataFrame([row["truth"] for row in rows]).reindex(columns=list(STYLES[style])),
    }
    tables["training_solutions"].to_csv(out / "training_solutions.csv", index=False, float_format="%.10g")
    tables["gz2"].to_csv(out / "gz2_catalog.csv", index=False, float_format="%.10g")
    tables["votes"].to_csv(out / "votes.csv", index=False)
    tables["truth"].to_csv(out / "truth.csv", index=False, float_format="%.6g")
    meta = {
        "what": "stampflow simulated galaxies with Galaxy Zoo votes",
        "imaging": asdict(imaging),
        "bands": list(BANDS),
        **({} if style == "fits" else {"style": style, "sdss_jpeg": asdict(sdss_style)}),
        "n": n,
        "seed": seed,
        "created_by": f"stampflow {__version__}",
    }
    (out / "simulation.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return tables
