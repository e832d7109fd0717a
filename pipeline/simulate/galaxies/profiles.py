"""GalSim models of galaxies for the simulator: the imaging set-up (:class:`GalaxyImaging`), the colour
components a galaxy is made of (:class:`Component`) and the morphology sampler (:func:`sample_galaxy`).
Spiral arms, rings and boxy bulges (drawn on a grid) are in :mod:`pipeline.simulate.galaxies.features`;
rendering, noise, votes and files live in :mod:`pipeline.simulate.galaxies.dataset`.

Each galaxy is a sum of GalSim profiles, each with its own colour, convolved with a Kolmogorov PSF per band
(g, r, i) and drawn with sky + Poisson + read noise, then sky-subtracted (ADU):

- ``elliptical``: Sersic n 2.5-5, half-light radius 1-5", axis ratio 0.35-1.
- ``disk``: inclined exponential disk (``galsim.InclinedExponential``, inclination up to 78 deg) + Sersic
  bulge (bulge-to-total 0-0.7, 20 % bulgeless); 72 % have logarithmic spiral arms (1, 2, 3, 4, 5 or 6 arms;
  pitch tight 8-15, medium 15-25, loose 25-40 deg; 20-60 % of the disk light), 30 % a bar (Sersic n=0.5,
  axis ratio 0.2-0.35), 8 % a ring, 5 % a lopsided (disturbed) component. GalSim has no spiral or ring
  profile, so arms and rings are computed on a 2x oversampled grid in the disk plane and enter as
  ``galsim.InterpolatedImage``.
- ``edge_on``: ``InclinedExponential`` at 84-90 deg with a rounded (Sersic), boxy (generalised ellipse on a
  grid) or no bulge; 35 % with a dust lane (a thinner disk of negative flux, 20 % of the disk).
- ``merger``: two galaxies 0.6-1.5 (r1 + r2) apart, flux ratio 0.3-1, 70 % with tidal tails.
- ``irregular``: ``galsim.RandomKnots`` (15-60 star-forming knots) on an offset, flattened exponential.
- ``lens``: an elliptical with a blue arc (``lens_or_arc``).
- ``star``: a point source; ``artifact``: a satellite trail or a bright star with diffraction spikes.

Colours (g-r, r-i): bulges and ellipticals (0.75, 0.40), disks (0.45, 0.25), arms, rings, knots and arcs
(0.25, 0.10), each with a small scatter. Imaging defaults (:class:`GalaxyImaging`) follow SDSS, the source of
the Galaxy Zoo 2 / Kaggle images: 0.396"/px, zero points 28.0/28.2/27.8 mag for 1 ADU, sky 21.9/20.9/20.2
mag/arcsec^2, gain 3.3/4.7/5.4 e-/ADU, read noise 5 e-, seeing 1.3" (0.08 dex, 0.9-2.0") in r, x1.08 in g,
x0.95 in i; r magnitudes 13.5-17.0 (the GZ2 main sample is r < 17.0) weighted to the faint end like
number counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import galsim
import numpy as np

from pipeline.simulate.galaxies.features import boxy_bulge, ring, spiral_arms
from pipeline.simulate.galaxies.volunteers import WINDINGS

#: Default morphology mix (fractions sum to 1).
MORPHOLOGY_MIX: dict[str, float] = {
    "elliptical": 0.30,
    "disk": 0.40,
    "edge_on": 0.12,
    "merger": 0.05,
    "irregular": 0.05,
    "lens": 0.02,
    "star": 0.04,
    "artifact": 0.02,
}

RED, DISK, BLUE = (0.75, 0.40), (0.45, 0.25), (0.25, 0.10)  # (g-r, r-i) colours


@dataclass(frozen=True)
class GalaxyImaging:
    """Imaging set-up of the simulated galaxy stamps (SDSS-like defaults; magnitudes AB-like)."""

    size: int = 69  # px
    pixel_scale: float = 0.396  # arcsec/px
    zero_point: tuple[float, float, float] = (28.0, 28.2, 27.8)  # mag of 1 ADU, per band g, r, i
    sky: tuple[float, float, float] = (21.9, 20.9, 20.2)  # mag/arcsec^2
    gain: tuple[float, float, float] = (3.3, 4.7, 5.4)  # e-/ADU
    read_noise: float = 5.0  # e-
    seeing: float = 1.3  # median r-band FWHM, arcsec
    psf_band_ratio: tuple[float, float, float] = (1.08, 1.0, 0.95)
    r_mag: tuple[float, float] = (13.5, 17.0)
    mix: dict[str, float] = field(default_factory=lambda: dict(MORPHOLOGY_MIX))

    def sky_adu(self, band: int) -> float:
        """Sky per pixel in ADU in band ``band`` (0, 1, 2 for g, r, i)."""
        return float(10 ** (-0.4 * (self.sky[band] - self.zero_point[band])) * self.pixel_scale**2)

    def sigma_sky(self, band: int) -> float:
        """Background noise per pixel, ADU."""
        g = self.gain[band]
        return float(np.sqrt(self.sky_adu(band) / g + (self.read_noise / g) ** 2))

    def flux(self, mag: float, band: int) -> float:
        """ADU of a source of magnitude ``mag`` in ``band``."""
        return float(10 ** (-0.4 * (mag - self.zero_point[band])))


@dataclass
class Component:
    """One GalSim profile (unit flux, no PSF) with its r-band magnitude and colours."""

    profile: galsim.GSObject
    r_mag: float
    g_r: float
    r_i: float

    def band_mags(self) -> tuple[float, float, float]:
        return (self.r_mag + self.g_r, self.r_mag, self.r_mag - self.r_i)


# --- morphology ----------------------------------------------------------------------------------------


def _colour(rng: np.random.Generator, base: tuple[float, float]) -> tuple[float, float]:
    return float(base[0] + rng.normal(0, 0.05)), float(base[1] + rng.normal(0, 0.03))


def _mag_of(total_mag: float, fraction: float) -> float:
    return float(total_mag - 2.5 * np.log10(max(fraction, 1e-6)))


def _sersic_n(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 1)  # GalSim caches Sersic tables per n


def _add(comps: list[Component], profile, total_mag: float, fraction: float, colour) -> None:
    if profile is not None and fraction > 0:
        comps.append(Component(profile, _mag_of(total_mag, fraction), *colour))


def _elliptical(rng, mag, pa, r_e, truth, comps, offset=(0.0, 0.0), fraction=1.0):
    n = _sersic_n(rng, 2.5, 5.0)
    q = float(rng.uniform(0.35, 1.0))
    prof = galsim.Sersic(n=n, half_light_radius=r_e).shear(q=q, beta=pa * galsim.radians).shift(*offset)
    _add(comps, prof, mag, fraction, _colour(rng, RED))
    truth.setdefault("sersic_n", n)
    truth.setdefault("q", q)


def _disk(rng, imaging, mag, pa, r_e, truth, comps, *, allow_features=True, offset=(0.0, 0.0), fraction=1.0):
    """Bulge + inclined exponential disk (+ arms, bar, ring, lopsidedness) into ``comps``."""
    h = r_e / 1.678
    cos_i = float(rng.uniform(0.2, 1.0))
    incl = float(np.arccos(cos_i))
    bt = 0.0 if rng.random() < 0.2 else float(rng.uniform(0.03, 0.7))
    disk_frac = 1.0 - bt
    truth.update(inclination=float(np.degrees(incl)), bulge_to_total=bt, q=cos_i)
    rot = pa * galsim.radians
    if bt > 0:
        n_b = _sersic_n(rng, 2.0, 4.0)
        r_b = max(0.4, float(rng.uniform(0.12, 0.3)) * r_e)
        bulge = galsim.Sersic(n=n_b, half_light_radius=r_b).shear(q=float(rng.uniform(0.8, 1.0)), beta=rot)
        _add(comps, bulge.shift(*offset), mag, fraction * bt, _colour(rng, RED))
        truth["sersic_n"] = n_b
    arms = bar = ring_on = lopsided = 0
    if allow_features:
        if rng.random() < 0.72:
            arms = int(rng.choice([1, 2, 3, 4, 5, 6], p=[0.05, 0.55, 0.2, 0.1, 0.05, 0.05]))
            winding = int(rng.choice(3, p=[0.35, 0.4, 0.25]))
            pitch = float(rng.uniform(*((8.0, 15.0), (15.0, 25.0), (25.0, 40.0))[winding]))
            strength = float(rng.uniform(0.3, 1.0))
            arm_frac = 0.2 + 0.4 * strength
            prof = spiral_arms(
                imaging,
                arms=arms,
                pitch_deg=pitch,
                scale_radius=h,
                inclination=incl,
                pa=pa,
                phase=float(rng.uniform(0, 2 * np.pi)),
                centre=offset,
            )
            _add(comps, prof, mag, fraction * disk_frac * arm_frac, _colour(rng, BLUE))
            disk_frac *= 1.0 - arm_frac
            truth.update(arms=arms, pitch=pitch, winding=WINDINGS[winding], arm_strength=strength)
        if rng.random() < 0.30:
            bar = 1
            bar_strength = float(rng.uniform(0.5, 1.0))
            bar_frac = 0.06 + 0.14 * bar_strength
            length = float(rng.uniform(0.5, 0.9)) * r_e
            bar_q = float(rng.uniform(0.2, 0.35))
            angle = float(rng.uniform(0, np.pi))  # in the disk plane
            prof = (
                galsim.Sersic(n=0.5, half_light_radius=length / 2)
                .shear(q=bar_q, beta=0 * galsim.radians)
                .rotate(angle * galsim.radians)
                .transform(1.0, 0.0, 0.0, cos_i)
                .rotate(rot)
                .shift(*offset)
            )
            _add(comps, prof, mag, fraction * bar_frac, _colour(rng, (0.65, 0.35)))
            disk_frac -= bar_frac
            truth.update(bar=1, bar_strength=bar_strength, bar_length=length)
        if rng.random() < 0.08:
            ring_on = 1
            radius = float(rng.uniform(1.2, 2.2)) * h
            prof = ring(imaging, radius=radius, width=0.15 * radius, inclination=incl, pa=pa)
            ring_frac = float(rng.uniform(0.12, 0.25))
            _add(comps, prof.shift(*offset) if prof else None, mag, fraction * ring_frac, _colour(rng, BLUE))
            disk_frac -= ring_frac
            truth.update(ring=1, ring_radius=radius, odd_feature="ring")
        elif rng.random() < 0.05:
            lopsided = 1
            side = float(rng.uniform(0, 2 * np.pi))
            shift = float(rng.uniform(0.5, 1.0)) * r_e
            prof = galsim.Exponential(half_light_radius=0.6 * r_e).shift(
                offset[0] + shift * np.cos(side), offset[1] + shift * np.sin(side)
            )
            lop_frac = float(rng.uniform(0.15, 0.3))
            _add(comps, prof, mag, fraction * lop_frac, _colour(rng, BLUE))
            disk_frac -= lop_frac
            truth.update(disturbed=1, odd_feature="disturbed")
    disk = galsim.InclinedExponential(incl * galsim.radians, scale_radius=h, scale_h_over_r=0.12).rotate(rot)
    _add(comps, disk.shift(*offset), mag, fraction * max(disk_frac, 0.05), _colour(rng, DISK))
    truth.update(arms=arms, bar=bar, ring=ring_on, disturbed=lopsided)


def _edge_on(rng, imaging, mag, pa, r_e, truth, comps):
    h = r_e / 1.678
    incl = float(rng.uniform(84.0, 90.0))
    h_over_r = float(rng.uniform(0.06, 0.15))
    rot = pa * galsim.radians
    shape = str(rng.choice(["rounded", "boxy", "none"], p=[0.5, 0.25, 0.25]))
    bt = 0.0 if shape == "none" else float(rng.uniform(0.1, 0.5))
    if shape == "rounded":
        bulge = galsim.Sersic(n=_sersic_n(rng, 2.0, 4.0), half_light_radius=max(0.4, 0.25 * r_e))
        bulge = bulge.shear(q=float(rng.uniform(0.75, 1.0)), beta=rot)
        _add(comps, bulge, mag, bt, _colour(rng, RED))
    elif shape == "boxy":
        prof = boxy_bulge(
            imaging,
            radius=max(0.25, 0.12 * r_e),
            q=float(rng.uniform(0.55, 0.8)),
            boxiness=float(rng.uniform(2.8, 4.0)),
            pa=pa,
        )
        _add(comps, prof, mag, bt, _colour(rng, RED))
    disk = galsim.InclinedExponential(incl * galsim.degrees, scale_radius=h, scale_h_over_r=h_over_r)
    _add(comps, disk.rotate(rot), mag, 1.0 - bt, _colour(rng, DISK))
    dust = rng.random() < 0.35
    if dust:  # a thinner disk of negative flux darkens the mid-plane (never below zero: F/h ratio 0.67)
        lane = galsim.InclinedExponential(
            incl * galsim.degrees, scale_radius=h, scale_h_over_r=0.3 * h_over_r
        )
        flux = -0.2 * (1.0 - bt)
        comps.append(Component(lane.rotate(rot).withFlux(-1.0), _mag_of(mag, -flux), *DISK))
    truth.update(
        inclination=incl,
        bulge_to_total=bt,
        bulge_shape=shape,
        dust_lane=int(dust),
        q=float(np.cos(np.radians(incl))) + h_over_r,
        odd_feature="dust_lane" if dust else "none",
    )


def _merger(rng, imaging, mag, pa, r_e, truth, comps):
    ratio = float(rng.uniform(0.3, 1.0))
    r2 = r_e * float(rng.uniform(0.5, 1.0))
    sep = float(rng.uniform(0.6, 1.5)) * (r_e + r2)
    angle = float(rng.uniform(0, 2 * np.pi))
    f1 = 1.0 / (1.0 + ratio)
    off1 = (-sep * ratio / (1 + ratio) * np.cos(angle), -sep * ratio / (1 + ratio) * np.sin(angle))
    off2 = (sep / (1 + ratio) * np.cos(angle), sep / (1 + ratio) * np.sin(angle))
    tails = rng.random() < 0.7
    tail_frac = float(rng.uniform(0.1, 0.2)) if tails else 0.0
    for offset, frac, radius in ((off1, f1, r_e), (off2, 1.0 - f1, r2)):
        n = _sersic_n(rng, 1.0, 4.0)
        prof = galsim.Sersic(n=n, half_light_radius=radius).shear(
            q=float(rng.uniform(0.4, 1.0)), beta=float(rng.uniform(0, np.pi)) * galsim.radians
        )
        _add(comps, prof.shift(*offset), mag, frac * (1.0 - tail_frac), _colour(rng, DISK if n < 2 else RED))
    if tails:
        prof = spiral_arms(
            imaging,
            arms=2,
            pitch_deg=float(rng.uniform(40, 55)),
            scale_radius=sep,
            inclination=float(rng.uniform(0, 1.0)),
            pa=pa,
            phase=float(rng.uniform(0, 2 * np.pi)),
            sharpness=6.0,
            inner=1.0,
            outer=3.0 * sep,
        )
        _add(comps, prof, mag, tail_frac, _colour(rng, BLUE))
    truth.update(merger_sep=sep, merger_ratio=ratio, tidal_tails=int(tails), odd_feature="merger", q=np.nan)


def _irregular(rng, imaging, mag, pa, r_e, truth, comps, deviate):
    knots = int(rng.integers(15, 61))
    knot_frac = float(rng.uniform(0.4, 0.7))
    prof = galsim.RandomKnots(knots, half_light_radius=r_e, flux=1.0, rng=deviate)
    _add(comps, prof, mag, knot_frac, _colour(rng, BLUE))
    off = float(rng.uniform(0.2, 0.6)) * r_e
    q = float(rng.uniform(0.4, 0.9))
    diffuse = galsim.Exponential(half_light_radius=r_e).shear(q=q, beta=pa * galsim.radians)
    _add(comps, diffuse.shift(off * np.cos(pa), off * np.sin(pa)), mag, 1.0 - knot_frac, _colour(rng, DISK))
    truth.update(n_knots=knots, odd_feature="irregular", q=q)


def _artifact(rng, imaging, mag, pa, truth, comps):
    kind = str(rng.choice(["satellite_trail", "diffraction_spikes"]))
    if kind == "satellite_trail":
        width = 0.05
        length = 3 * imaging.size * imaging.pixel_scale
        trail = galsim.Box(width, length).rotate(pa * galsim.radians).shift(*rng.uniform(-3, 3, size=2))
        _add(comps, trail, mag, 1.0, _colour(rng, (0.3, 0.2)))
        star_mag = float(rng.uniform(17.0, 19.0))
        _add(
            comps,
            galsim.DeltaFunction().shift(*rng.uniform(-8, 8, size=2)),
            star_mag,
            1.0,
            _colour(rng, DISK),
        )
    else:
        spike_len = float(rng.uniform(8.0, 14.0))
        _add(comps, galsim.DeltaFunction(), mag, 0.97, _colour(rng, (0.5, 0.2)))
        for k in range(2):
            spike = galsim.Box(0.15, spike_len).rotate((pa + k * np.pi / 2) * galsim.radians)
            _add(comps, spike, mag, 0.015, _colour(rng, (0.5, 0.2)))
    truth.update(artifact=kind, q=np.nan)


def sample_galaxy(
    imaging: GalaxyImaging, rng: np.random.Generator, deviate: galsim.BaseDeviate, kind: str | None = None
) -> tuple[list[Component], dict[str, Any]]:
    """Draw one galaxy's morphology: its GalSim components and the truth parameters (no PSF, no noise).

    Args:
        imaging: the imaging set-up.
        rng: the galaxy's random stream.
        deviate: GalSim random stream (for ``RandomKnots``).
        kind: force a type (a key of ``imaging.mix``); None draws from the mix.

    Returns:
        ``(components, truth)``; truth lengths in arcsec, angles in degrees, magnitudes in the r band.
    """
    names = list(imaging.mix)
    probs = np.array([imaging.mix[k] for k in names], dtype=float)
    drawn = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    kind = kind or drawn
    lo, hi = imaging.r_mag
    mag = float(hi - min(rng.exponential(1.0), hi - lo))  # number counts rise to the faint end
    pa = float(rng.uniform(0, np.pi))
    r_e = float(np.exp(rng.uniform(np.log(1.0), np.log(5.0))))
    truth: dict[str, Any] = {
        "type": kind,
        "r_mag": mag,
        "r_e": r_e,
        "pa": float(np.degrees(pa)),
        "odd_feature": "none",
    }
    comps: list[Component] = []
    if kind == "elliptical":
        _elliptical(rng, mag, pa, r_e, truth, comps)
    elif kind == "disk":
        r_e = float(np.exp(rng.uniform(np.log(1.5), np.log(5.5))))
        truth["r_e"] = r_e
        _disk(rng, imaging, mag, pa, r_e, truth, comps)
    elif kind == "edge_on":
        r_e = float(np.exp(rng.uniform(np.log(2.0), np.log(6.0))))
        truth["r_e"] = r_e
        _edge_on(rng, imaging, mag, pa, r_e, truth, comps)
    elif kind == "merger":
        _merger(rng, imaging, mag, pa, r_e, truth, comps)
    elif kind == "irregular":
        r_e = float(np.exp(rng.uniform(np.log(1.5), np.log(4.0))))
        truth["r_e"] = r_e
        _irregular(rng, imaging, mag, pa, r_e, truth, comps, deviate)
    elif kind == "lens":
        _elliptical(rng, mag, pa, r_e, truth, comps, fraction=0.9)
        arc = ring(
            imaging,
            radius=float(rng.uniform(1.5, 3.0)) * max(1.0, r_e / 2),
            width=0.3,
            inclination=0.0,
            pa=0.0,
            arc=(float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.5, 1.3))),
        )
        _add(comps, arc, mag, 0.1, _colour(rng, BLUE))
        truth["odd_feature"] = "lens_or_arc"
    elif kind == "star":
        mag = float(rng.uniform(14.0, 18.0))
        truth.update(r_mag=mag, r_e=0.0, q=1.0)
        _add(
            comps,
            galsim.DeltaFunction(),
            mag,
            1.0,
            (float(rng.uniform(0.2, 1.4)), float(rng.uniform(0.05, 0.6))),
        )
    elif kind == "artifact":
        mag = float(rng.uniform(13.0, 16.0))
        truth.update(r_mag=mag, r_e=0.0)
        _artifact(rng, imaging, mag, pa, truth, comps)
    else:
        raise ValueError(f"unknown galaxy type {kind!r}; expected one of {names}")
    return comps, truth
