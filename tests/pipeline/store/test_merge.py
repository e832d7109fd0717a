"""Merging the part stores of a chunked ingest: the same store as one pass over all inputs (rows, masks,
catalog, labels, source_sha256, rejects in order), and parts that do not fit rejected row by row."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.ingest import FitsReader, FitsSource, ingest_source
from pipeline.store import StampStoreWriter, merge_stores, open_store, sha256_file
from tests.conftest import ZTF_TRIPLETS


def triplet_folder(folder: Path, n: int, broken: str) -> Path:
    """``folder`` (created) with the first ``n`` shipped ZTF triplets and a broken FITS file ``broken``."""
    folder.mkdir()
    for path in sorted(ZTF_TRIPLETS.glob("*.fits.gz"))[:n]:
        shutil.copy(path, folder)
    (folder / broken).write_bytes(b"SIMPLE  =   garbage")
    return folder


def test_merged_parts_equal_one_pass(tmp_path):
    folder = triplet_folder(tmp_path / "in", 9, "zz_broken.fits")
    source = FitsSource(
        inputs=[folder],
        extensions=["SCIENCE", "TEMPLATE", "DIFFERENCE"],
        stamp_shape=(63, 63),
        size_policy="pad",
    )
    one = ingest_source(source, tmp_path / "one" / "stamps.h5")
    files = FitsReader.input_files(source)
    parts, rejects = [], []
    for i in range(0, len(files), 4):
        part, part_rejects = tmp_path / "parts" / f"p{i}.h5", tmp_path / "parts" / f"r{i}.csv"
        report = ingest_source(source, part, files=files[i : i + 4], rejects_path=part_rejects)
        parts.append(report.store)
        rejects.append(report.rejects)
    digests = {str(f): sha256_file(f) for f in files}
    merged = merge_stores(parts, rejects, tmp_path / "merged" / "stamps.h5", digests=digests)
    assert (merged.n_inputs, merged.n_ingested, merged.n_rejected) == (one.n_inputs, one.n_ingested, 1)
    with open_store(one.store) as a, open_store(merged.store) as b:
        assert np.array_equal(a.stamps(), b.stamps()) and np.array_equal(a.mask(), b.mask())
        assert a.catalog().equals(b.catalog()) and a.channels == b.channels
        assert a.attrs["source_sha256"] == b.attrs["source_sha256"]
        assert a.attrs["ingest"] == b.attrs["ingest"] == "fits"
    pd.testing.assert_frame_equal(pd.read_csv(one.rejects), pd.read_csv(merged.rejects))


def _store(path, channels, shape, n, label=True):
    rng = np.random.default_rng(len(channels) + n)
    catalog = {
        "object_id": [f"{path.stem}-{i}" for i in range(n)],
        "source": [f"{path.stem}/{i}" for i in range(n)],
    }
    labels = {"real": np.arange(n, dtype=np.int8) % 2} if label else None
    with StampStoreWriter(path, channels, shape) as writer:
        writer.append(rng.normal(size=(n, len(channels), *shape)).astype(np.float32), None, catalog, labels)
    rejects = path.with_suffix(".csv")
    rejects.write_text("source,reason,error\n")
    return path, rejects


def test_parts_that_do_not_fit_are_rejected_row_by_row(tmp_path):
    a = _store(tmp_path / "a.h5", ["x", "y"], (8, 8), 3)
    b = _store(tmp_path / "b.h5", ["x", "z"], (8, 8), 2)  # other channel names
    c = _store(tmp_path / "c.h5", ["x", "y"], (6, 8), 2)  # smaller: padded and masked
    none_rejects = tmp_path / "none.csv"
    none_rejects.write_text("source,reason,error\nlost.fits,not_fits,lost.fits: not FITS\n")
    report = merge_stores(
        [a[0], b[0], None, c[0]], [a[1], b[1], none_rejects, c[1]], tmp_path / "m.h5", size_policy="pad"
    )
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (8, 5, 3)
    assert report.reject_reasons == {"wrong_channels": 2, "not_fits": 1}
    with open_store(report.store) as merged:
        assert merged.n == 5 and merged.labels("real").tolist() == [0, 1, 0, 0, 1]
        assert merged.mask(slice(3, 5))[:, :, 0, :].all() and not merged.mask(slice(0, 3)).any()
    assert list(pd.read_csv(report.rejects)["source"]) == ["b/0", "b/1", "lost.fits"]
