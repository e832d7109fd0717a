"""Scoring stamp stores into scored catalogs: equality with direct model calls, derived morphology classes,
refusal of mismatched cards, masked stamps, and catalogs that read back with astropy, pandas and pyarrow."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from astropy.table import Table
from torch import nn

from data_catalogs.galaxy_zoo import ANSWER_LABELS, QUESTION_SLICES, cumulative_from_conditional
from pipeline.io import ParquetTableWriter
from pipeline.prep import BatchPrep, deep_hits_normalize, fill_masked, minmax_scale, prepare_batch
from pipeline.scoring import (
    ModelInputMismatch,
    Scorer,
    StampBatch,
    derived_labels,
    derived_probabilities,
    score_batches,
    score_store,
    scoring_prep,
)
from pipeline.store import open_store
from tests.pipeline.scoring.scoring_helpers import (
    gz_card,
    gz_model,
    rb_card,
    rb_model,
    write_gz_store,
    write_rb_store,
)


@pytest.fixture
def rb_store(tmp_path):
    return write_rb_store(tmp_path / "rb.h5")


def _read(path) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. astropy guessing string widths
        return Table.read(path)


def test_catalog_scores_equal_direct_model_call(rb_store, tmp_path):
    model, card = rb_model(), rb_card(threshold=0.45)
    result = score_store(model, card, rb_store, tmp_path / "scored.parquet", batch_size=16)
    with open_store(rb_store) as store:
        stamps, mask = store.stamps(), store.mask()
    with torch.no_grad():
        expected = model(deep_hits_normalize(fill_masked(stamps, mask))).numpy()
    table = _read(tmp_path / "scored.parquet")
    assert result.n_scored == len(table) == 70
    np.testing.assert_array_equal(table["store_row"], np.arange(70))
    np.testing.assert_allclose(table["rb"], expected[:, 1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(table["p_bogus"], expected[:, 0], rtol=0, atol=1e-6)
    assert list(table["label"]) == list(np.where(expected[:, 1] >= 0.45, "real", "bogus"))
    assert set(table["rbversion"]) == {"0.0.1+test"}


def test_mask_channels_and_median_fill_match_direct_call(rb_store, tmp_path):
    config = {"preprocess": "minmax", "fill": "median", "keep_mask": "any"}
    model, card = rb_model(in_channels=4), rb_card(data_config=config)
    score_store(model, card, rb_store, tmp_path / "scored.parquet", batch_size=32)
    with open_store(rb_store) as store:
        stamps, mask = store.stamps(), store.mask()
    full = fill_masked(stamps, mask, fill="median", keep_mask="any")
    with torch.no_grad():
        expected = model(torch.cat([minmax_scale(full[:, :3]), full[:, 3:]], dim=1)).numpy()
    np.testing.assert_allclose(_read(tmp_path / "scored.parquet")["rb"], expected[:, 1], atol=1e-6)
    assert prepare_batch(stamps, mask, config).shape == (70, 4, 21, 21)


def test_masked_stamps_are_scored_and_flagged(rb_store, tmp_path):
    score_store(rb_model(), rb_card(), rb_store, tmp_path / "scored.parquet", batch_size=16)
    table = _read(tmp_path / "scored.parquet")
    assert len(table) == 70
    assert np.flatnonzero(table["flag_masked"]).tolist() == [3, 40]
    assert table["n_masked"][3] == 3 * 3 * 21 and table["n_masked"][0] == 0
    assert np.all(np.isfinite(table["rb"]))


def test_mismatched_card_is_refused_naming_both_values(rb_store, tmp_path):
    # other names (the same names in another order are reordered: test_frames_and_channels.py)
    card = rb_card(channels=["science", "template", "snr"], stamp_shape=[63, 63])
    with pytest.raises(ModelInputMismatch) as err:
        score_store(rb_model(), card, rb_store, tmp_path / "scored.parquet")
    message = str(err.value)
    assert "['science', 'template', 'snr']" in message
    assert "['template', 'science', 'difference']" in message
    assert "63x63" in message and "21x21" in message
    assert not (tmp_path / "scored.parquet").exists()


def test_catalog_reads_back_with_astropy_pandas_and_pyarrow(rb_store, tmp_path):
    out = tmp_path / "scored.parquet"
    score_store(rb_model(), rb_card(), rb_store, out, batch_size=16)
    table = _read(out)
    assert table["ra"].unit == "deg" and table["dec"].unit == "deg"
    assert "1 - P(bogus)" in table["rb"].description
    assert table.meta["model_name"] == "tiny-rb" and table.meta["model_version"] == "0.0.1+test"
    assert table.meta["model_sha256"] == "0" * 64 and table.meta["rbversion"] == "0.0.1+test"
    assert table.meta["input_sha256"] and table.meta["code_version"].startswith("stampflow ")
    with open_store(rb_store) as store:
        catalog = store.catalog()
    # Survey ids verbatim: 19-digit candids (beyond float precision) and strings whose longest is last.
    assert table["candid"].dtype == np.int64
    np.testing.assert_array_equal(table["candid"], catalog["candid"].to_numpy())
    assert list(table["objectId"]) == list(catalog["objectId"])
    assert len(table["objectId"][-1]) > len(table["objectId"][0])
    frame = pd.read_parquet(out)
    assert list(frame["objectId"]) == list(catalog["objectId"])
    np.testing.assert_array_equal(frame["rb"].to_numpy(), np.asarray(table["rb"]))
    arrow = pq.read_table(out)
    assert arrow.num_rows == 70 and str(arrow.schema.field("rb").type) == "float"
    assert list(arrow.column_names[:5]) == ["store_row", "object_id", "source", "ra", "dec"]


def test_fits_and_csv_on_request(rb_store, tmp_path):
    score_store(rb_model(), rb_card(), rb_store, tmp_path / "scored.parquet", batch_size=16)
    score_store(rb_model(), rb_card(), rb_store, tmp_path / "scored.fits", batch_size=16)
    score_store(rb_model(), rb_card(), rb_store, tmp_path / "scored.txt", fmt="csv", batch_size=16)
    reference = _read(tmp_path / "scored.parquet")
    fits_table = Table.read(tmp_path / "scored.fits")
    assert fits_table["ra"].unit == "deg" and fits_table.meta["model_name"] == "tiny-rb"
    np.testing.assert_array_equal(fits_table["rb"], reference["rb"])
    np.testing.assert_array_equal(fits_table["candid"], reference["candid"])
    assert list(fits_table["objectId"]) == list(reference["objectId"])
    csv = pd.read_csv(tmp_path / "scored.txt")
    np.testing.assert_allclose(csv["rb"], reference["rb"], rtol=1e-6)
    assert csv["candid"].tolist() == list(reference["candid"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "rb.h5",
        "scored.fits",
        "scored.parquet",
        "scored.txt",
    ]


def test_morphology_scores_answers_and_derived_classes(tmp_path):
    store = write_gz_store(tmp_path / "gz.h5")
    model, card = gz_model(), gz_card()
    score_store(model, card, store, tmp_path / "gz.parquet", batch_size=8)
    with open_store(store) as opened:
        stamps = opened.stamps()
    with torch.no_grad():
        expected = model(minmax_scale(stamps)).numpy()
    table = _read(tmp_path / "gz.parquet")
    scores = np.stack([table[name] for name in ANSWER_LABELS], axis=1)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert "Class3.1" in table["Q3_bar"].description
    derived = derived_labels(expected)
    assert list(table["label"]) == list(derived["morph_class"])
    for name in ("edge_on", "bar", "spiral"):
        np.testing.assert_array_equal(table[name], derived[name])
    np.testing.assert_array_equal(table["p_bar"], table["Q3_bar"])
    np.testing.assert_array_equal(table["p_edge_on"], table["Q2_edge_on_yes"])
    assert table.meta["task"] == "morphology" and "morph_class" in table.meta["derived_classes"]
    np.testing.assert_array_equal(table["GalaxyID"], np.arange(30) + 100000)


def _conditional(q1, q2=(0.5, 0.5), q3=(0.5, 0.5), q4=(0.5, 0.5)) -> np.ndarray:
    cond = np.full(37, 0.0)
    for sl in QUESTION_SLICES.values():
        cond[sl] = 1.0 / (sl.stop - sl.start)
    for name, shares in (("Q1", q1), ("Q2", q2), ("Q3", q3), ("Q4", q4)):
        cond[QUESTION_SLICES[name]] = shares
    return cond


def test_derived_class_definitions_follow_the_tree():
    cond = np.stack(
        [
            _conditional((0.8, 0.15, 0.05)),  # smooth
            _conditional((0.1, 0.85, 0.05), q2=(0.7, 0.3)),  # featured, edge-on: 0.85 * 0.7 = 0.595
            _conditional((0.05, 0.9, 0.05), q2=(0.1, 0.9), q3=(0.7, 0.3), q4=(0.5, 0.5)),  # bar 0.567
            _conditional((0.05, 0.9, 0.05), q2=(0.1, 0.9), q3=(0.2, 0.8), q4=(0.9, 0.1)),  # spiral 0.729
            _conditional((0.2, 0.2, 0.6)),  # star or artifact
        ]
    )
    cum = cumulative_from_conditional(cond)
    labels = derived_labels(cum)
    assert list(labels["morph_class"]) == ["smooth", "featured", "featured", "featured", "star_artifact"]
    assert labels["edge_on"].tolist() == [False, True, False, False, False]
    assert labels["bar"].tolist() == [False, False, True, False, False]
    assert labels["spiral"].tolist() == [False, False, False, True, False]
    probs = derived_probabilities(cum)
    np.testing.assert_allclose(probs["p_edge_on"][1], 0.85 * 0.7)
    np.testing.assert_allclose(probs["p_bar"][2], 0.9 * 0.9 * 0.7)
    np.testing.assert_allclose(probs["p_spiral"][3], 0.9 * 0.9 * 0.9)


def test_scoring_is_lazy_and_streams_row_groups(rb_store, tmp_path):
    scorer = Scorer(rb_model(), rb_card())
    rng = np.random.default_rng(0)

    def batches():
        for _ in range(2):
            yield StampBatch(rng.normal(size=(8, 3, 21, 21)).astype(np.float32))
        raise RuntimeError("the source broke after two batches")

    stream = score_batches(scorer, batches())
    first = next(stream)  # produced before the source is exhausted
    assert first["store_row"].tolist() == list(range(8))
    assert next(stream)["store_row"][0] == 8
    with pytest.raises(RuntimeError, match="broke"):
        next(stream)
    out = tmp_path / "chunks.parquet"
    with ParquetTableWriter(out, row_group_rows=10) as writer:
        for start in range(0, 40, 8):
            writer.write(
                {"i": np.arange(start, start + 8), "s": np.array(["x" * (start + 1)] * 8, dtype=object)}
            )
    parquet = pq.ParquetFile(out)
    assert parquet.num_row_groups >= 3 and parquet.metadata.num_rows == 40
    assert _read(out)["s"][-1] == "x" * 33


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "broken.parquet"
    with pytest.raises(RuntimeError), ParquetTableWriter(out) as writer:
        writer.write({"a": np.arange(3)})
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_empty_store_gives_empty_catalog_with_columns(tmp_path):
    store = write_rb_store(tmp_path / "empty.h5", n=0, masked_rows=())
    result = score_store(rb_model(), rb_card(), store, tmp_path / "empty.parquet")
    table = _read(tmp_path / "empty.parquet")
    assert result.n_scored == 0 and len(table) == 0
    assert {"store_row", "object_id", "source", "rb", "label", "rbversion", "flag_masked"} <= set(
        table.colnames
    )


def test_outputs_that_are_not_probabilities_are_refused(rb_store, tmp_path):
    torch.manual_seed(0)
    logits = nn.Sequential(nn.Flatten(), nn.Linear(4 * 21 * 21, 2))
    with torch.no_grad():
        logits[1].weight.mul_(100)
    with pytest.raises(ValueError, match="not probabilities"):
        score_store(logits, rb_card(), rb_store, tmp_path / "scored.parquet")


def test_scoring_prep_prefers_the_card_over_the_model_config():
    class WithConfig(nn.Sequential):
        def data_config(self):
            return {"preprocess": minmax_scale, "fill": "zero", "batch_size": 4, "augment": {"flip": True}}

    prep = scoring_prep(WithConfig(), {"data_config": {"fill": "median"}})
    assert prep.preprocess is minmax_scale and prep.fill == "median" and prep.keep_mask == "none"
    assert BatchPrep.from_config({"preprocess": None}).preprocess is None


def test_more_classes_score_one_minus_p_bogus_and_label_the_best_other_class(rb_store, tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4 * 21 * 21, 3), nn.Softmax(dim=1)).eval()
    card = rb_card(output_names=["SN", "bogus", "AGN"], bogus_class="bogus", threshold=0.77)
    score_store(model, card, rb_store, tmp_path / "scored.parquet")
    table = _read(tmp_path / "scored.parquet")
    p = np.stack([table["p_SN"], table["p_bogus"], table["p_AGN"]], axis=1)
    np.testing.assert_allclose(table["rb"], 1 - p[:, 1], atol=1e-6)
    best = np.where(p[:, 0] >= p[:, 2], "SN", "AGN")
    assert list(table["label"]) == list(np.where(table["rb"] >= 0.77, best, "bogus"))
    assert set(table["label"]) == {"SN", "AGN", "bogus"} and table.meta["bogus_class"] == "bogus"
