"""Simulated real/bogus difference-imaging triplets (template, science, difference [, SNR]) with known truth.

- :mod:`pipeline.simulate.transients.dataset`: a labelled set on disk (FITS files, ``labels.csv``,
  ``simulation.json``): :func:`simulate_transients`.
- :mod:`pipeline.simulate.transients.triplet`: one candidate assembled from its scene, artefact and noise
  (:func:`simulate_triplet`).
- :mod:`pipeline.simulate.transients.scene`: PSFs, rendering, field stars and hosts.
- :mod:`pipeline.simulate.transients.artifacts`: cosmic rays, hot pixels, bad columns, bleed trails.
- :mod:`pipeline.simulate.transients.noise`: sky + Poisson + read noise, the matching kernel, matched-filter S/N.
- :mod:`pipeline.simulate.transients.surveys`: how each survey looks (``hits``, ``ztf``): conditions, detector,
  class mix.
- :mod:`pipeline.simulate.transients.backgrounds`: real ZTF triplets (alert packets, stores) to inject into
  (:func:`load_backgrounds`), read by :mod:`pipeline.simulate.transients.background_sources`.
- :mod:`pipeline.simulate.transients.injection`: candidates made on those backgrounds (injected point sources,
  artefacts, labelled alerts; :func:`background_triplet`).
- :mod:`pipeline.simulate.transients.measured`: noise, background and PSF measured on real ZTF triplets, the
  source of the ZTF-like conditions.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "Background": "backgrounds",
    "BackgroundSet": "backgrounds",
    "load_backgrounds": "backgrounds",
    "read_background_labels": "backgrounds",
    "seeing_fwhm": "backgrounds",
    "BACKGROUND_COLUMNS": "dataset",
    "BACKGROUND_MIX": "injection",
    "background_mix": "injection",
    "background_triplet": "injection",
    "LABEL_COLUMNS": "dataset",
    "candidate_id": "dataset",
    "simulate_transients": "dataset",
    "triplet_hdulist": "dataset",
    "central_fwhm": "measured",
    "exposure_conditions": "measured",
    "lag1_correlation": "measured",
    "measure_triplets": "measured",
    "sample_triplet_paths": "measured",
    "BOGUS_KINDS": "surveys",
    "Conditions": "surveys",
    "DEFAULT_MIX": "surveys",
    "HSM_FWHM_PER_MOFFAT3_FWHM": "surveys",
    "KINDS": "surveys",
    "REAL_KINDS": "surveys",
    "SURVEYS": "surveys",
    "SurveyModel": "surveys",
    "ZTF_EXPOSURES": "surveys",
    "Triplet": "triplet",
    "simulate_triplet": "triplet",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
