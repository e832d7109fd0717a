"""Simulated training data with known truth, rendered with GalSim.

- :mod:`pipeline.simulate.galaxies`: g, r, i galaxy cubes of known morphology and the Galaxy Zoo votes
  simulated volunteers give them (Kaggle and GZ2 catalogs).
- :mod:`pipeline.simulate.transients`: real/bogus template/science/difference triplets, HiTS- or ZTF-like,
  as FITS files and ``labels.csv``; the ZTF-like conditions are measured on the shipped real ZTF triplets.
- :mod:`pipeline.simulate.runner`: per-object seeds from ``(seed, index)``, chunked process-parallel runs and
  byte-reproducible FITS writing, shared by both.

Submodules are imported on use (GalSim is heavy); the CLI is ``stampflow simulate galaxies|transients``.
"""
