"""File formats at the edge of stampflow: FITS stamps and images, JPEG/PNG, catalog tables, rejects, and
the atomic-write protocol every writer follows.

- :mod:`pipeline.io.fits`: one stamp per FITS file (2-D, cubes, MEF, gzip, bytes), masks, header positions.
- :mod:`pipeline.io.images`: JPEG and PNG images (e.g. Kaggle Galaxy Zoo) as stamps.
- :mod:`pipeline.io.cutouts`: large FITS images and fixed-size cutouts at sky or pixel positions.
- :mod:`pipeline.io.catalogs`: streamed Parquet (astropy-readable), FITS and CSV catalogs.
- :mod:`pipeline.io.rejects`: :class:`StampRejected` (an input with a reason) and ``rejects.csv``.
- :mod:`pipeline.io.atomic`: :class:`CommitOnSuccess`, the writer protocol: nothing under the final name
  until the output is complete.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "CommitOnSuccess": "atomic",
    "OutputError": "atomic",
    "output_error": "atomic",
    "output_errors": "atomic",
    "start_partial": "atomic",
    "ParquetTableWriter": "catalogs",
    "output_format": "catalogs",
    "partial_path": "atomic",
    "atomic_path": "atomic",
    "publish": "atomic",
    "write_text": "atomic",
    "remove_stale_partials": "atomic",
    "publish_catalog": "catalogs",
    "read_scored_table": "catalogs",
    "staging_parquet_path": "catalogs",
    "cut_stamp": "cutouts",
    "off_sky": "cutouts",
    "pixel_positions": "cutouts",
    "read_fits_image": "cutouts",
    "FitsStamp": "fits",
    "fits_stem": "fits",
    "header_pixel_scale": "fits",
    "header_sky_position": "fits",
    "header_value": "fits",
    "is_fits_name": "fits",
    "mask_invalid": "fits",
    "read_stamp": "fits",
    "is_image_file": "images",
    "read_image": "images",
    "REASONS": "rejects",
    "RejectLog": "rejects",
    "StampRejected": "rejects",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
