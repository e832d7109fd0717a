"""8-bit stores: real Kaggle JPEGs stored as uint8 read back bit for bit as ``read_image`` gives them, through
every reader (StampStore, the training dataset, a merge); float32 stores without the attributes unchanged."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from models.data.dataset import StoreBatchDataset, StoreInfo
from pipeline.io import read_image
from pipeline.store import (
    StampStoreWriter,
    StoreValidationError,
    decode_pixels,
    encode_pixels,
    merge_stores,
    open_store,
)

IMAGES = Path(__file__).resolve().parents[2] / "data" / "galaxy_zoo" / "kaggle_real_images"


def real_pixels() -> tuple[list[str], np.ndarray]:
    """The six real Kaggle JPEGs as ``read_image`` gives them: ids and ``(6, 3, 424, 424)`` float32."""
    paths = sorted(IMAGES.glob("*.jpg"))
    return [p.stem for p in paths], np.stack([read_image(p).pixels for p in paths])


def write(path: Path, ids: list[str], pixels: np.ndarray, pixel_dtype: str) -> Path:
    with StampStoreWriter(path, ["i", "r", "g"], pixels.shape[-2:], pixel_dtype=pixel_dtype) as writer:
        writer.append(pixels, None, {"object_id": ids, "source": ids})
    return path


def test_every_8bit_value_survives_encoding_exactly():
    values = np.arange(256, dtype=np.float32) / 255.0  # what read_image computes for each 8-bit value
    stored = encode_pixels(values, "uint8")
    assert stored.dtype == np.uint8 and stored.tolist() == list(range(256))
    assert np.array_equal(decode_pixels(stored, 255.0), values)
    assert decode_pixels(stored, 255.0).dtype == np.float32


def test_uint8_store_of_real_jpegs_reads_back_bit_for_bit(tmp_path):
    ids, pixels = real_pixels()
    u8 = write(tmp_path / "u8.h5", ids, pixels, "uint8")
    f32 = write(tmp_path / "f32.h5", ids, pixels, "float32")
    with open_store(u8) as store, h5py.File(u8) as h5:
        assert h5["stamps"].dtype == np.uint8
        assert store.attrs["pixel_dtype"] == "uint8" and store.attrs["pixel_divisor"] == 255.0
        back = store.stamps()
        assert back.dtype == np.float32 and np.array_equal(back, pixels)
        assert np.array_equal(store.stamps(np.array([1, 4])), pixels[[1, 4]])
        assert all(np.array_equal(chunk, pixels[sel]) for sel, chunk, _ in store.iter_chunks(4))
    with open_store(f32) as store:
        assert store.attrs["pixel_dtype"] == "float32" and np.array_equal(store.stamps(), pixels)
    assert u8.stat().st_size < f32.stat().st_size / 2


def test_training_dataset_decodes_uint8_stores(tmp_path):
    ids, pixels = real_pixels()
    path = write(tmp_path / "u8.h5", ids, pixels, "uint8")
    with open_store(path) as store:
        info = StoreInfo(path, store.n, store.channels, store.stamp_shape, 1, 1, divisor=store.divisor)
    dataset = StoreBatchDataset([info], np.zeros(len(ids), np.float32))
    stamps, _ = dataset.read(np.array([0, 2, 5]))
    dataset.close()
    assert stamps.dtype == np.float32 and np.array_equal(stamps, pixels[[0, 2, 5]])


def test_float32_store_without_pixel_attributes_reads_as_before(tmp_path):
    ids, pixels = real_pixels()
    path = write(tmp_path / "old.h5", ids[:2], pixels[:2], "float32")
    with h5py.File(path, "a") as h5:  # a store written before the attributes existed
        del h5.attrs["pixel_dtype"], h5.attrs["pixel_divisor"]
    with open_store(path) as store:
        assert store.divisor is None and np.array_equal(store.stamps(), pixels[:2])
    with h5py.File(path, "a") as h5:
        h5.attrs["pixel_dtype"] = "uint8"
    with pytest.raises(StoreValidationError, match=r"/stamps must be uint8 \(attribute pixel_dtype\)"):
        open_store(path)


def test_merging_uint8_parts_keeps_uint8_and_the_values(tmp_path):
    ids, pixels = real_pixels()
    parts = [write(tmp_path / "a.h5", ids[:3], pixels[:3], "uint8")]
    parts.append(write(tmp_path / "b.h5", ids[3:], pixels[3:], "uint8"))
    rejects = []
    for name in ("ra.csv", "rb.csv"):
        (tmp_path / name).write_text("source,reason,error\n")
        rejects.append(tmp_path / name)
    report = merge_stores(parts, rejects, tmp_path / "merged" / "stamps.h5")
    assert report.n_ingested == 6
    with open_store(report.store) as store:
        assert store.h5["stamps"].dtype == np.uint8 and store.attrs["pixel_dtype"] == "uint8"
        assert np.array_equal(store.stamps(), pixels)
