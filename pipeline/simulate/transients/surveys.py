"""How simulated real/bogus triplets look per survey: observing conditions, PSF, detector, class mix.

Surveys (:data:`SURVEYS`):

- ``ztf``: 63x63 px at 1.01"/px, extensions SCIENCE, TEMPLATE, DIFFERENCE (the order of real ZTF alerts),
  Moffat beta=3 PSF, gain 6.2 e-/DN, saturation 50000 DN. Observing conditions are drawn from
  :data:`ZTF_EXPOSURES`, the per-exposure medians measured on the 97 real triplets shipped in
  ``data_catalogs/samples/ztf_triplets`` (:mod:`pipeline.simulate.transients.measured`), weighted by their number of
  triplets and jittered by 3 %: science sky 14-280 DN; science noise (mad_std) 4.5-15.4 DN, median 13.7 DN
  (bimodal: nights at ~4.6 and ~15 DN); template noise 0.1-2.9 DN (a coadd, 1-40 % of the science noise);
  difference noise = science noise within a few per cent and zero background; PSF FWHM 2.0-4.5" (HSM
  Gaussian-equivalent, median 2.3"; one night of the samples had 4" seeing). The HSM FWHM of a Moffat beta=3
  is 1.12x its true FWHM, so the Moffat FWHM drawn is the measured one / 1.12. Real ZTF differences are
  nearly white (lag-1 correlation median -0.01), as here. Simulated/real robust sigma (300 stamps vs the 97
  alerts): science 0.93 (median) / 0.99 (geometric mean), difference 0.95 / 0.99, template 1.24 (geometric
  mean; the median falls between the two modes).
  One exposure (pid 1660293514215, a forced-photometry test packet whose difference noise is 4x below its
  science noise) is left out. As in ZTF alerts, a candidate whose difference is negative at the centre gets
  the reference-minus-science difference and ``ISDIFPOS = 'f'``.
- ``hits``: 21x21 px at 0.263"/px (DECam), extensions TEMPLATE, SCIENCE, DIFFERENCE, SNR (Deep-HiTS,
  Cabrera-Vives et al. 2017), gain 4 e-/ADU, read noise 7 e-, saturation 33000 ADU. No HiTS data is shipped,
  so these are assumptions, not measurements: sky log-normal around 200 ADU (0.12 dex), science FWHM
  log-normal around 1.3" (0.07 dex, clipped to 0.85-2.2"), the template a single epoch of better seeing
  (FWHM x 0.70-0.95) and 60-100 % of the science noise. The look of the differences (white noise at the
  science level, zero background, clean static sources) follows the ZTF measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REAL_KINDS = ("point_isolated", "point_on_host", "variable_star")
BOGUS_KINDS = (
    "cosmic_ray",
    "hot_pixel",
    "bad_column",
    "dipole_misalignment",
    "dipole_psf_mismatch",
    "saturated_star",
    "noise_peak",
)
KINDS = REAL_KINDS + BOGUS_KINDS

#: Default class mix (fractions sum to 1; real 0.5, bogus 0.5).
DEFAULT_MIX: dict[str, float] = {
    "point_isolated": 0.20,
    "point_on_host": 0.17,
    "variable_star": 0.13,
    "cosmic_ray": 0.11,
    "hot_pixel": 0.05,
    "bad_column": 0.05,
    "dipole_misalignment": 0.085,
    "dipole_psf_mismatch": 0.07,
    "saturated_star": 0.05,
    "noise_peak": 0.055,
}

#: Per-exposure conditions measured on the shipped real ZTF triplets
#: (:func:`pipeline.simulate.transients.measured.exposure_conditions`): pid, triplets, science sky (DN), science
#: sigma (DN), template sky (DN), template sigma (DN), science FWHM (arcsec, HSM Gaussian-equivalent).
ZTF_EXPOSURES: tuple[tuple[int, int, float, float, float, float, float], ...] = (
    (396522680015, 5, 279.7, 12.48, 301.0, 2.225, 2.02),
    (472263571115, 8, 187.7, 6.30, 188.4, 1.735, 4.48),
    (697252845015, 8, 83.8, 4.63, 83.5, 1.010, 3.83),
    (697252845115, 6, 78.2, 4.45, 78.2, 0.985, 3.61),
    (697252845215, 4, 79.3, 4.76, 79.2, 1.073, 4.39),
    (697252845315, 1, 80.5, 4.94, 80.5, 0.971, 3.92),
    (697252845515, 2, 80.2, 4.55, 80.0, 0.975, 3.92),
    (697252845615, 2, 77.2, 4.83, 77.1, 0.970, 4.38),
    (697252845715, 2, 80.8, 5.25, 80.5, 1.370, 4.44),
    (697252845815, 5, 95.9, 4.89, 95.8, 1.141, 3.87),
    (697252845915, 1, 95.2, 4.91, 95.1, 1.131, 3.92),
    (739260766315, 1, 244.4, 6.28, 244.1, 2.027, 2.17),
    (1095578115815, 16, 24.3, 15.39, 23.7, 0.169, 2.13),
    (1095578115915, 16, 24.7, 15.42, 26.0, 0.176, 2.31),
    (1095578116015, 1, 15.8, 14.77, 15.1, 0.125, 2.43),
    (1095578116115, 7, 14.0, 13.77, 13.5, 0.126, 2.43),
    (1095578116215, 4, 15.2, 14.53, 15.0, 0.105, 2.18),
    (1095578116315, 6, 16.5, 14.85, 16.5, 0.117, 2.31),
    (1661382530015, 1, 185.1, 7.75, 183.9, 2.906, 3.72),
)

#: HSM Gaussian-equivalent FWHM / true FWHM of a pixel-sampled Moffat beta=3 (GalSim measures 1.10-1.13).
#: The ZTF FWHM measurements are divided by it to get the Moffat FWHM to draw.
HSM_FWHM_PER_MOFFAT3_FWHM = 1.12
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Conditions:
    """Observing conditions of one candidate: sky levels and noise in ADU, PSF FWHM in arcsec (Moffat)."""

    sky_science: float
    sigma_science: float
    sky_template: float
    sigma_template: float
    fwhm_science: float
    fwhm_template: float


@dataclass(frozen=True)
class SurveyModel:
    """How one survey's triplets look. Lengths in pixels unless named otherwise.

    The defaults are the HiTS (DECam) model, ``SURVEYS["hits"]``; other surveys override what differs."""

    name: str = "hits"
    size: int = 21  # stamp side, px (odd: the candidate sits on the centre pixel)
    pixel_scale: float = 0.263  # arcsec/px
    extensions: tuple[str, ...] = ("TEMPLATE", "SCIENCE", "DIFFERENCE", "SNR")  # FITS extension order
    gain: float = 4.0  # e-/ADU
    saturation: float = 33000.0  # ADU
    moffat_beta: float = 3.0
    template_fwhm_ratio: tuple[float, float] = (0.70, 0.95)  # template FWHM / science FWHM, uniform range
    template_artifacts: float = 0.25  # probability that a CR / hot pixel / bad column is in the template
    field_stars: float = 0.3  # mean number of unrelated stars per stamp
    host_r_e: tuple[float, float] = (0.4, 2.0)  # host half-light radius range, arcsec
    cosmic_ray_length: tuple[float, float] = (1.0, 6.0)  # px
    snr_range: tuple[float, float] = (6.0, 300.0)  # injected matched-filter S/N of real sources
    flip_negative: bool = False  # ZTF: negative candidates get template-minus-science, ISDIFPOS='f'
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))

    @property
    def has_snr(self) -> bool:
        return "SNR" in self.extensions

    def sample_conditions(self, rng: np.random.Generator) -> Conditions:
        """Draw one candidate's :class:`Conditions`."""
        if self.name == "ztf":
            weights = np.array([row[1] for row in ZTF_EXPOSURES], dtype=float)
            row = ZTF_EXPOSURES[int(rng.choice(len(ZTF_EXPOSURES), p=weights / weights.sum()))]
            jitter = 10 ** rng.normal(0.0, 0.013, size=5)  # 3 % scatter
            fwhm = row[6] / HSM_FWHM_PER_MOFFAT3_FWHM * jitter[4]
            return Conditions(
                sky_science=row[2] * jitter[0],
                sigma_science=row[3] * jitter[1],
                sky_template=row[4] * jitter[0],
                sigma_template=row[5] * jitter[2],
                fwhm_science=fwhm,
                fwhm_template=fwhm * rng.uniform(*self.template_fwhm_ratio),
            )
        sky = 200.0 * 10 ** rng.normal(0.0, 0.12)
        read_noise = 7.0  # e-
        sigma = float(np.sqrt(sky / self.gain + (read_noise / self.gain) ** 2))
        fwhm = float(np.clip(1.3 * 10 ** rng.normal(0.0, 0.07), 0.85, 2.2))
        return Conditions(
            sky_science=sky,
            sigma_science=sigma,
            sky_template=sky * rng.uniform(0.8, 1.2),
            sigma_template=sigma * rng.uniform(0.6, 1.0),
            fwhm_science=fwhm,
            fwhm_template=fwhm * rng.uniform(*self.template_fwhm_ratio),
        )


SURVEYS: dict[str, SurveyModel] = {
    "hits": SurveyModel(),
    "ztf": SurveyModel(
        name="ztf",
        size=63,
        pixel_scale=1.01,
        extensions=("SCIENCE", "TEMPLATE", "DIFFERENCE"),
        gain=6.2,
        saturation=50000.0,
        template_fwhm_ratio=(0.75, 1.0),
        template_artifacts=0.0,
        field_stars=2.0,
        host_r_e=(1.0, 4.0),
        cosmic_ray_length=(1.0, 4.0),
        flip_negative=True,
    ),
}
