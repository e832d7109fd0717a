"""stampflow's pure library: one package per domain. Never imports prefect or lightning (docs/design.md).

- :mod:`pipeline.io`: file formats (FITS, JPEG/PNG, catalogs), rejects, atomic writes.
- :mod:`pipeline.store`: the HDF5 stamp store, the builder every ingest feeds, merging parts.
- :mod:`pipeline.alerts`: ZTF and Rubin alert packets: decode, stamps, scoring, broker records.
- :mod:`pipeline.ingest`: every source of stamps into a store plus ``rejects.csv``.
- :mod:`pipeline.prep`: stamps to model inputs: preprocessing, batch preparation, augmentation.
- :mod:`pipeline.scoring`: trained models applied to stamps, the ONNX Runtime fast path.
- :mod:`pipeline.evaluation`: reports, metrics, plots.
- :mod:`pipeline.runs`: the run manifest and summary.
- :mod:`pipeline.simulate`: simulated galaxies, volunteers and real/bogus triplets with known truth.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stampflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
