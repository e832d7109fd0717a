"""Every source of stamps turned into a stamp store plus ``rejects.csv``.

- :mod:`pipeline.ingest.fits_stamps`: FITS stamp files and folders, one stamp per file.
- :mod:`pipeline.ingest.alert_packets`: alert packets (their science, template, difference cutouts).
- :mod:`pipeline.ingest.labelled_triplets`: a folder of FITS triplets and its ``labels.csv``.
- :mod:`pipeline.ingest.catalog_cutouts`: stamps cut from a large image at a catalog's positions.
- :mod:`pipeline.ingest.galaxy_zoo`: a Galaxy Zoo catalog (Kaggle, GZ2, DECaLS) and its images.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "ingest_alerts": "alert_packets",
    "ingest_cutouts": "catalog_cutouts",
    "expand_inputs": "fits_stamps",
    "ingest_fits": "fits_stamps",
    "ingest_galaxy_zoo": "galaxy_zoo",
    "ingest_labelled_triplets": "labelled_triplets",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
