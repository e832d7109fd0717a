"""The HDF5 stamp store (docs/design.md, "Stamp store") and the ways it is filled.

- :mod:`pipeline.store.stamp_store`: the format and reading it: :class:`StampStore`, :func:`open_store`
  (validated, :class:`StoreValidationError` lists every problem), content hashes.
- :mod:`pipeline.store.writer`: :class:`StampStoreWriter` appends stamps, masks, catalog columns and labels
  in chunks; the final name appears only when it closes successfully.
- :mod:`pipeline.store.builder`: :class:`StoreBuilder` accumulates stamps from many inputs, conforms their
  size and channels, records rejects and returns an :class:`IngestReport` (ingested + rejected = inputs).
- :mod:`pipeline.store.pixels`: how ``/stamps`` encode pixels (float32, or uint8 with a divisor) and
  :func:`decode_pixels`, the one way to read them back as float32.
- :mod:`pipeline.store.merge`: joins the part stores of a chunked ingest into one store.
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "IngestReport": "builder",
    "StoreBuilder": "builder",
    "pad_to_shape": "builder",
    "merge_stores": "merge",
    "PIXEL_DIVISOR_ATTR": "pixels",
    "PIXEL_DTYPE_ATTR": "pixels",
    "PIXEL_DTYPES": "pixels",
    "decode_pixels": "pixels",
    "encode_pixels": "pixels",
    "pixel_divisor": "pixels",
    "SCHEMA_VERSION": "stamp_store",
    "StampStore": "stamp_store",
    "StoreValidationError": "stamp_store",
    "combined_sha256": "stamp_store",
    "open_store": "stamp_store",
    "sha256_file": "stamp_store",
    "StampStoreWriter": "writer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
