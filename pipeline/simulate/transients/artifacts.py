"""Detector artefacts of the simulated bogus candidates (:mod:`pipeline.simulate.transients.dataset`).

:func:`artifact_image` draws an unconvolved cosmic ray, hot pixel or bad column as a ``(size, size)``
float64 image in ADU; :func:`bleed` saturates an image and spills the excess charge along its columns.
"""

from __future__ import annotations

import galsim
import numpy as np

from pipeline.simulate.transients.scene import random_offset
from pipeline.simulate.transients.surveys import Conditions, SurveyModel


def bleed(image: np.ndarray, saturation: float) -> np.ndarray:
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


def artifact_image(
    kind: str, survey: SurveyModel, cond: Conditions, rng: np.random.Generator, size: int
) -> tuple[np.ndarray, dict[str, float]]:
    """Unconvolved artifact (ADU) for ``cosmic_ray``, ``hot_pixel`` or ``bad_column``, and its truth.

    Returns:
        ``(image (size, size) float64 ADU, truth)``; truth holds ``flux`` (ADU) and ``dx``/``dy`` (px), and
        ``length``/``width`` (px) where they apply.
    """
    image = np.zeros((size, size))
    c = size // 2
    sigma = cond.sigma_science
    if kind == "cosmic_ray":
        length = float(rng.uniform(*survey.cosmic_ray_length))
        width = float(rng.uniform(0.2, 0.5))
        angle = float(rng.uniform(0.0, np.pi))
        x, y = random_offset(rng, 0.5)
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
