"""Scoring a store in row ranges and joining the parts gives the catalog of one pass (values, units,
descriptions, meta, string widths), in Parquet and on request in FITS/CSV."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from pipeline.scoring import join_parts, row_ranges, score_store
from tests.pipeline.scoring.scoring_helpers import rb_card, rb_model, write_rb_store


def test_row_ranges_cover_the_rows_once():
    assert row_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert row_ranges(0, 4) == [(0, 0)]
    with pytest.raises(ValueError, match="chunk_rows"):
        row_ranges(3, 0)


def test_parts_joined_equal_one_pass(tmp_path):
    store = write_rb_store(tmp_path / "rb.h5", n=70)
    model, card = rb_model(), rb_card()
    whole = score_store(model, card, store, tmp_path / "whole.parquet", batch_size=16)
    parts = []
    for start, stop in row_ranges(70, 25):  # ranges that do not fall on batch edges
        part = tmp_path / f"part-{start}.parquet"
        result = score_store(model, card, store, part, start=start, stop=stop, batch_size=16)
        assert result.n_scored == stop - start
        parts.append(part)
    joined = join_parts(parts, tmp_path / "joined.parquet")
    assert joined["n_rows"] == whole.n_scored == 70
    assert joined["n_flagged_masked"] == whole.n_flagged_masked == 2
    a, b = Table.read(tmp_path / "whole.parquet"), Table.read(tmp_path / "joined.parquet")
    assert a.colnames == b.colnames and a.meta == b.meta
    for name in a.colnames:
        assert a[name].unit == b[name].unit and a[name].description == b[name].description
        np.testing.assert_allclose(np.asarray(a[name], float), np.asarray(b[name], float), atol=1e-6) if a[
            name
        ].dtype.kind == "f" else np.testing.assert_array_equal(a[name], b[name])
    # the longest objectId (last row) keeps its full width after the join
    assert b["objectId"][-1] == a["objectId"][-1] and len(b["objectId"][-1]) > len(b["objectId"][0])
    fits = join_parts(parts, tmp_path / "joined.fits")
    assert len(Table.read(fits["catalog"])) == 70 and not list(tmp_path.glob(".joined*"))


def test_scoring_a_range_outside_the_store_is_refused(tmp_path):
    store = write_rb_store(tmp_path / "rb.h5", n=10)
    with pytest.raises(ValueError, match=r"rows \[5, 20\)"):
        score_store(rb_model(), rb_card(), store, tmp_path / "x.parquet", start=5, stop=20)
    assert not (tmp_path / "x.parquet").exists()
