"""Simulated training data with known truth, rendered with GalSim.

- :mod:`pipeline.simulate.galaxies`: g, r, i galaxy cubes of known morphology (``simulate_galaxies``), made
  of the GalSim models in :mod:`pipeline.simulate.galaxy_models`;
- :mod:`pipeline.simulate.volunteers`: Galaxy Zoo volunteers walking the decision tree for them, Kaggle and
  GZ2 catalogs (``simulate_votes``, ``kaggle_table``, ``gz2_table``);
- :mod:`pipeline.simulate.transients`: real/bogus template/science/difference triplets, HiTS- or ZTF-like, as
  FITS files and ``labels.csv`` (``simulate_transients``, ``simulate_triplet``); the look of each survey is in
  :mod:`pipeline.simulate.transient_surveys`; one candidate is assembled in
  :mod:`pipeline.simulate.transient_triplet` from its sources (:mod:`pipeline.simulate.transient_scene`: PSF,
  rendering, field stars), artefacts (:mod:`pipeline.simulate.transient_artifacts`: cosmic rays, hot pixels,
  bad columns, bleed trails) and noise (:mod:`pipeline.simulate.transient_noise`: Poisson + read noise,
  matching kernel, matched-filter S/N);
- :mod:`pipeline.simulate.noise_model`: noise, background and PSF measured on the real ZTF triplets, the
  source of the ZTF-like conditions;
- :mod:`pipeline.simulate.runner`: per-object seeds from ``(seed, index)``, chunked process-parallel runs and
  byte-reproducible FITS writing.

Submodules are imported on use (GalSim is heavy); the CLI is ``stampflow simulate galaxies|transients``.
"""
