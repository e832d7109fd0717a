"""Readers of the Kaggle, GZ2 and GZ DECaLS label tables, and their per-row rejects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, cumulative_from_votes
from data_catalogs.galaxy_zoo_formats import (
    read_catalog,
    read_decals,
    read_gz2,
    read_kaggle,
)
from data_catalogs.galaxy_zoo_schemas import DECALS_SCHEMA, GZ2_ANSWER_STEMS
from data_catalogs.tables import CatalogError

DATA = Path(__file__).resolve().parents[1] / "data" / "galaxy_zoo"
KAGGLE = DATA / "kaggle_training_solutions_sample.csv"
GZ2 = DATA / "gz2_synthetic.csv"
DECALS = DATA / "gz_decals_synthetic.csv"
KAGGLE_IDS = ["100008", "100143", "100134", "100123", "100445", "135453"]


def kaggle_df() -> pd.DataFrame:
    return pd.read_csv(KAGGLE)


def reasons(catalog) -> dict[str, str]:
    return {row["source"]: row["reason"] for row in catalog.rejects}


# --- Kaggle -------------------------------------------------------------------------------------------


def test_real_kaggle_rows_read_and_validate():
    cat = read_kaggle(KAGGLE)
    assert cat.rejects == []
    assert cat.n_input == 6 and len(cat) == 6
    assert cat.ids == KAGGLE_IDS
    assert cat.id_column == "GalaxyID"
    assert cat.table["GalaxyID"].tolist() == [int(i) for i in KAGGLE_IDS]
    assert cat.answer_columns == ANSWER_COLUMNS and cat.votes() is None
    fractions = cat.fractions()
    assert fractions.shape == (6, 37) and fractions.dtype == np.float32
    np.testing.assert_allclose(fractions, kaggle_df()[list(ANSWER_COLUMNS)].to_numpy(), atol=1e-7)


def test_id_column_matches_case_insensitively(tmp_path):
    path = tmp_path / "solutions.csv"
    kaggle_df().rename(columns={"GalaxyID": "GalaxyId"}).to_csv(path, index=False)
    cat = read_kaggle(path)
    assert cat.id_column == "GalaxyId" and cat.ids == KAGGLE_IDS and not cat.rejects


def _break(df: pd.DataFrame, how: str) -> pd.DataFrame:
    df = df.copy()
    if how == "fraction_out_of_range":
        df.loc[1, "Class6.2"] = 1.25
    elif how == "tree_violation":
        df.loc[1, "Class9.1"] += 0.05  # Q9 no longer sums to Class2.1
    elif how == "nan_label":
        df.loc[1, "Class11.6"] = np.nan
    elif how == "duplicate_id":
        df.loc[3, "GalaxyID"] = df.loc[1, "GalaxyID"]
    return df


@pytest.mark.parametrize("how", ["fraction_out_of_range", "tree_violation", "nan_label", "duplicate_id"])
def test_each_broken_constraint_rejects_the_row(tmp_path, how):
    path = tmp_path / "broken.csv"
    _break(kaggle_df(), how).to_csv(path, index=False)
    cat = read_kaggle(path)
    bad = {"100143": how}
    if how == "duplicate_id":
        assert [r["reason"] for r in cat.rejects] == ["duplicate_id", "duplicate_id"]
        assert "GalaxyID 100143 occurs 2 times" in cat.rejects[0]["error"]
        assert len(cat) == 4
    else:
        assert reasons(cat) == bad
        assert len(cat) == 5 and "100143" not in cat.ids
    assert "broken.csv row 2" in cat.rejects[0]["error"]
    assert len(cat) + len(cat.rejects) == cat.n_input == 6


def test_tree_violation_message_names_question_and_parent(tmp_path):
    path = tmp_path / "broken.csv"
    _break(kaggle_df(), "tree_violation").to_csv(path, index=False)
    (row,) = read_kaggle(path).rejects
    assert "Q9 answers sum to" in row["error"] and "its parent Class2.1" in row["error"]


def test_missing_id_is_rejected(tmp_path):
    path = tmp_path / "noid.csv"
    df = kaggle_df().astype({"GalaxyID": object})
    df.loc[0, "GalaxyID"] = None
    df.to_csv(path, index=False)
    cat = read_kaggle(path)
    assert [r["reason"] for r in cat.rejects] == ["missing_id"]
    assert cat.rejects[0]["source"] == "noid.csv row 1"
    assert cat.ids == KAGGLE_IDS[1:]


def test_missing_columns_are_listed(tmp_path):
    path = tmp_path / "short.csv"
    kaggle_df().drop(columns=["Class3.2", "Class11.6"]).to_csv(path, index=False)
    with pytest.raises(
        CatalogError, match=r"short\.csv: 2 Kaggle answer column\(s\) missing: Class3\.2, Class11\.6"
    ) as err:
        read_kaggle(path)
    assert err.value.missing == ["Class3.2", "Class11.6"] and err.value.reason == "missing_columns"


def test_no_id_column_is_a_catalog_error(tmp_path):
    path = tmp_path / "anon.csv"
    kaggle_df().drop(columns=["GalaxyID"]).to_csv(path, index=False)
    with pytest.raises(CatalogError, match="no galaxy id column"):
        read_kaggle(path)


@pytest.mark.parametrize("suffix", [".parquet", ".fits"])
def test_kaggle_rows_read_from_parquet_and_fits(tmp_path, suffix):
    path = tmp_path / f"solutions{suffix}"
    df = kaggle_df()
    if suffix == ".parquet":
        df.to_parquet(path)
    else:
        Table.from_pandas(df).write(path)
    cat = read_catalog(path, "kaggle")
    assert cat.ids == KAGGLE_IDS and not cat.rejects
    np.testing.assert_allclose(cat.fractions(), read_kaggle(KAGGLE).fractions())


def test_unreadable_inputs_name_the_file(tmp_path):
    with pytest.raises(CatalogError, match=r"labels\.xlsx: cannot tell the table format"):
        read_kaggle(tmp_path / "labels.xlsx")
    with pytest.raises(CatalogError, match=r"nothere\.csv: no such file"):
        read_kaggle(tmp_path / "nothere.csv")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(CatalogError, match=r"garbage\.parquet: cannot read it as a parquet table"):
        read_kaggle(garbage)
    with pytest.raises(CatalogError, match="format must be one of"):
        read_catalog(KAGGLE, "gz3")


# --- GZ2 ----------------------------------------------------------------------------------------------


def gz2_df() -> pd.DataFrame:
    return pd.read_csv(GZ2)


@pytest.mark.parametrize("estimate", ["fraction", "weighted", "debiased"])
def test_gz2_fixture_reads_into_the_kaggle_tree(estimate):
    cat = read_gz2(GZ2, estimate=estimate)
    assert not cat.rejects and len(cat) == 4
    assert cat.id_column == "dr7objid" and cat.ids[0] == "587722981741363000"
    assert cat.answer_columns == ANSWER_COLUMNS and cat.estimate == estimate
    votes = cat.votes()
    np.testing.assert_array_equal(votes, gz2_df()[[s + "_count" for s in GZ2_ANSWER_STEMS]].to_numpy())
    assert list(cat.table[["ra", "dec"]].iloc[0]) == [150.0, 2.0]


def test_gz2_fractions_follow_the_chain():
    df = gz2_df()
    cat = read_gz2(GZ2, estimate="fraction")
    cum = cat.table[list(ANSWER_COLUMNS)].to_numpy()
    # Same as cumulating the vote counts, up to the 3-decimal rounding of the published fractions.
    np.testing.assert_allclose(cum, cumulative_from_votes(cat.votes()), atol=5e-3)
    chain = (
        df["t01_smooth_or_features_a02_features_or_disk_fraction"]
        * df["t02_edgeon_a05_no_fraction"]
        * df["t04_spiral_a08_spiral_fraction"]
        * df["t10_arms_winding_a28_tight_fraction"]
    )
    np.testing.assert_allclose(cat.table["Class10.1"], chain, atol=5e-3)
    weighted = read_gz2(GZ2, estimate="weighted").fractions()
    assert not np.allclose(weighted, cat.fractions(), atol=1e-3)  # the user's choice matters


def test_gz2_bad_rows_are_rejected(tmp_path):
    df = gz2_df()
    df.loc[0, "t03_bar_a06_bar_fraction"] = 1.5
    df.loc[1, "t05_bulge_prominence_a10_no_bulge_fraction"] += 0.3  # T05 sums to 1.3
    df.loc[2, "t11_arms_number_a31_1_count"] = -1
    path = tmp_path / "gz2_bad.csv"
    df.to_csv(path, index=False)
    cat = read_gz2(path)
    ids = df["dr7objid"].astype(str).tolist()
    assert reasons(cat) == {ids[0]: "fraction_out_of_range", ids[1]: "tree_violation", ids[2]: "bad_votes"}
    assert "t05_bulge_prominence fractions sum to 1.3" in cat.rejects[1]["error"]
    assert cat.ids == [ids[3]]


def test_gz2_empty_fractions_of_unreached_tasks_are_zero(tmp_path):
    df = gz2_df()
    counts = df[[f"t10_arms_winding_{a}_count" for a in ("a28_tight", "a29_medium", "a30_loose")]].sum(axis=1)
    unreached = int(np.flatnonzero(counts.to_numpy() == 0)[0])
    reached = int(np.flatnonzero(counts.to_numpy() > 0)[0])
    for row in (unreached, reached):
        df.loc[row, "t10_arms_winding_a28_tight_fraction"] = np.nan
    big_id = 1237648720693755918  # above 2**53: must not pass through float
    df["dr7objid"] = df["dr7objid"].astype(object)
    df.loc[unreached, "dr7objid"] = big_id
    path = tmp_path / "gz2_nan.csv"
    df.to_csv(path, index=False)
    cat = read_gz2(path)
    assert reasons(cat) == {str(df["dr7objid"][reached]): "nan_label"}
    kept = cat.table.set_index("object_id").loc[str(big_id)]
    assert kept["dr7objid"] == big_id
    assert kept[["Class10.1", "Class10.2", "Class10.3"]].tolist() == [0.0, 0.0, 0.0]


def test_gz2_missing_estimate_columns_are_listed(tmp_path):
    path = tmp_path / "gz2_nodebiased.parquet"
    gz2_df().drop(columns=[s + "_debiased" for s in GZ2_ANSWER_STEMS]).to_parquet(path)
    assert len(read_gz2(path, estimate="weighted")) == 4
    with pytest.raises(CatalogError, match="37 GZ2 debiased column") as err:
        read_gz2(path, estimate="debiased")
    assert err.value.missing[0] == "t01_smooth_or_features_a01_smooth_debiased"
    with pytest.raises(CatalogError, match="estimate must be one of"):
        read_gz2(path, estimate="median")


# --- GZ DECaLS ----------------------------------------------------------------------------------------


def decals_df() -> pd.DataFrame:
    return pd.read_csv(DECALS)


def test_decals_fixture_reads_into_its_own_schema():
    cat = read_decals(DECALS)
    assert not cat.rejects and len(cat) == 4
    assert cat.schema is DECALS_SCHEMA and cat.id_column == "iauname"
    assert len(cat.answer_columns) == 34 and cat.answer_columns[0] == "smooth-or-featured_smooth"
    df = decals_df()
    counts = df[list(cat.answer_columns)].to_numpy(float)
    np.testing.assert_array_equal(cat.votes(), counts)
    frac = cat.fractions()
    sl = DECALS_SCHEMA.question_slices["spiral-winding"]
    unreached = df["spiral-winding_total-votes"].to_numpy() == 0
    assert unreached.any() and np.all(frac[unreached, sl] == 0)  # NaN in the source for unreached questions
    totals = np.repeat(
        df[[f"{q.name}_total-votes" for q in DECALS_SCHEMA.questions]].to_numpy(),
        [len(q.answers) for q in DECALS_SCHEMA.questions],
        axis=1,
    )
    expected = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    np.testing.assert_allclose(frac, expected, rtol=1e-6)


def test_decals_dr5_suffix_in_parquet_and_counts_only(tmp_path):
    df = decals_df()
    renamed = {}
    for q in DECALS_SCHEMA.questions:
        for col in df.columns:
            if col.startswith(q.name + "_"):
                renamed[col] = f"{q.name}-dr5{col[len(q.name) :]}"
    path = tmp_path / "gz_decals_dr5.parquet"
    df.rename(columns=renamed).to_parquet(path)
    cat = read_decals(path)
    assert cat.meta["suffix"] == "-dr5" and not cat.rejects
    np.testing.assert_allclose(cat.fractions(), read_decals(DECALS).fractions())
    # Without any fraction columns, fractions come from the counts.
    counts_only = tmp_path / "counts_only.csv"
    df.drop(columns=[c for c in df.columns if c.endswith(("_fraction", "_debiased"))]).to_csv(
        counts_only, index=False
    )
    np.testing.assert_allclose(
        read_decals(counts_only).fractions(), read_decals(DECALS).fractions(), rtol=1e-6
    )


def test_decals_bad_rows_are_rejected(tmp_path):
    df = decals_df()
    df.loc[0, "bar_total-votes"] += 2  # answers no longer add up to the total
    df.loc[1, "smooth-or-featured_smooth_fraction"] = np.nan  # answered question with an empty fraction
    df.loc[3, "iauname"] = df.loc[2, "iauname"]
    path = tmp_path / "decals_bad.csv"
    df.to_csv(path, index=False)
    cat = read_decals(path)
    names = df["iauname"].tolist()
    assert [(r["source"], r["reason"]) for r in cat.rejects] == [
        (names[0], "bad_votes"),
        (names[1], "nan_label"),
        (names[2], "duplicate_id"),
        (names[3], "duplicate_id"),
    ]
    assert "bar_total-votes" in cat.rejects[0]["error"]
    assert len(cat) == 0 and cat.n_input == 4
