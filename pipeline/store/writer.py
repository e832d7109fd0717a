"""Writing a stamp store (the format: :mod:`pipeline.store.stamp_store`): :class:`StampStoreWriter`.

Stamps ``(K, C, H, W)`` (float32, or uint8 with a divisor: :mod:`pipeline.store.pixels`) and their mask (uint8, 1 where masked) are appended in chunks with their
catalog columns and labels, into a temporary file beside the final name that is renamed only when the
writer closes successfully (:class:`pipeline.io.atomic.CommitOnSuccess`).

A write that fails (disk full, file size limit) is an :class:`~pipeline.io.atomic.OutputError` naming the
store, and the partial file is deleted. HDF5 writes cached chunks when it evicts them, flushes, or closes
a dataset: the writer keeps its datasets open until the file closes, so that a failed write raises in
:meth:`StampStoreWriter.append` or :meth:`StampStoreWriter.close` (not in a dataset's finaliser, where
h5py can only print it), and it discards a failed file by pointing its
descriptor at ``/dev/null`` before the one close: closing a file whose writes fail makes HDF5 retry them,
and a second close of such a file crashes the process (SIGSEGV).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline import __version__
from pipeline.io.atomic import CommitOnSuccess, output_error, publish, start_partial
from pipeline.store.pixels import encode_pixels, pixel_attrs
from pipeline.store.stamp_store import REQUIRED_CATALOG_COLUMNS, SCHEMA_VERSION, combined_sha256

COMPRESSIONS = ("lzf", "gzip", "none")
#: Largest HDF5 chunk along N, in bytes of stamps: h5py's default chunk cache is 1 MiB per
#: dataset, and a chunk larger than the cache is re-read and re-decompressed on every partial read.
MAX_CHUNK_BYTES = 1 << 20
_STR = h5py.string_dtype(encoding="utf-8")
#: How h5py reports a failed write: RuntimeError (flush/close) or OSError (create, write).
_WRITE_ERRORS = (OSError, RuntimeError)


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
        pixel_dtype: ``"float32"`` (default) or ``"uint8"`` (float pixels in [0, 1] quantised as
            ``rint(x * 255)``, root attributes ``pixel_dtype`` and ``pixel_divisor``:
            :mod:`pipeline.store.pixels`).
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
        pixel_dtype: str = "float32",
    ):
        self.path = Path(path)
        self.pixel_attrs = pixel_attrs(pixel_dtype)
        self.pixel_dtype = pixel_dtype
        self.channels = [str(c) for c in channels]
        self.stamp_shape = (int(stamp_shape[0]), int(stamp_shape[1]))
        self.n = 0
        self._source_digests: set[str] = set()
        self._catalog_dtypes: dict[str, np.dtype] = {}
        self._label_shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self._tmp = start_partial(self.path)
        self._h5: h5py.File | None = None
        #: Every dataset of the file, kept open until the file closes (module docstring).
        self._datasets: dict[str, h5py.Dataset] = {}
        try:
            self._create(pixel_scale_arcsec, config_hash, chunk_rows, compression, level, attrs)
        except _WRITE_ERRORS as err:
            self._fail(err)

    def _create(
        self,
        pixel_scale_arcsec: float | None,
        config_hash: str,
        chunk_rows: int,
        compression: str,
        level: int,
        attrs: Mapping[str, Any] | None,
    ) -> None:
        """Create the partial file with its datasets and root attributes."""
        self._h5 = h5py.File(self._tmp, "w")
        c, (h, w) = len(self.channels), self.stamp_shape
        itemsize = np.dtype(self.pixel_dtype).itemsize
        rows_fitting = max(1, MAX_CHUNK_BYTES // (itemsize * c * h * w))
        chunk = (max(1, min(chunk_rows, rows_fitting)), c, h, w)
        comp = _compression_kwargs(compression, level)
        for key, dtype in (("stamps", self.pixel_dtype), ("mask", "u1")):
            self._datasets[key] = self._h5.create_dataset(
                key, (0, c, h, w), dtype, maxshape=(None, c, h, w), chunks=chunk, **comp
            )
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
        for key, value in {**(attrs or {}), **self.pixel_attrs}.items():
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
            stamps: ``(K, C, H, W)`` float-like pixels (uint8 values as stored, for a uint8 store);
                masked pixels should already be 0.
            mask: ``(K, C, H, W)`` bool/uint8, or None for nothing masked.
            catalog: column name -> K values; must hold ``object_id`` and ``source`` and, after the first
                append, exactly the same columns as before.
            labels: label name -> array with first axis K; same names on every append.
        """
        stamps = encode_pixels(np.asarray(stamps), self.pixel_dtype)
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
        try:
            self._write(stamps, mask_arr, columns, label_arrays)
        except _WRITE_ERRORS as err:
            self._fail(err)

    def _write(
        self,
        stamps: np.ndarray,
        mask: np.ndarray,
        columns: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray],
    ) -> None:
        """Write K checked rows (a write that fails raises here or in :meth:`close`'s flush)."""
        start, stop = self.n, self.n + stamps.shape[0]
        for key, data in (("stamps", stamps), ("mask", mask)):
            self._datasets[key].resize(stop, axis=0)
            self._datasets[key][start:stop] = data
        for name, arr in columns.items():
            self._write_rows("catalog", name, arr, start, stop)
            self._catalog_dtypes.setdefault(name, arr.dtype)
        for name, arr in labels.items():
            self._write_rows("labels", name, arr, start, stop)
            self._label_shapes.setdefault(name, (arr.shape[1:], arr.dtype))
        self.n = stop

    def _write_rows(self, group: str, name: str, arr: np.ndarray, start: int, stop: int) -> None:
        key = f"{group}/{name}"
        if key not in self._datasets:
            dtype = _STR if arr.dtype == object else arr.dtype
            self._datasets[key] = self._h5[group].create_dataset(
                name,
                (0, *arr.shape[1:]),
                dtype,
                maxshape=(None, *arr.shape[1:]),
                chunks=(max(self._chunk_rows, 1024), *arr.shape[1:]),
                **{k: v for k, v in self._comp.items() if arr.dtype != object},
            )
        dset = self._datasets[key]
        if dset.shape[1:] != arr.shape[1:]:
            raise ValueError(f"/{key} rows are {dset.shape[1:]}, got {arr.shape[1:]}")
        dset.resize(stop, axis=0)
        dset[start:stop] = arr

    def close(self) -> Path:
        """Finish the store: write the final attributes, flush, fsync and rename to the final name.

        Raises:
            OutputError: the store could not be written (the partial file is deleted).
        """
        if self._h5 is None:
            return self.path
        try:
            self._finish()
        except _WRITE_ERRORS as err:
            self._fail(err)
        return publish(self._tmp, self.path)

    def _finish(self) -> None:
        """Write the last attributes, flush, fsync and close the partial file."""
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
        os.fsync(self._h5.id.get_vfd_handle())
        self._datasets.clear()
        h5, self._h5 = self._h5, None  # closed once, whatever happens
        h5.close()

    def _fail(self, err: BaseException) -> None:
        """Discard the partial file and raise the :class:`OutputError` of the store for ``err``."""
        self.abort()
        raise output_error(err, self.path) from err

    def abort(self) -> None:
        """Drop the partial store; the final name is left untouched. The file's descriptor is pointed at
        ``/dev/null`` before anything of it is closed, so that closing succeeds even when the disk is full
        (module docstring)."""
        h5, self._h5 = self._h5, None
        try:
            if h5 is not None and h5.id.valid:
                _to_devnull(h5)
            self._datasets.clear()
            if h5 is not None and h5.id.valid:
                h5.close()
        except _WRITE_ERRORS:  # the file is deleted anyway; never a second close
            pass
        self._tmp.unlink(missing_ok=True)


def _to_devnull(h5: h5py.File) -> None:
    """Send every later write of ``h5`` to ``/dev/null`` (its content is being thrown away)."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, h5.id.get_vfd_handle())
    finally:
        os.close(null)
