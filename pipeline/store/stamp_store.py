"""The HDF5 stamp store: one file per dataset of image stamps (docs/design.md, "Stamp store").

Layout (schema version 1):

- ``/stamps``   float32 ``(N, C, H, W)``, chunked along N, compressed (lzf + shuffle by default); or uint8
  values ``k`` of pixels ``k / 255`` (root attributes ``pixel_dtype="uint8"``, ``pixel_divisor=255.0``,
  :mod:`pipeline.store.pixels`): every reader gets float32 pixels either way.
- ``/mask``     uint8 ``(N, C, H, W)``: 1 where a pixel was NaN, a blank sentinel, or outside the parent
  image (its value in ``/stamps`` is then 0.0). Always written; all-zero when nothing is masked.
- ``/catalog/<column>``  one 1-D dataset of length N per column. ``object_id`` (str) and ``source`` (str)
  are required; ``ra``/``dec`` (float64, degrees) and survey ids (``candid``, ``GalaxyID``...) are common.
- ``/labels/<name>``  task labels of length N in the first axis: ``gz_answers`` float32 ``(N, 37)``,
  ``real`` int8 ``(N,)``, ... (extensible).
- root attributes: ``schema_version``, ``channels`` (list of str, length C), ``stamp_shape`` ``[H, W]``,
  ``pixel_scale_arcsec`` (float, NaN if unknown), ``created_by`` (``stampflow <version>``), ``config_hash``,
  ``source_sha256`` (sha256 over the sorted per-input digests), ``n_stamps``, ``complete`` (True),
  ``pixel_dtype`` and ``pixel_divisor`` (absent in older stores: float32), ``frame`` (JSON, only in stores
  framed at ingest: :mod:`pipeline.prep.frame`).

A store is written by :class:`pipeline.store.writer.StampStoreWriter` under a temporary name beside the final
one and renamed only when it closes successfully, so a killed run never leaves a half-written store under the
final name. This module reads it: :func:`open_store` validates the schema (:func:`validate_store`) and raises
:class:`StoreValidationError` listing every problem it found, or returns a :class:`StampStore`. The store's
``source_sha256`` is :func:`combined_sha256` of the inputs' :func:`sha256_file` digests.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from pipeline.store.pixels import PIXEL_DTYPE_ATTR, PIXEL_DTYPES, decode_pixels, pixel_divisor

SCHEMA_VERSION = 1
REQUIRED_CATALOG_COLUMNS = ("object_id", "source")


class StoreValidationError(ValueError):
    """A file is not a valid stamp store; ``problems`` lists each thing that is wrong."""

    def __init__(self, path: str | os.PathLike, problems: Sequence[str]):
        self.path = str(path)
        self.problems = list(problems)
        super().__init__(f"{self.path} is not a valid stamp store: " + "; ".join(self.problems))


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def combined_sha256(digests: Iterable[str]) -> str:
    """One sha256 over a set of per-input hex digests (order-independent)."""
    digest = hashlib.sha256()
    for item in sorted(digests):
        digest.update(item.encode())
    return digest.hexdigest()


@dataclass
class StampStore:
    """A validated, open stamp store (read-only). Close it, or use it as a context manager.

    Attributes:
        path: the file.
        channels: channel names, length C.
        stamp_shape: ``(H, W)``.
        n: number of stamps N.
        divisor: stored ``/stamps`` values are divided by it (uint8 stores, 255.0); None: float32 as stored.
    """

    path: Path
    h5: h5py.File
    channels: list[str]
    stamp_shape: tuple[int, int]
    n: int
    divisor: float | None = None

    def __enter__(self) -> StampStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.h5.close()

    def __len__(self) -> int:
        return self.n

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes as plain Python values."""
        out = {}
        for key, value in self.h5.attrs.items():
            out[key] = value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value
        return out

    @property
    def pixel_scale_arcsec(self) -> float:
        return float(self.h5.attrs["pixel_scale_arcsec"])

    @property
    def catalog_columns(self) -> list[str]:
        return list(self.h5["catalog"].keys())

    @property
    def label_names(self) -> list[str]:
        return list(self.h5["labels"].keys())

    def stamps(self, index: slice | np.ndarray | None = None) -> np.ndarray:
        """Stamps ``(K, C, H, W)`` float32 for a slice or sorted index array (all when None), decoded
        from a uint8 store (:func:`pipeline.store.pixels.decode_pixels`)."""
        return decode_pixels(self.h5["stamps"][slice(None) if index is None else index], self.divisor)

    def mask(self, index: slice | np.ndarray | None = None) -> np.ndarray:
        """Mask ``(K, C, H, W)`` bool for a slice or sorted index array (all when None)."""
        return self.h5["mask"][slice(None) if index is None else index].astype(bool)

    def catalog(
        self, index: slice | np.ndarray | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Catalog rows as a DataFrame (strings decoded)."""
        sel = slice(None) if index is None else index
        data = {}
        for name in columns or self.catalog_columns:
            dset = self.h5["catalog"][name]
            values = dset.asstr()[sel] if h5py.check_string_dtype(dset.dtype) else dset[sel]
            data[name] = values
        return pd.DataFrame(data)

    def labels(self, name: str, index: slice | np.ndarray | None = None) -> np.ndarray:
        """Label array ``/labels/<name>`` rows (first axis N)."""
        if name not in self.h5["labels"]:
            raise KeyError(f"{self.path} has no label {name!r}; it has {self.label_names}")
        return self.h5["labels"][name][slice(None) if index is None else index]

    def iter_chunks(self, rows: int = 1024) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """Yield ``(slice, stamps (K, C, H, W) float32, mask (K, C, H, W) bool)`` in contiguous chunks."""
        for start in range(0, self.n, rows):
            sel = slice(start, min(start + rows, self.n))
            yield sel, self.stamps(sel), self.mask(sel)


def validate_store(h5: h5py.File) -> list[str]:
    """Every way an open HDF5 file departs from the stamp-store schema (empty list: valid)."""
    problems: list[str] = []
    attrs = h5.attrs
    for key in ("schema_version", "channels", "stamp_shape", "pixel_scale_arcsec", "created_by"):
        if key not in attrs:
            problems.append(f"root attribute {key!r} is missing")
    if "schema_version" in attrs and int(attrs["schema_version"]) != SCHEMA_VERSION:
        problems.append(f"schema_version is {attrs['schema_version']}, this code reads {SCHEMA_VERSION}")
    if "complete" in attrs and not bool(attrs["complete"]):
        problems.append("the store was never completed (attribute complete=False): a writer was interrupted")
    if "stamps" not in h5:
        problems.append("dataset /stamps is missing")
        return problems
    stamps = h5["stamps"]
    if stamps.ndim != 4:
        problems.append(f"/stamps must be 4-D (N, C, H, W), it is {stamps.ndim}-D {stamps.shape}")
        return problems
    declared = str(attrs.get(PIXEL_DTYPE_ATTR, "float32"))
    if declared not in PIXEL_DTYPES:
        problems.append(f"attribute {PIXEL_DTYPE_ATTR} is {declared!r}, expected one of {PIXEL_DTYPES}")
    elif stamps.dtype != np.dtype(declared):
        problems.append(f"/stamps must be {declared} (attribute {PIXEL_DTYPE_ATTR}), it is {stamps.dtype}")
    n = stamps.shape[0]
    channels = [str(c) for c in attrs.get("channels", [])]
    if "channels" in attrs and len(channels) != stamps.shape[1]:
        problems.append(
            f"attribute channels has {len(channels)} names but /stamps has {stamps.shape[1]} channels"
        )
    if "stamp_shape" in attrs and tuple(int(v) for v in attrs["stamp_shape"]) != tuple(stamps.shape[2:]):
        problems.append(
            f"attribute stamp_shape {list(attrs['stamp_shape'])} differs from /stamps {stamps.shape[2:]}"
        )
    if "mask" in h5 and h5["mask"].shape != stamps.shape:
        problems.append(f"/mask shape {h5['mask'].shape} differs from /stamps {stamps.shape}")
    if "catalog" not in h5:
        problems.append("group /catalog is missing")
    else:
        for name in REQUIRED_CATALOG_COLUMNS:
            if name not in h5["catalog"]:
                problems.append(f"catalog column /catalog/{name} is missing")
        for name, dset in h5["catalog"].items():
            if dset.shape != (n,):
                problems.append(f"/catalog/{name} has shape {dset.shape}, expected ({n},)")
    if "labels" in h5:
        for name, dset in h5["labels"].items():
            if dset.shape[:1] != (n,):
                problems.append(f"/labels/{name} has {dset.shape[0]} rows, expected {n}")
    return problems


def open_store(path: str | os.PathLike) -> StampStore:
    """Open and validate a stamp store for reading.

    Raises:
        FileNotFoundError: no file at ``path``.
        StoreValidationError: not HDF5, or not a valid store (every problem listed).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no stamp store at {path}")
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise StoreValidationError(path, [f"not a readable HDF5 file ({err})"]) from err
    problems = validate_store(h5)
    if problems:
        h5.close()
        raise StoreValidationError(path, problems)
    shape = h5["stamps"].shape
    return StampStore(
        path=path,
        h5=h5,
        channels=[str(c) for c in h5.attrs["channels"]],
        stamp_shape=(int(shape[2]), int(shape[3])),
        n=int(shape[0]),
        divisor=pixel_divisor(h5.attrs),
    )
