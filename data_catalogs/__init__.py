"""Knowledge of outside catalogs and formats and the shipped samples. Imports numpy, pandas and astropy only
(docs/design.md).

- :mod:`data_catalogs.galaxy_zoo`: the Kaggle Galaxy Zoo decision tree (37 answers, cumulative fractions).
- :mod:`data_catalogs.galaxy_zoo_formats`: readers of the Kaggle, GZ2 and DECaLS label catalogs
  (``read_catalog``); the canonical table and its per-row checks are in
  :mod:`data_catalogs.galaxy_zoo_catalog`, the GZ2 and DECaLS schemas in :mod:`data_catalogs.galaxy_zoo_schemas`.
- :mod:`data_catalogs.tables`: CSV/Parquet/FITS tables and ``CatalogError`` (a whole catalog that cannot be used).
- :mod:`data_catalogs.alert_schemas`: ZTF and Rubin alert schemas.
"""
