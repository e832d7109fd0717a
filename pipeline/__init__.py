"""stampflow pure library: FITS/alert I/O, cutouts, the stamp store, preprocessing, augmentation,
simulation, scoring and reports. Never imports prefect or lightning (DESIGN.md)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stampflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
