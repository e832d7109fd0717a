"""Knowledge of outside catalogs and formats (Galaxy Zoo decision tree and label schemas, ZTF/Rubin alert
schemas) and the shipped samples. Imports numpy, pandas and astropy only (docs/design.md)."""
