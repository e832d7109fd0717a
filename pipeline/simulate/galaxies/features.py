"""Galaxy features GalSim has no profile for, drawn on a grid: logarithmic spiral arms (:func:`spiral_arms`),
rings and arcs (:func:`ring`) and boxy bulges (:func:`boxy_bulge`) (:mod:`pipeline.simulate.galaxies.profiles`).

Each is computed on the stamp's grid oversampled 2x, in the plane of the disk (inclination and position angle
in radians, lengths in arcsec), and returned as a unit-flux ``galsim.InterpolatedImage`` without PSF, or
None where the feature has no positive flux on the stamp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import galsim
import numpy as np

if TYPE_CHECKING:
    from pipeline.simulate.galaxies.profiles import GalaxyImaging


def _grid(imaging: GalaxyImaging, oversample: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """Sky positions ``x, y`` (arcsec from the centre, ``(size * oversample,) * 2``) and the step (arcsec)."""
    n = imaging.size * oversample
    step = imaging.pixel_scale / oversample
    axis = (np.arange(n) - (n - 1) / 2.0) * step
    x, y = np.meshgrid(axis, axis)
    return x, y, step


def _disk_plane(x, y, inclination: float, pa: float, centre=(0.0, 0.0)):
    """Sky positions (arcsec) -> disk-plane radius and azimuth of a disk at ``inclination``, ``pa`` (rad)."""
    dx, dy = x - centre[0], y - centre[1]
    c, s = np.cos(pa), np.sin(pa)
    u = c * dx + s * dy  # along the major axis
    v = (-s * dx + c * dy) / max(np.cos(inclination), 0.05)
    return np.hypot(u, v), np.arctan2(v, u)


def _interpolated(array: np.ndarray, step: float) -> galsim.GSObject | None:
    """Unit-flux ``galsim.InterpolatedImage`` of a grid of pixel ``step`` arcsec; None without positive flux."""
    total = float(array.sum())
    if not np.isfinite(total) or total <= 0:
        return None
    image = galsim.Image(np.ascontiguousarray(array / total), scale=step)
    return galsim.InterpolatedImage(image, flux=1.0, calculate_stepk=False, calculate_maxk=False)


def spiral_arms(
    imaging: GalaxyImaging,
    *,
    arms: int,
    pitch_deg: float,
    scale_radius: float,
    inclination: float,
    pa: float,
    phase: float,
    sharpness: float = 4.0,
    inner: float = 0.5,
    outer: float | None = None,
    centre: tuple[float, float] = (0.0, 0.0),
) -> galsim.GSObject | None:
    """Logarithmic spiral arms as a unit-flux ``galsim.InterpolatedImage`` (no PSF).

    Surface brightness ``exp(-r / h) * ((1 + cos(m (phi - ln(r) / tan(pitch)) - phase)) / 2)^sharpness``,
    faded in inside ``inner * h`` (the bulge/bar region) and, if ``outer`` is given, cut beyond it.

    Args:
        imaging: the stamp geometry (the grid is 2x oversampled).
        arms: number of arms m.
        pitch_deg: pitch angle, degrees.
        scale_radius: exponential scale length h, arcsec.
        inclination, pa: disk orientation, radians.
        phase: rotation of the pattern, radians.
        sharpness: exponent narrowing the arms.
        inner: arms start around ``inner * h``.
        outer: optional outer cut-off radius, arcsec.
        centre: (x, y) offset of the disk centre, arcsec.
    """
    x, y, step = _grid(imaging)
    r, phi = _disk_plane(x, y, inclination, pa, centre)
    r = np.maximum(r, 1e-3)
    theta = arms * (phi - np.log(r / scale_radius) / np.tan(np.radians(pitch_deg))) - phase
    pattern = ((1.0 + np.cos(theta)) / 2.0) ** sharpness
    envelope = np.exp(-r / scale_radius) * (1.0 - np.exp(-((r / (inner * scale_radius)) ** 2)))
    if outer is not None:
        envelope *= np.exp(-((r / outer) ** 8))
    return _interpolated(envelope * pattern, step)


def ring(
    imaging: GalaxyImaging,
    *,
    radius: float,
    width: float,
    inclination: float,
    pa: float,
    arc: tuple[float, float] | None = None,
) -> galsim.GSObject | None:
    """A Gaussian ring (or, with ``arc = (centre_angle, half_extent)`` in radians, an arc) in a plane of
    ``inclination``/``pa``, as a unit-flux ``galsim.InterpolatedImage``; radius and width in arcsec."""
    x, y, step = _grid(imaging)
    r, phi = _disk_plane(x, y, inclination, pa)
    image = np.exp(-0.5 * ((r - radius) / width) ** 2)
    if arc is not None:
        dphi = np.angle(np.exp(1j * (phi - arc[0])))
        image *= np.exp(-0.5 * (dphi / arc[1]) ** 8)
    return _interpolated(image, step)


def boxy_bulge(
    imaging: GalaxyImaging, *, radius: float, q: float, boxiness: float, pa: float
) -> galsim.GSObject | None:
    """A boxy bulge: surface brightness ``exp(-(R / radius))`` with generalised-ellipse radius
    ``R = (|u|^c + |v / q|^c)^(1/c)``, ``c = boxiness`` (2 = elliptical, 3-4 = boxy); unit-flux
    ``galsim.InterpolatedImage`` (no PSF). Lengths in arcsec, ``pa`` in radians."""
    x, y, step = _grid(imaging)
    c, s = np.cos(pa), np.sin(pa)
    u, v = c * x + s * y, -s * x + c * y
    big_r = (np.abs(u) ** boxiness + np.abs(v / q) ** boxiness) ** (1.0 / boxiness)
    return _interpolated(np.exp(-big_r / radius), step)
