"""The HDF5 stamp store: one file per dataset of image stamps (docs/design.md, "Stamp store").

Layout (schema version 1):

- ``/stamps``   float32 ``(N, C, H, W)``, chunked along N, compressed (lzf + shuffle by default).
- ``/mask``     uint8 ``(N, C, H, W)``: 1 where a pixel was NaN, a blank sentinel, or outside the parent
  image (its value in ``/stamps`` is then 0.0). Always written; all-zero when nothing is masked.
- ``/catalog/<column>``  one 1-D dataset of length N per column. ``object_id`` (str) and ``source`` (str)
  are required; ``ra``/``dec`` (float64, degrees) and survey ids (``candid``, ``GalaxyID``...) are common.
- ``/labels/<name>``  task labels of length N in the first axis: ``gz_answers`` float32 ``(N, 37)``,
  ``real`` int8 ``(N,)``, ... (extensible).
- root attributes: ``schema_version``, ``channels`` (list of str, length C), ``stamp_shape`` ``[H, W]``,
  ``pixel_scale_arcsec`` (float, NaN if unknown), ``created_by`` (``stampflow <version>``), ``config_hash``,
  ``source_sha256`` (sha256 over the sorted per-input digests), ``n_stamps``, ``complete`` (True).

A store is written by :class:`StampStoreWriter` under a temporary name beside the final one and renamed
(``os.replace``, atomic on POSIX) only when :meth:`StampStoreWriter.close` succeeds, so a killed run never
leaves a half-written store under the final name. :func:`open_store` validates the schema and raises
:class:`StoreValidationError` listing every problem it found.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from pipeline import __version__
from pipeline.io.atomic import CommitOnSuccess, partial_path, publish, remove_stale_partials

SCHEMA_VERSION = 1
REQUIRED_CATALOG_COLUMNS = ("object_id", "source")
COMPRESSIONS = ("lzf", "gzip", "none")
#: Largest HDF5 chunk along N, in bytes of float32 stamps: h5py's default chunk cache is 1 MiB per
#: dataset, and a chunk larger than the cache is re-read and re-decompressed on every partial read.
MAX_CHUNK_BYTES = 1 << 20
_STR = h5py.string_dtype(encoding="utf-8")


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


def _as_column(values: Any) -> np.ndarray:
    """Catalog values as an array h5py can store: str/object -> utf-8 strings, numbers as they are."""
    arr = np.asarray(values)
    if arr.dtype.kind in ("U", "S", "O"):
        return np.array(["" if v is None else str(v) for v in arr.ravel()], dtype=object)
    return arr


def _compression_kwargs(compression: str, level: int) -> dict[str, Any]:
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": level, "shuffle": True}
    if compression == "none":
        return {}
    raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")


class StampStoreWriter(CommitOnSuccess):
    """Write a stamp store in appended chunks; the final name appears only when :meth:`close` succeeds.

    Use as a context manager: on an exception inside the ``with`` block the temporary file is removed
    and nothing is left under ``path``.

    Args:
        path: final file name (``stamps.h5``).
        channels: channel names, length C (e.g. ``["g", "r", "i"]``).
        stamp_shape: ``(H, W)`` in pixels.
        pixel_scale_arcsec: pixel scale in arcsec/pixel, or None if unknown.
        config_hash: hash of the configuration that produced the store.
        chunk_rows: rows per HDF5 chunk along N, at most (and by default at most) what fits in
            :data:`MAX_CHUNK_BYTES` (one row at least).
        compression: ``"lzf"`` (default, fastest), ``"gzip"`` (``level`` 1-4) or ``"none"``.
        attrs: extra root attributes (JSON-able scalars or lists).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        channels: Sequence[str],
        stamp_shape: tuple[int, int],
        *,
        pixel_scale_arcsec: float | None = None,
        config_hash: str = "",
        chunk_rows: int = 256,
        compression: str = "lzf",
        level: int = 1,
        attrs: Mapping[str, Any] | None = None,
    ):
        self.path = Path(path)
        self.channels = [str(c) for c in channels]
        self.stamp_shape = (int(stamp_shape[0]), int(stamp_shape[1]))
        self.n = 0
        self._source_digests: set[str] = set()
        self._catalog_dtypes: dict[str, np.dtype] = {}
        self._label_shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self._tmp = partial_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.path)
        self._h5 = h5py.File(self._tmp, "w")
        c, (h, w) = len(self.channels), self.stamp_shape
        rows_fitting = max(1, MAX_CHUNK_BYTES // (4 * c * h * w))
        chunk = (max(1, min(chunk_rows, rows_fitting)), c, h, w)
        comp = _compression_kwargs(compression, level)
        self._h5.create_dataset("stamps", (0, c, h, w), "f4", maxshape=(None, c, h, w), chunks=chunk, **comp)
        self._h5.create_dataset("mask", (0, c, h, w), "u1", maxshape=(None, c, h, w), chunks=chunk, **comp)
        self._h5.create_group("catalog")
        self._h5.create_group("labels")
        self._chunk_rows = chunk[0]
        self._comp = comp
        root = self._h5.attrs
        root["schema_version"] = SCHEMA_VERSION
        root["channels"] = self.channels
        root["stamp_shape"] = list(self.stamp_shape)
        root["pixel_scale_arcsec"] = float("nan") if pixel_scale_arcsec is None else float(pixel_scale_arcsec)
        root["created_by"] = f"stampflow {__version__}"
        root["config_hash"] = config_hash
        root["complete"] = False
        for key, value in (attrs or {}).items():
            root[key] = value

    def add_source_digest(self, sha256: str) -> None:
        """Record one input's sha256; the store's ``source_sha256`` combines them all."""
        self._source_digests.add(sha256)

    def append(
        self,
        stamps: np.ndarray,
        mask: np.ndarray | None,
        catalog: Mapping[str, Any],
        labels: Mapping[str, Any] | None = None,
    ) -> None:
        """Append K stamps.

        Args:
            stamps: ``(K, C, H, W)`` float-like; masked pixels should already be 0.
            mask: ``(K, C, H, W)`` bool/uint8, or None for nothing masked.
            catalog: column name -> K values; must hold ``object_id`` and ``source`` and, after the first
                append, exactly the same columns as before.
            labels: label name -> array with first axis K; same names on every append.
        """
        stamps = np.asarray(stamps, dtype=np.float32)
        c, (h, w) = len(self.channels), self.stamp_shape
        if stamps.ndim != 4 or stamps.shape[1:] != (c, h, w):
            raise ValueError(f"stamps must be (K, {c}, {h}, {w}), got {stamps.shape}")
        k = stamps.shape[0]
        mask_arr = np.zeros(stamps.shape, np.uint8) if mask is None else np.asarray(mask, dtype=np.uint8)
        if mask_arr.shape != stamps.shape:
            raise ValueError(f"mask shape {mask_arr.shape} differs from stamps {stamps.shape}")
        missing = [col for col in REQUIRED_CATALOG_COLUMNS if col not in catalog]
        if missing:
            raise ValueError(f"catalog lacks required columns {missing}")
        if self.n and set(catalog) != set(self._catalog_dtypes):
            raise ValueError(
                f"catalog columns {sorted(catalog)} differ from the store's {sorted(self._catalog_dtypes)}"
            )
        labels = labels or {}
        if self.n and set(labels) != set(self._label_shapes):
            raise ValueError(f"labels {sorted(labels)} differ from the store's {sorted(self._label_shapes)}")
        columns = {name: _as_column(values) for name, values in catalog.items()}
        for name, arr in columns.items():
            if arr.shape != (k,):
                raise ValueError(f"catalog column {name!r} has shape {arr.shape}, expected ({k},)")
        label_arrays = {name: np.asarray(values) for name, values in labels.items()}
        for name, arr in label_arrays.items():
            if arr.shape[:1] != (k,):
                raise ValueError(f"label {name!r} has first axis {arr.shape[:1]}, expected ({k},)")
        if k == 0:
            return
        start, stop = self.n, self.n + k
        for key, data in (("stamps", stamps), ("mask", mask_arr)):
            self._h5[key].resize(stop, axis=0)
            self._h5[key][start:stop] = data
        for name, arr in columns.items():
            self._write_rows(self._h5["catalog"], name, arr, start, stop)
            self._catalog_dtypes.setdefault(name, arr.dtype)
        for name, arr in label_arrays.items():
            self._write_rows(self._h5["labels"], name, arr, start, stop)
            self._label_shapes.setdefault(name, (arr.shape[1:], arr.dtype))
        self.n = stop

    def _write_rows(self, group: h5py.Group, name: str, arr: np.ndarray, start: int, stop: int) -> None:
        if name not in group:
            dtype = _STR if arr.dtype == object else arr.dtype
            group.create_dataset(
                name,
                (0, *arr.shape[1:]),
                dtype,
                maxshape=(None, *arr.shape[1:]),
                chunks=(max(self._chunk_rows, 1024), *arr.shape[1:]),
                **{k: v for k, v in self._comp.items() if arr.dtype != object},
            )
        dset = group[name]
        if dset.shape[1:] != arr.shape[1:]:
            raise ValueError(f"{group.name}/{name} rows are {dset.shape[1:]}, got {arr.shape[1:]}")
        dset.resize(stop, axis=0)
        dset[start:stop] = arr

    def close(self) -> Path:
        """Finish the store: write the final attributes, flush, fsync and rename to the final name."""
        if self._h5 is None:
            return self.path
        if self.n == 0:
            # Empty columns still need to exist so that the store validates.
            for name in REQUIRED_CATALOG_COLUMNS:
                if name not in self._h5["catalog"]:
                    self._h5["catalog"].create_dataset(name, (0,), _STR, maxshape=(None,))
        root = self._h5.attrs
        root["source_sha256"] = combined_sha256(self._source_digests)
        root["n_stamps"] = self.n
        root["complete"] = True
        self._h5.flush()
        fd = self._h5.id.get_vfd_handle()
        os.fsync(fd)
        self._h5.close()
        self._h5 = None
        return publish(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial store; the final name is left untouched."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        self._tmp.unlink(missing_ok=True)


@dataclass
class StampStore:
    """A validated, open stamp store (read-only). Close it, or use it as a context manager.

    Attributes:
        path: the file.
        channels: channel names, length C.
        stamp_shape: ``(H, W)``.
        n: number of stamps N.
    """

    path: Path
    h5: h5py.File
    channels: list[str]
    stamp_shape: tuple[int, int]
    n: int

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
        """Stamps ``(K, C, H, W)`` float32 for a slice or sorted index array (all when None)."""
        return self.h5["stamps"][slice(None) if index is None else index]

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
    if stamps.dtype != np.float32:
        problems.append(f"/stamps must be float32, it is {stamps.dtype}")
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
    )
