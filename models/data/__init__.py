"""Training data from stamp stores: splits by object, chunk-wise batches, the Lightning data module.

- :mod:`models.data.splits`: :func:`assign_splits` (train/val/test by object, stratified by class),
  :func:`save_splits` / :func:`load_splits` (CSV ``object_id,split``).
- :mod:`models.data.sampler`: :class:`BlockBatchSampler` (sorted index batches drawn HDF5 chunk by chunk).
- :mod:`models.data.dataset`: :class:`StoreBatchDataset` (a batch read with one slice per chunk, prepared
  and augmented) and :class:`StoreInfo`.
- :mod:`models.data.datamodule`: :class:`StampDataModule` (the LightningDataModule over one or more stores).
"""

from pipeline._lazy import lazy_exports

#: name -> submodule that defines it
_EXPORTS = {
    "MAX_CACHE_BYTES": "datamodule",
    "StampDataModule": "datamodule",
    "StoreBatchDataset": "dataset",
    "StoreInfo": "dataset",
    "BlockBatchSampler": "sampler",
    "SPLITS": "splits",
    "assign_splits": "splits",
    "load_splits": "splits",
    "save_splits": "splits",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
