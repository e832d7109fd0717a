"""Simulated multi-band galaxies of known morphology and the Galaxy Zoo votes volunteers would give them.

- :mod:`pipeline.simulate.galaxies.dataset`: g, r, i cubes (FITS, optional JPEG) and their catalogs on disk
  (:func:`simulate_galaxies`, :func:`simulate_galaxy`).
- :mod:`pipeline.simulate.galaxies.profiles`: the GalSim models (bulge, disk, edge-on, merger, irregular,
  artefact) and :class:`GalaxyImaging`, the imaging set-up.
- :mod:`pipeline.simulate.galaxies.sdss_jpeg`: the ``sdss-jpeg`` style, JPEGs rendered like the real
  Kaggle / Galaxy Zoo 2 images (:class:`SdssJpegStyle`, :func:`simulate_sdss_galaxy`).
- :mod:`pipeline.simulate.galaxies.drawing`: components through the PSF and sky noise, for both styles.
- :mod:`pipeline.simulate.galaxies.features`: spiral arms, rings and boxy bulges drawn on a grid.
- :mod:`pipeline.simulate.galaxies.volunteers`: volunteers walking the Kaggle / GZ2 decision tree, Kaggle and
  GZ2 catalogs (:func:`simulate_votes`, :func:`kaggle_table`, :func:`gz2_table`).
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "BANDS": "dataset",
    "STYLES": "dataset",
    "classify_galaxy": "dataset",
    "add_sky_noise": "drawing",
    "draw_models": "drawing",
    "SdssJpegStyle": "sdss_jpeg",
    "petro_r90": "sdss_jpeg",
    "simulate_sdss_galaxy": "sdss_jpeg",
    "SimulatedGalaxy": "dataset",
    "galaxy_hdulist": "dataset",
    "render_galaxy": "dataset",
    "simulate_galaxies": "dataset",
    "simulate_galaxy": "dataset",
    "write_jpeg": "dataset",
    "Component": "profiles",
    "GalaxyImaging": "profiles",
    "MORPHOLOGY_MIX": "profiles",
    "sample_galaxy": "profiles",
    "GZ2_ANSWER_NAMES": "volunteers",
    "confusion": "volunteers",
    "gz2_table": "volunteers",
    "ideal_answers": "volunteers",
    "kaggle_table": "volunteers",
    "simulate_votes": "volunteers",
    "votes_table": "volunteers",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
