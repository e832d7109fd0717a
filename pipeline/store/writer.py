"""Writing a stamp store (the format: :mod:`pipeline.store.stamp_store`): :class:`StampStoreWriter`.

Stamps ``(K, C, H, W)`` float32 and their mask (uint8, 1 where masked) are appended in chunks with their
catalog columns and labels, into a temporary file beside the final name that is renamed only when the
writer closes successfully (:class:`pipeline.io.atomic.CommitOnSuccess`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline import __version__
from pipeline.io.atomic import CommitOnSuccess, partial_path, publish, remove_stale_partials
from pipeline.store.stamp_store import REQUIRED_CATALOG_COLUMNS, SCHEMA_VERSION, combined_sha256

COMPRESSIONS = ("lzf", "gzip", "none")
#: Largest HDF5 chunk along N, in bytes of float32 stamps: h5py's default chunk cache is 1 MiB per
#: dataset, and a chunk larger than the cache is re-read and re-decompressed on every partial read.
MAX_CHUNK_BYTES = 1 << 20
_STR = h5py.string_dtype(encoding="utf-8")


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
