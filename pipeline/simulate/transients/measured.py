"""Measure noise, background and PSF width of real difference-imaging triplets.

The transient simulator (:mod:`pipeline.simulate.transients.dataset`) takes its ZTF-like observing conditions from
these measurements of the 97 real ZTF triplets shipped in ``data_catalogs/samples/ztf_triplets`` (gzipped
multi-extension FITS, SCIENCE/TEMPLATE/DIFFERENCE, pixel values in DN). NaN pixels and the blank sentinel
-3.4028235e38 are masked (:func:`pipeline.io.fits.read_stamp`) before anything is measured.

Per triplet (:func:`measure_triplet`):

- ``sky_<channel>``: median of the unmasked pixels, DN;
- ``sigma_<channel>``: robust noise, :func:`astropy.stats.mad_std` of the unmasked pixels, DN;
- ``corr_difference``: lag-1 autocorrelation of the sigma-clipped difference pixels (mean of x and y);
- ``fwhm_science``: PSF FWHM in arcsec of the central source of the science stamp, from GalSim's adaptive
  moments (``2.3548 * moments_sigma * pixel_scale``) when that source has S/N >= 20, else NaN.

Measured on the shipped samples (:func:`summarize`; pixel scale 1.01 arcsec/px; 97 triplets, 94 of 63x63 px,
the rest cut by a CCD edge to 41x63, 45x63, 63x53; 11 have masked pixels)::

    quantity                   median    5% .. 95%
    science sky (DN)             28.9    14.0 .. 274
    science sigma (DN)           13.7    4.46 .. 15.7     bimodal: nights at ~4.6 DN and at ~15 DN
    template sigma (DN)          0.20    0.12 .. 2.1      a coadd: 0.8 % .. 30 % of the science sigma
    difference sigma (DN)        13.5    4.61 .. 15.8     difference / science sigma 1.00 (0.87 .. 1.04)
    difference sky (DN)          0.06   -2.0  .. 4.7      background-subtracted
    lag-1 noise correlation     -0.01   -0.05 .. 0.16     nearly white (older 2018 alerts up to 0.6)
    science PSF FWHM (")         3.7     2.15 .. 4.5      32 stamps with a S/N >= 20 central source

Per exposure (:func:`exposure_conditions`, 19 CCD-quadrant exposures, weighted by their triplets) the PSF
FWHM has median 2.3", 10-90 % 2.1" .. 4.4" (one night of the samples, set B, had 4" seeing and contributes
most of the bright central sources above). So a ZTF-like difference stamp has nearly white noise at the level
of the science stamp (the coadded template adds < 5 % in quadrature), zero background, and point sources of
FWHM ~2-2.5". The test suite re-measures these numbers (``test_sim_noise_model.py``), checks that the
simulator's :data:`pipeline.simulate.transients.surveys.ZTF_EXPOSURES` are these measurements, and that
simulated ZTF-like stamps have the real robust sigma within a factor 1.5.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path

import galsim
import numpy as np
import pandas as pd
from astropy.stats import mad_std, sigma_clip

from pipeline.io import fits_stem, read_stamp

#: ZTF pixel scale, arcsec/pixel.
ZTF_PIXEL_SCALE = 1.01
#: Extensions of a ZTF triplet file, as channel names used in the measurement columns.
CHANNELS = ("science", "template", "difference")
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # 2.3548


def sample_triplet_paths() -> list[Path]:
    """The real ZTF triplets shipped with the package (``data_catalogs/samples/ztf_triplets/*.fits.gz``)."""
    folder = files("data_catalogs").joinpath("samples", "ztf_triplets")
    return sorted(Path(str(folder)).glob("*.fits.gz"))


def lag1_correlation(pixels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean lag-1 autocorrelation (along x and y) of an image's noise, sources clipped at 3 sigma.

    Args:
        pixels: ``(H, W)`` image.
        mask: ``(H, W)`` bool, True for pixels to ignore.

    Returns:
        dimensionless correlation coefficient; 0 for white noise, NaN when too few pixels remain.
    """
    data = np.ma.masked_array(np.asarray(pixels, dtype=np.float64), mask=mask)
    clipped = sigma_clip(data, sigma=3.0, maxiters=5)
    values = clipped.filled(np.nan) - np.ma.median(clipped)
    coeffs = []
    for a, b in ((values[:, 1:], values[:, :-1]), (values[1:, :], values[:-1, :])):
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() > 50:
            coeffs.append(np.corrcoef(a[ok], b[ok])[0, 1])
    return float(np.mean(coeffs)) if coeffs else float("nan")


def central_fwhm(
    pixels: np.ndarray, mask: np.ndarray | None, pixel_scale: float, box: int = 21, min_snr: float = 20.0
) -> float:
    """PSF FWHM of the source at the centre of a stamp from GalSim adaptive moments (HSM).

    Args:
        pixels: ``(H, W)`` image in any flux unit (background is removed with the median).
        mask: ``(H, W)`` bool of pixels to ignore (set to the background), or None.
        pixel_scale: arcsec/pixel.
        box: side of the central cut-out the moments are measured in, pixels.
        min_snr: the moments amplitude over (noise * sqrt(4 pi sigma^2)) must reach this, else NaN.

    Returns:
        Gaussian-equivalent FWHM ``2.3548 * sigma`` in arcsec, or NaN (no source, too faint, HSM failed).
    """
    data = np.asarray(pixels, dtype=np.float64)
    good = np.ones(data.shape, bool) if mask is None else ~mask
    if good.sum() < 50:
        return float("nan")
    data = np.where(good, data - np.median(data[good]), 0.0)
    noise = float(mad_std(data[good]))
    h, w = data.shape
    cy, cx, half = h // 2, w // 2, box // 2
    cut = np.ascontiguousarray(data[max(cy - half, 0) : cy + half + 1, max(cx - half, 0) : cx + half + 1])
    try:
        moments = galsim.hsm.FindAdaptiveMom(galsim.Image(cut), strict=True)
    except (galsim.GalSimHSMError, galsim.GalSimError):
        return float("nan")
    sigma = moments.moments_sigma
    if not np.isfinite(sigma) or sigma <= 0 or noise <= 0:
        return float("nan")
    snr = moments.moments_amp / (noise * np.sqrt(4.0 * np.pi * sigma**2))
    return float(FWHM_PER_SIGMA * sigma * pixel_scale) if snr >= min_snr else float("nan")


def measure_triplet(source: str | os.PathLike, pixel_scale: float = ZTF_PIXEL_SCALE) -> dict:
    """Noise, background and PSF width of one SCIENCE/TEMPLATE/DIFFERENCE triplet.

    Args:
        source: a multi-extension FITS file (optionally gzipped) with SCIENCE, TEMPLATE, DIFFERENCE.
        pixel_scale: arcsec/pixel.

    Returns:
        dict with ``id``, ``height``, ``width``, ``masked_fraction``, ``sky_<ch>`` and ``sigma_<ch>`` (DN) for
        ch in science/template/difference, ``corr_difference`` and ``fwhm_science`` (arcsec, NaN if no bright
        central source).
    """
    stamp = read_stamp(source, extensions=[c.upper() for c in CHANNELS])
    row: dict = {
        "id": fits_stem(source),
        "height": stamp.pixels.shape[1],
        "width": stamp.pixels.shape[2],
        "masked_fraction": float(stamp.mask.mean()),
    }
    for k, channel in enumerate(CHANNELS):
        good = stamp.pixels[k][~stamp.mask[k]].astype(np.float64)
        row[f"sky_{channel}"] = float(np.median(good))
        row[f"sigma_{channel}"] = float(mad_std(good))
    row["corr_difference"] = lag1_correlation(stamp.pixels[2], stamp.mask[2])
    row["fwhm_science"] = central_fwhm(stamp.pixels[0], stamp.mask[0], pixel_scale)
    return row


def measure_triplets(sources: Iterable[str | os.PathLike] | None = None) -> pd.DataFrame:
    """:func:`measure_triplet` for each source (default: the shipped ZTF samples), one row each."""
    paths: Sequence = list(sources) if sources is not None else sample_triplet_paths()
    return pd.DataFrame([measure_triplet(p) for p in paths])


def summarize(table: pd.DataFrame) -> dict[str, float]:
    """Medians and 5/95 percentiles of the :func:`measure_triplets` columns, plus noise ratios.

    Returns:
        flat dict, e.g. ``{"sigma_science_median": 13.7, "sigma_science_p05": 4.46, ...,
        "template_to_science_median": 0.01, "difference_to_science_median": 1.0, ...}``.
    """
    out: dict[str, float] = {"n": float(len(table))}
    table = table.assign(
        template_to_science=table["sigma_template"] / table["sigma_science"],
        difference_to_science=table["sigma_difference"] / table["sigma_science"],
    )
    columns = [c for c in table.columns if c.startswith(("sky_", "sigma_", "corr_", "fwhm_"))]
    for col in [*columns, "template_to_science", "difference_to_science"]:
        values = table[col].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        out[f"{col}_median"] = float(np.median(values))
        out[f"{col}_p05"] = float(np.percentile(values, 5))
        out[f"{col}_p95"] = float(np.percentile(values, 95))
        if col.startswith("sigma_") or col.startswith("sky_") or col.endswith("_to_science"):
            positive = values[values > 0]
            if positive.size:
                out[f"{col}_log10_std"] = float(np.std(np.log10(positive)))
    out["fwhm_science_count"] = float(np.isfinite(table["fwhm_science"]).sum())
    return out


def exposure_conditions(table: pd.DataFrame, exclude: Sequence[int] = ()) -> pd.DataFrame:
    """Observing conditions per exposure: the medians of :func:`measure_triplets` rows grouped by ZTF ``pid``.

    The ZTF processing id is ``candid // 10**6`` (one CCD quadrant of one exposure), so all its triplets share
    sky, noise and seeing. An exposure without a FWHM measurement gets the median FWHM of the exposures of
    the same night (``pid // 10**5``), else of all exposures.

    Args:
        table: output of :func:`measure_triplets` (``id`` must be the numeric candid).
        exclude: pids to leave out.

    Returns:
        one row per pid (sorted): ``pid``, ``n`` (triplets), ``sky_science``, ``sigma_science``,
        ``sky_template``, ``sigma_template``, ``sigma_difference`` (DN), ``fwhm_science`` (arcsec, HSM
        Gaussian-equivalent).
    """
    data = table.assign(pid=table["id"].astype("int64") // 10**6)
    data = data[~data["pid"].isin(list(exclude))]
    columns = ["sky_science", "sigma_science", "sky_template", "sigma_template", "sigma_difference"]
    grouped = data.groupby("pid")
    out = grouped[[*columns, "fwhm_science"]].median()
    out.insert(0, "n", grouped.size())
    out = out.reset_index()
    night = out["pid"] // 10**5
    night_fwhm = out.groupby(night)["fwhm_science"].transform("median")
    out["fwhm_science"] = out["fwhm_science"].fillna(night_fwhm).fillna(out["fwhm_science"].median())
    return out
