"""Real ZTF triplets to inject simulated candidates into: alert packets or a stamp store, read once.

:func:`load_backgrounds` turns ``--backgrounds`` sources into a :class:`BackgroundSet`:

- alert files and folders (``*.avro``, decoded with :class:`pipeline.alerts.AlertDecoder`, every codec and
  schema it knows; stamps cut by a CCD edge are padded to 63x63 with the candidate kept centred
  (:func:`pipeline.alerts.conform`), the padding masked);
- stamp stores (``*.h5``/``*.hdf5``, :func:`pipeline.store.open_store`) with ``SCIENCE``, ``TEMPLATE``,
  ``DIFFERENCE`` channels of 63x63 (e.g. ``stampflow ingest-alerts``); the candid is the catalog's
  ``candid`` column, else the row's ``object_id`` when it is an integer.

Each background keeps its pixels in DN, its mask (NaN, blank sentinel, outside the CCD) and its difference
turned to science minus template (a packet with ``isdiffpos = f`` carries template minus science). The
science seeing is measured on the stamp's own stars (:func:`seeing_fwhm`), else on the other stamps of the
same exposure or night (:func:`fill_seeing`). The packet's ``fwhm`` field is not used: it is the width of
the candidate itself (a cosmic ray's is < 1 px), not the seeing. The centre candidate's class (``label``) comes from ``--labels`` (``candid,real``),
else from a store's ``/labels/real``, else from the packet's own score as a pseudo-label (``drb >= 0.5``, or
``rb >= 0.5`` where the packet has no ``drb``); ``label_source`` says which. How the labels are used:
:mod:`pipeline.simulate.transients.injection`.

Counts add up: ``inputs`` (packets or store rows) = ``used`` + ``rejected`` + ``duplicates``; rejects
(unreadable packet, another survey, wrong shape or channels) are listed with a reason, never dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.stats import mad_std
from scipy import ndimage

from pipeline.simulate.transients.measured import central_fwhm
from pipeline.simulate.transients.surveys import HSM_FWHM_PER_MOFFAT3_FWHM, SURVEYS

#: Suffixes of stamp-store files among the background sources.
STORE_SUFFIXES = (".h5", ".hdf5")
#: Channels of a background, in order (pixels ``(3, H, W)``).
CHANNELS = ("SCIENCE", "TEMPLATE", "DIFFERENCE")
#: Science seeing when no star of the stamp can be measured: the median of the shipped real ZTF exposures
#: (HSM Gaussian-equivalent FWHM, arcsec; :data:`pipeline.simulate.transients.surveys.ZTF_EXPOSURES`).
DEFAULT_SEEING_HSM = 2.3
#: Measured seeing outside this range (arcsec, HSM) is not a star (cosmic ray, galaxy, blend).
SEEING_RANGE = (1.3, 8.0)
#: Template FWHM / science FWHM where the template's own stars cannot be measured.
TEMPLATE_FWHM_RATIO = 0.875


@dataclass
class Background:
    """One real triplet to inject into.

    Attributes:
        candid: the alert's candidate id (the ``background`` column of the labels).
        source: ``path#index`` of the packet, or ``store#row``.
        pixels: ``(3, 63, 63)`` float32 SCIENCE, TEMPLATE, DIFFERENCE in DN (difference = science - template);
            masked pixels 0.
        mask: ``(3, 63, 63)`` bool, True where a pixel is NaN, blank or outside the CCD.
        diff_sign: +1 where the alert's difference was science - template, -1 where it was template - science
            (a fading candidate; ``pixels`` holds it turned to science - template).
        label: the centre candidate's class: 1 real, 0 bogus, -1 unknown.
        label_source: ``labels`` (``--labels``), ``store`` (``/labels/real``), ``drb``, ``rb``, or ``none``.
        fwhm_science, fwhm_template: Moffat FWHM (arcsec) of the science and template PSFs.
        fwhm_source: ``measured`` (the stamp's stars), ``exposure`` / ``night`` (median of the stamps of
            the same exposure / night), ``default`` (:data:`DEFAULT_SEEING_HSM`).
        sky_science: median of the science pixels (DN).
        sigma_science, sigma_template, sigma_difference: robust noise (mad_std) of each channel (DN).
    """

    candid: int
    source: str
    pixels: np.ndarray
    mask: np.ndarray
    diff_sign: int
    label: int
    label_source: str
    fwhm_science: float
    fwhm_template: float
    fwhm_source: str
    sky_science: float
    sigma_science: float
    sigma_template: float
    sigma_difference: float


@dataclass
class BackgroundSet:
    """The backgrounds of a run, sorted by candid, and where they came from.

    Attributes:
        backgrounds: usable backgrounds (unique candids), sorted by candid.
        files: input name -> sha256 of each source file (alert files, stores, the labels CSV).
        rejects: ``(source, reason, message)`` of each packet or row that is not used.
        inputs: packets and store rows read (= ``len(backgrounds)`` + rejects + ``duplicates``).
        duplicates: packets whose candid was already read (the first one, by source order, is kept).
        explicit_labels: True when ``--labels`` or a store's ``/labels/real`` gave any label.
    """

    backgrounds: list[Background]
    files: dict[str, str]
    rejects: list[tuple[str, str, str]] = field(default_factory=list)
    inputs: int = 0
    duplicates: int = 0
    explicit_labels: bool = False

    def with_label(self, label: int) -> list[int]:
        """Indices of the backgrounds whose centre candidate has ``label`` (1 real, 0 bogus)."""
        return [i for i, bg in enumerate(self.backgrounds) if bg.label == label]

    def summary(self) -> dict[str, Any]:
        """Counts and file hashes for ``simulation.json``."""
        labels = pd.Series([bg.label for bg in self.backgrounds], dtype="int64")
        sources = pd.Series([bg.label_source for bg in self.backgrounds], dtype="object")
        seeing = pd.Series([bg.fwhm_source for bg in self.backgrounds], dtype="object")
        reasons = pd.Series([r[1] for r in self.rejects], dtype="object")
        return {
            "files_sha256": dict(sorted(self.files.items())),
            "inputs": self.inputs,
            "used": len(self.backgrounds),
            "duplicates": self.duplicates,
            "rejected": {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()},
            "rejects": [list(r) for r in self.rejects],
            "centre_label": {str(k): int(v) for k, v in labels.value_counts().sort_index().items()},
            "label_source": {str(k): int(v) for k, v in sources.value_counts().sort_index().items()},
            "fwhm_source": {str(k): int(v) for k, v in seeing.value_counts().sort_index().items()},
            "candids": [bg.candid for bg in self.backgrounds],
        }


def seeing_fwhm(image: np.ndarray, mask: np.ndarray | None, pixel_scale: float, stars: int = 8) -> float:
    """Seeing of a stamp: median HSM FWHM (arcsec) of its brightest isolated point sources, NaN if none.

    Up to ``stars`` local maxima of the lightly smoothed image above 10 sigma, at least 10 px inside the
    stamp and below 30000 DN (saturation), are measured with
    :func:`pipeline.simulate.transients.measured.central_fwhm` in a 21x21 box (S/N >= 20); widths outside
    :data:`SEEING_RANGE` (cosmic rays, galaxies) are dropped.

    Args:
        image: ``(H, W)`` science or template stamp, DN.
        mask: ``(H, W)`` bool of pixels to ignore, or None.
        pixel_scale: arcsec/pixel.
        stars: most sources measured.
    """
    data = np.asarray(image, dtype=np.float64)
    bad = np.zeros(data.shape, bool) if mask is None else np.asarray(mask, bool)
    if (~bad).sum() < 100:
        return float("nan")
    sky = float(np.median(data[~bad]))
    data = np.where(bad, sky, data)
    smoothed = ndimage.gaussian_filter(data - sky, 1.0)
    noise = float(mad_std(smoothed[~bad]))
    peaks = (smoothed == ndimage.maximum_filter(smoothed, 7)) & (smoothed > 10.0 * noise) & ~bad
    peaks &= data < 30000.0
    border = np.zeros_like(peaks)
    border[10:-10, 10:-10] = True
    ys, xs = np.nonzero(peaks & border)
    widths = []
    for k in np.argsort(-smoothed[ys, xs], kind="stable")[:stars]:
        y, x = int(ys[k]), int(xs[k])
        box = (slice(y - 10, y + 11), slice(x - 10, x + 11))
        width = central_fwhm(data[box], bad[box], pixel_scale, box=21)
        if SEEING_RANGE[0] <= width <= SEEING_RANGE[1]:
            widths.append(width)
    return float(np.median(widths)) if widths else float("nan")


def _psf_widths(pixels: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """HSM FWHM (arcsec) of the science and template stars of a stamp, NaN where none can be measured."""
    scale = SURVEYS["ztf"].pixel_scale
    return seeing_fwhm(pixels[0], mask[0], scale), seeing_fwhm(pixels[1], mask[1], scale)


def fill_seeing(backgrounds: Sequence[Background]) -> None:
    """Give every background its PSFs (Moffat FWHM, arcsec): its own measured seeing, else the median
    measured on the other stamps of its exposure (ZTF ``pid = candid // 10**6``, one CCD quadrant), else of
    its night (``pid // 10**5``), else :data:`DEFAULT_SEEING_HSM`; ``fwhm_source`` says which. The template
    FWHM is measured the same way, else the science one x :data:`TEMPLATE_FWHM_RATIO`."""
    groups: dict[str, dict[int, list[float]]] = {"exposure": {}, "night": {}}
    keys = {"exposure": lambda c: c // 10**6, "night": lambda c: c // 10**11}
    for bg in backgrounds:
        if bg.fwhm_source == "measured":
            for name, key in keys.items():
                groups[name].setdefault(key(bg.candid), []).append(bg.fwhm_science)
    for bg in backgrounds:
        science = bg.fwhm_science
        if bg.fwhm_source != "measured":
            science, bg.fwhm_source = DEFAULT_SEEING_HSM, "default"
            for name in ("exposure", "night"):
                values = groups[name].get(keys[name](bg.candid))
                if values:
                    science, bg.fwhm_source = float(np.median(values)), name
                    break
        template = bg.fwhm_template
        if not (np.isfinite(template) and template <= science):
            template = science * TEMPLATE_FWHM_RATIO
        bg.fwhm_science = science / HSM_FWHM_PER_MOFFAT3_FWHM
        bg.fwhm_template = template / HSM_FWHM_PER_MOFFAT3_FWHM


def _centre_label(candid: int, row: Mapping[str, Any], labels: Mapping[int, int]) -> tuple[int, str]:
    """The centre candidate's class and where it came from (module docstring)."""
    if candid in labels:
        return int(labels[candid]), "labels"
    if "real" in row and int(row["real"]) in (0, 1):
        return int(row["real"]), "store"
    for score in ("drb", "rb"):
        value = float(row.get(score, np.nan))
        if np.isfinite(value):
            return int(value >= 0.5), score
    return -1, "none"


def make_background(
    candid: int,
    source: str,
    pixels: np.ndarray,
    mask: np.ndarray,
    row: Mapping[str, Any],
    labels: Mapping[int, int],
) -> Background:
    """A :class:`Background` from a ``(3, 63, 63)`` triplet in science/template/difference order, its
    difference as the alert carries it (``row["diff_sign"]`` -1: template - science; it is turned to science
    - template); ``row`` may also hold ``drb``, ``rb``, ``real``. Its PSFs are
    the HSM widths of its own stars (NaN if none) until :func:`fill_seeing` sets them."""
    diff_sign = -1 if int(row.get("diff_sign", 1)) < 0 else 1
    pixels = np.where(mask, 0.0, pixels).astype(np.float32)
    pixels[2] *= diff_sign
    fwhm_s, fwhm_t = _psf_widths(pixels, mask)
    label, label_source = _centre_label(candid, row, labels)
    good = [pixels[c][~mask[c]].astype(np.float64) for c in range(3)]
    return Background(
        candid=candid,
        source=source,
        pixels=pixels,
        mask=mask.astype(bool),
        diff_sign=diff_sign,
        label=label,
        label_source=label_source,
        fwhm_science=fwhm_s,  # HSM, arcsec, until fill_seeing
        fwhm_template=fwhm_t,
        fwhm_source="measured" if np.isfinite(fwhm_s) else "",
        sky_science=float(np.median(good[0])),
        sigma_science=float(mad_std(good[0])),
        sigma_template=float(mad_std(good[1])),
        sigma_difference=float(mad_std(good[2])),
    )


def read_background_labels(path: str | os.PathLike) -> dict[int, int]:
    """``candid -> real`` (1/0) of a labels CSV with columns ``candid`` and ``real``.

    Raises:
        ValueError: a missing column, a candid or label that is not an integer, a label other than 0/1,
            or a candid listed twice (the message names the file).
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("candid", "real") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: labels need columns candid and real; missing {missing}")
    candid = pd.to_numeric(table["candid"], errors="coerce")
    real = pd.to_numeric(table["real"], errors="coerce")
    bad = candid.isna() | real.isna() | ~real.isin([0, 1]) | (candid != candid.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{path}: row {row + 2} has candid {table['candid'][row]!r}, real {table['real'][row]!r}; "
            "candid must be an integer and real 0 or 1"
        )
    if candid.duplicated().any():
        raise ValueError(f"{path}: candid {int(candid[candid.duplicated()].iloc[0])} is listed twice")
    return dict(zip(candid.astype("int64").tolist(), real.astype("int64").tolist(), strict=True))


def is_store_name(path: str | os.PathLike) -> bool:
    """True for a stamp-store file name (:data:`STORE_SUFFIXES`)."""
    return str(path).lower().endswith(STORE_SUFFIXES)


def load_backgrounds(
    sources: Sequence[str | os.PathLike], labels_csv: str | os.PathLike | None = None, *, workers: int = 1
) -> BackgroundSet:
    """Read every background of ``sources`` (alert files/folders, stamp stores), see the module docstring.

    Args:
        sources: alert files or folders (searched recursively) and ``.h5`` stamp stores.
        labels_csv: ``candid,real`` table of the centre candidates' classes, or None.
        workers: alert-decoding processes.

    Raises:
        ValueError: a bad labels CSV, or no usable background at all (the message says why).
    """
    from pipeline.simulate.transients.background_sources import read_alert_backgrounds, read_store_backgrounds
    from pipeline.store import sha256_file

    labels = read_background_labels(labels_csv) if labels_csv is not None else {}
    found: list[Background] = []
    out = BackgroundSet([], {})
    if labels_csv is not None:
        out.files[str(labels_csv)] = sha256_file(labels_csv)
    stores = [Path(s) for s in sources if is_store_name(s)]
    alerts = [Path(s) for s in sources if not is_store_name(s)]
    if alerts:
        found += read_alert_backgrounds(alerts, labels, out, workers=workers)
    for store in stores:
        found += read_store_backgrounds(store, labels, out)
    by_candid: dict[int, Background] = {}
    for bg in found:
        if bg.candid in by_candid:
            out.duplicates += 1
        else:
            by_candid[bg.candid] = bg
    out.backgrounds = [by_candid[c] for c in sorted(by_candid)]
    fill_seeing(out.backgrounds)
    out.explicit_labels = any(bg.label_source in ("labels", "store") for bg in out.backgrounds)
    if not out.backgrounds:
        first = "; ".join(f"{s}: {m}" for s, _, m in out.rejects[:3])
        raise ValueError(
            f"no usable background in {[str(s) for s in sources]}" + (f" ({first})" if first else "")
        )
    return out
