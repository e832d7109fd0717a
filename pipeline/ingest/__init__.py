"""Every source of stamps turned into a stamp store plus ``rejects.csv``: one driver, one reader per source.

- :mod:`pipeline.ingest.sources`: the options of each source kind (pydantic models, the tagged union
  :data:`~pipeline.ingest.sources.IngestSource`); the flows and the command line are built from them.
- :mod:`pipeline.ingest.registry`: source kind -> reader, and :func:`ingest_source` (reader + driver).
- :mod:`pipeline.ingest.driver`: :func:`ingest`, the one loop: store builder, rejects, progress, counts, commit.
- :mod:`pipeline.ingest.reader`: what a reader yields (:class:`Stamp`, :class:`Reject`) and its protocol.
- :mod:`pipeline.ingest.inputs`: input files expanded once, named safely, read and hashed once.
- Readers: :mod:`pipeline.ingest.fits_stamps` (FITS stamp files and folders, one stamp per file),
  :mod:`pipeline.ingest.alert_packets` (alert packets: science, template, difference cutouts),
  :mod:`pipeline.ingest.labelled_triplets` (a folder of FITS triplets and its ``labels.csv``),
  :mod:`pipeline.ingest.catalog_cutouts` (stamps cut from a large image at a catalog's positions),
  :mod:`pipeline.ingest.galaxy_zoo` (a Galaxy Zoo catalog, Kaggle, GZ2 or DECaLS, and its images, found,
  read with their band names and framed by :mod:`pipeline.ingest.galaxy_images`); each also keeps its
  keyword function (``ingest_fits``, ...) for scripts.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "AlertReader": "alert_packets",
    "ingest_alerts": "alert_packets",
    "CutoutReader": "catalog_cutouts",
    "ingest_cutouts": "catalog_cutouts",
    "ingest": "driver",
    "FitsReader": "fits_stamps",
    "expand_inputs": "fits_stamps",
    "ingest_fits": "fits_stamps",
    "GalaxyZooReader": "galaxy_zoo",
    "ingest_galaxy_zoo": "galaxy_zoo",
    "InputFiles": "inputs",
    "check_name": "inputs",
    "expand_paths": "inputs",
    "input_name": "inputs",
    "LabelledReader": "labelled_triplets",
    "ingest_labelled_triplets": "labelled_triplets",
    "Reader": "reader",
    "Reject": "reader",
    "Stamp": "reader",
    "StorePlan": "reader",
    "READERS": "registry",
    "ingest_source": "registry",
    "open_reader": "registry",
    "reader_class": "registry",
    "AlertSource": "sources",
    "CutoutSource": "sources",
    "FitsSource": "sources",
    "GalaxyZooSource": "sources",
    "IngestSource": "sources",
    "LabelledSource": "sources",
    "SOURCES": "sources",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
