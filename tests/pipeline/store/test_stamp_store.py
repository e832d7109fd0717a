"""pipeline.store.stamp_store: round trip, chunked appends, atomic completion, validation messages."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pipeline.io import partial_path
from pipeline.store import SCHEMA_VERSION, StampStoreWriter, StoreValidationError, open_store


def _rows(k: int, start: int = 0) -> dict:
    return {
        "object_id": [f"obj{start + i}" for i in range(k)],
        "source": [f"file{start + i}.fits" for i in range(k)],
        "ra": np.linspace(10, 11, k) + start,
    }


def test_round_trip_in_chunks(tmp_path):
    rng = np.random.default_rng(1)
    stamps = rng.normal(size=(25, 3, 8, 8)).astype(np.float32)
    mask = rng.random((25, 3, 8, 8)) < 0.1
    answers = rng.random((25, 37)).astype(np.float32)
    path = tmp_path / "stamps.h5"
    with StampStoreWriter(
        path, ["g", "r", "i"], (8, 8), pixel_scale_arcsec=0.396, config_hash="abc", chunk_rows=4
    ) as w:
        for start in range(0, 25, 10):
            stop = min(start + 10, 25)
            w.append(
                stamps[start:stop],
                mask[start:stop],
                _rows(stop - start, start),
                {"gz_answers": answers[start:stop]},
            )
        w.add_source_digest("00" * 32)
    with open_store(path) as store:
        assert store.n == 25 and store.channels == ["g", "r", "i"] and store.stamp_shape == (8, 8)
        np.testing.assert_array_equal(store.stamps(), stamps)
        np.testing.assert_array_equal(store.mask(), mask)
        np.testing.assert_array_equal(store.labels("gz_answers"), answers)
        cat = store.catalog()
        assert cat["object_id"].tolist() == [f"obj{i}" for i in range(25)]
        assert cat["ra"].dtype == np.float64
        attrs = store.attrs
        assert attrs["schema_version"] == SCHEMA_VERSION and attrs["complete"] is True
        assert attrs["pixel_scale_arcsec"] == pytest.approx(0.396) and attrs["config_hash"] == "abc"
        assert attrs["created_by"].startswith("stampflow ") and len(attrs["source_sha256"]) == 64
        chunks = list(store.iter_chunks(rows=10))
        assert [c[0] for c in chunks] == [slice(0, 10), slice(10, 20), slice(20, 25)]
        assert store.h5["stamps"].chunks[0] == 4 and store.h5["stamps"].compression == "lzf"


def test_exception_leaves_no_store_and_no_partial(tmp_path):
    path = tmp_path / "stamps.h5"
    with pytest.raises(RuntimeError), StampStoreWriter(path, ["a"], (4, 4)) as w:
        w.append(np.zeros((2, 1, 4, 4)), None, _rows(2))
        assert partial_path(path).exists() and not path.exists()
        raise RuntimeError("killed")
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_append_rejects_inconsistent_rows(tmp_path):
    with StampStoreWriter(tmp_path / "s.h5", ["a"], (4, 4)) as w:
        w.append(np.zeros((2, 1, 4, 4)), None, _rows(2))
        with pytest.raises(ValueError, match="catalog columns"):
            w.append(np.zeros((1, 1, 4, 4)), None, {"object_id": ["x"], "source": ["y"]})
        with pytest.raises(ValueError, match=r"stamps must be \(K, 1, 4, 4\)"):
            w.append(np.zeros((1, 2, 4, 4)), None, _rows(1))
        with pytest.raises(ValueError, match="required columns"):
            w.append(np.zeros((1, 1, 4, 4)), None, {"source": ["y"]})


def test_gzip_compression_and_empty_store(tmp_path):
    with StampStoreWriter(tmp_path / "g.h5", ["a"], (4, 4), compression="gzip", level=3) as w:
        w.append(np.ones((3, 1, 4, 4)), None, _rows(3))
    with open_store(tmp_path / "g.h5") as store:
        assert store.h5["stamps"].compression == "gzip" and store.stamps().sum() == 48
    with StampStoreWriter(tmp_path / "empty.h5", ["a"], (4, 4)):
        pass
    with open_store(tmp_path / "empty.h5") as store:
        assert store.n == 0 and store.catalog().empty


def test_open_says_what_is_wrong(tmp_path):
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(StoreValidationError, match="not a readable HDF5 file"):
        open_store(tmp_path / "text.h5")
    with pytest.raises(FileNotFoundError):
        open_store(tmp_path / "absent.h5")
    with h5py.File(tmp_path / "bad.h5", "w") as h5:
        h5.create_dataset("stamps", data=np.zeros((3, 2, 4, 4), np.float64))
        h5.attrs["schema_version"] = 99
        h5.attrs["channels"] = ["a"]
        h5.attrs["complete"] = False
    with pytest.raises(StoreValidationError) as info:
        open_store(tmp_path / "bad.h5")
    problems = " | ".join(info.value.problems)
    for expected in (
        "schema_version is 99",
        "never completed",
        "must be float32",
        "channels has 1 names but /stamps has 2",
        "group /catalog is missing",
        "'stamp_shape' is missing",
    ):
        assert expected in problems


def test_label_rows_must_match(tmp_path):
    with StampStoreWriter(tmp_path / "l.h5", ["a"], (2, 2)) as w:
        w.append(np.zeros((2, 1, 2, 2)), None, _rows(2), {"real": np.array([0, 1], np.int8)})
    with h5py.File(tmp_path / "l.h5", "a") as h5:
        h5["labels/real"].resize(1, axis=0)
    with pytest.raises(StoreValidationError, match="/labels/real has 1 rows, expected 2"):
        open_store(tmp_path / "l.h5")
