"""Simulated real/bogus difference-imaging triplets (template, science, difference [, SNR]) with known truth.

Every candidate is rendered with GalSim: a scene of static sources (field stars, a host galaxy, a variable
star) is drawn with the template PSF into the template and with the science PSF into the science stamp,
the transient or artifact is added, sky + Poisson + read noise is applied (electrons, gain), and the
difference is ``science - sky - matched template``. The matched template is the static scene drawn with the
science PSF plus the template's own noise convolved with the Gaussian matching kernel
``sigma_k^2 = sigma_sci^2 - sigma_tmpl^2`` (as Alard-Lupton/ZOGY subtraction does). The SNR channel (HiTS) is
the difference over the square root of its per-pixel variance. Stamps are centred on the candidate.

This module writes the simulated sets (:func:`simulate_transients`: FITS files, ``labels.csv``); one
candidate is assembled in :mod:`pipeline.simulate.transients.triplet` (:func:`simulate_triplet`) from its
sources (:mod:`pipeline.simulate.transients.scene`), artefacts (:mod:`pipeline.simulate.transients.artifacts`)
and noise, subtraction and S/N (:mod:`pipeline.simulate.transients.noise`).

Surveys (:data:`SURVEYS`, :mod:`pipeline.simulate.transients.surveys`): ``hits`` (4x21x21 at 0.263"/px,
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
import pickle
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import pandas as pd
from astropy.io import fits

from pipeline import __version__
from pipeline.cpus import usable_cpus
from pipeline.simulate.runner import run_chunks, write_fits
from pipeline.simulate.transients.backgrounds import BackgroundSet, load_backgrounds
from pipeline.simulate.transients.injection import background_mix, background_triplet
from pipeline.simulate.transients.surveys import SURVEYS, SurveyModel
from pipeline.simulate.transients.triplet import Triplet, simulate_triplet


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


def from_background(index: int, real_fraction: float) -> bool:
    """True when candidate ``index`` is made on a real background: every row where the running count
    ``floor((index + 1) * real_fraction)`` steps up, so any prefix of the set holds the fraction."""
    return int((index + 1) * real_fraction) > int(index * real_fraction)


@lru_cache(maxsize=2)
def _load_pickled(path: str) -> tuple[BackgroundSet, dict[str, float]]:
    with open(path, "rb") as fh:
        backgrounds = pickle.load(fh)
    return backgrounds, background_mix(backgrounds)


def _chunk(
    start: int,
    stop: int,
    *,
    survey: str,
    seed: int,
    out_dir: str,
    compress: bool,
    backgrounds: str | None = None,
    real_fraction: float = 0.0,
) -> list[dict]:
    model = SURVEYS[survey]
    rows = []
    suffix = ".fits.gz" if compress else ".fits"
    hdul = None
    for index in range(start, stop):
        if backgrounds is not None and from_background(index, real_fraction):
            triplet = background_triplet(model, *_load_pickled(backgrounds), seed, index)
        else:
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
                "artifact_type": "none" if triplet.truth["real"] else kind,
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
#: Extra ``labels.csv`` columns of a set made with real backgrounds (empty on the simulator's own rows).
BACKGROUND_COLUMNS = ("background", "background_label", "injected_kind", "fwhm_source")


def _prepare_backgrounds(
    survey: str,
    sources: Sequence[str | os.PathLike],
    labels_csv: str | os.PathLike | None,
    real_fraction: float,
    tmp: Path,
    workers: int | None,
) -> dict:
    """Load the backgrounds once and pickle them for the worker processes; returns the ``backgrounds``
    section of ``simulation.json`` and, under ``chunk``, the options of :func:`_chunk`."""
    if survey != "ztf":
        raise ValueError(f"backgrounds are real ZTF alerts; they need --survey ztf, not {survey!r}")
    if not 0.0 <= real_fraction <= 1.0:
        raise ValueError(f"real_fraction must be between 0 and 1, got {real_fraction}")
    found = load_backgrounds(sources, labels_csv, workers=1 if workers is None else workers)
    mix = background_mix(found)
    path = tmp / "backgrounds.pickle"
    with open(path, "wb") as fh:
        pickle.dump(found, fh, protocol=pickle.HIGHEST_PROTOCOL)
    section = {"real_fraction": real_fraction, "mix": mix, "sources": [str(s) for s in sources]}
    section["labels_csv"] = None if labels_csv is None else str(labels_csv)
    return {
        "backgrounds": {**section, **found.summary()},
        "chunk": {"backgrounds": str(path), "real_fraction": real_fraction},
    }


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
    backgrounds: Sequence[str | os.PathLike] | None = None,
    labels_csv: str | os.PathLike | None = None,
    real_fraction: float = 0.5,
) -> pd.DataFrame:
    """Simulate ``n`` candidates into ``out_dir``: one FITS file per candidate and ``labels.csv``.

    Files: ``<id>.fits.gz`` (or ``.fits``) multi-extension FITS (see :func:`triplet_hdulist`),
    ``labels.csv`` (:data:`LABEL_COLUMNS`, one row per candidate in index order) and ``simulation.json``
    (survey model, seed, count, code version). Same ``seed`` -> byte-identical files, whatever ``workers``.

    With ``backgrounds`` (ZTF only), a ``real_fraction`` of the rows (:func:`from_background`) are made on
    real alert triplets (:mod:`pipeline.simulate.transients.injection`), the others by the simulator;
    ``labels.csv`` gains :data:`BACKGROUND_COLUMNS` and ``simulation.json`` a ``backgrounds`` section with
    the sha256 of every background file and the labels CSV. Same seed and backgrounds -> the same bytes.

    Args:
        n: number of candidates.
        out_dir: output folder (created).
        survey: ``"hits"`` (4x21x21) or ``"ztf"`` (3x63x63).
        seed: run seed.
        workers: processes (default: all CPUs of this process).
        chunk_size: candidates per task.
        compress: gzip the FITS files.
        progress: show a tqdm bar.
        backgrounds: alert files/folders, ZTF stamp stores (:func:`load_backgrounds`), or None.
        labels_csv: ``candid,real`` classes of the background alerts.
        real_fraction: fraction of the rows made on backgrounds (0-1).

    Returns:
        the labels table. Raises ValueError for an unknown survey, backgrounds for a survey other than ztf,
        a bad fraction or labels CSV, no usable background or none of one class.
    """
    if survey not in SURVEYS:
        raise ValueError(f"unknown survey {survey!r}; expected one of {sorted(SURVEYS)}")
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="stampflow-backgrounds-") as tmp:
        extra: dict = {}
        if backgrounds:
            extra = _prepare_backgrounds(survey, backgrounds, labels_csv, real_fraction, Path(tmp), workers)
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
            **extra.pop("chunk", {}),
        )
        _load_pickled.cache_clear()
    columns = list(LABEL_COLUMNS) + (list(BACKGROUND_COLUMNS) if backgrounds else [])
    labels = pd.DataFrame(rows).reindex(columns=columns)
    if backgrounds:
        labels = labels.astype({"background_label": "Int64"})
    labels.to_csv(out / "labels.csv", index=False, float_format="%.6g")
    meta = {
        "what": "stampflow simulated real/bogus triplets",
        "survey": asdict(SURVEYS[survey]),
        "n": n,
        "seed": seed,
        "created_by": f"stampflow {__version__}",
        "files": "<id>.fits.gz" if compress else "<id>.fits",
        **extra,
    }
    (out / "simulation.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return labels
