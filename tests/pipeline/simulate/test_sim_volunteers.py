"""Simulated Galaxy Zoo volunteers: tree constraints, catalog formats, confusion for small/faint galaxies."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalogs.galaxy_zoo import (
    ANSWER_COLUMNS,
    QUESTION_SLICES,
    QUESTIONS,
    tree_violations,
)
from pipeline.simulate.galaxies import (
    GZ2_ANSWER_NAMES,
    confusion,
    gz2_table,
    ideal_answers,
    kaggle_table,
    simulate_votes,
    votes_table,
)

TRUTHS = [
    {"type": "elliptical", "apparent_q": 0.9},
    {
        "type": "disk",
        "bulge_to_total": 0.2,
        "inclination": 40,
        "apparent_q": 0.7,
        "arms": 2,
        "pitch": 12,
        "arm_strength": 0.9,
        "bar": 1,
        "bar_strength": 0.8,
    },
    {
        "type": "disk",
        "bulge_to_total": 0.5,
        "inclination": 75,
        "arms": 5,
        "pitch": 35,
        "arm_strength": 0.5,
        "odd_feature": "ring",
        "ring": 1,
    },
    {
        "type": "edge_on",
        "bulge_to_total": 0.3,
        "inclination": 88,
        "apparent_q": 0.2,
        "bulge_shape": "boxy",
        "odd_feature": "dust_lane",
    },
    {"type": "merger", "odd_feature": "merger"},
    {"type": "irregular", "odd_feature": "irregular"},
    {"type": "lens", "odd_feature": "lens_or_arc"},
    {"type": "star"},
    {"type": "artifact"},
]


def _all_votes(n_each: int = 25, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    votes = []
    for truth in TRUTHS:
        for c in np.linspace(0.0, 1.0, n_each):
            votes.append(simulate_votes({**truth, "confusion": c}, rng))
    return np.stack(votes)


def test_ideal_answers_are_distributions_per_question():
    for truth in TRUTHS:
        p = ideal_answers(truth)
        assert p.shape == (37,) and (p >= 0).all()
        for q in QUESTIONS:
            assert p[QUESTION_SLICES[q.name]].sum() == pytest.approx(1.0)


def test_kaggle_fractions_satisfy_every_tree_constraint():
    votes = _all_votes()
    table = kaggle_table(np.arange(len(votes)) + 100000, votes)
    assert list(table.columns) == ["GalaxyID", *ANSWER_COLUMNS]
    cum = table[list(ANSWER_COLUMNS)].to_numpy()
    assert all(not problems for problems in tree_violations(cum, tol=1e-9))
    np.testing.assert_allclose(cum[:, QUESTION_SLICES["Q1"]].sum(axis=1), 1.0)
    np.testing.assert_allclose(cum[:, QUESTION_SLICES["Q6"]].sum(axis=1), 1.0)
    # every question reached by someone was answered by exactly the volunteers who took its parent answer
    for q in QUESTIONS:
        if q.parent is not None:
            parent = ANSWER_COLUMNS.index(q.parent)
            np.testing.assert_array_equal(votes[:, QUESTION_SLICES[q.name]].sum(axis=1), votes[:, parent])


def test_gz2_and_vote_tables_have_the_catalog_columns():
    votes = _all_votes(n_each=3)
    ids = np.arange(len(votes)) + 100000
    gz2 = gz2_table(ids, votes)
    assert "t01_smooth_or_features_a01_smooth_count" in gz2.columns
    assert "t11_arms_number_a37_cant_tell_fraction" in gz2.columns
    assert len(GZ2_ANSWER_NAMES) == 37 and len(set(GZ2_ANSWER_NAMES)) == 37
    smooth = gz2[[f"{n}_fraction" for n in GZ2_ANSWER_NAMES[:3]]].sum(axis=1)
    np.testing.assert_allclose(smooth, 1.0)
    assert (gz2["total_classifications"] == votes[:, :3].sum(axis=1)).all()
    counts = votes_table(ids, votes)
    np.testing.assert_array_equal(counts[list(ANSWER_COLUMNS)].to_numpy(), votes)
    assert 25 <= np.median(gz2["total_classifications"]) <= 55  # ~40 volunteers


def test_confusion_grows_for_small_and_faint_galaxies():
    assert confusion(1000, 5.0) < 0.05
    assert confusion(1000, 0.5) > confusion(1000, 1.0) > confusion(1000, 3.0)
    assert confusion(30, 3.0) > confusion(100, 3.0) > confusion(400, 3.0)


def _mean_fractions(votes: np.ndarray):
    return kaggle_table(np.arange(len(votes)), votes)[list(ANSWER_COLUMNS)].mean()


def _cant_tell(votes: np.ndarray) -> float:
    """Share of the arm-count votes that say "can't tell"."""
    return votes[:, ANSWER_COLUMNS.index("Class11.6")].sum() / votes[:, QUESTION_SLICES["Q11"]].sum()


def test_confused_volunteers_see_featured_galaxies_as_smooth_and_cannot_count_arms():
    rng = np.random.default_rng(1)
    spiral = TRUTHS[1]
    sharp = np.stack([simulate_votes({**spiral, "confusion": 0.05}, rng) for _ in range(60)])
    blurry = np.stack([simulate_votes({**spiral, "confusion": 0.9}, rng) for _ in range(60)])
    s, b = _mean_fractions(sharp), _mean_fractions(blurry)
    assert s["Class1.2"] > 0.7 and b["Class1.1"] > s["Class1.1"] + 0.3
    assert s["Class4.1"] > b["Class4.1"]
    assert _cant_tell(blurry) > _cant_tell(sharp) + 0.2
    # the sharp volunteers get the true arm count (2) and winding (tight) most often
    assert np.argmax(sharp[:, QUESTION_SLICES["Q11"]].sum(axis=0)) == 1
    assert np.argmax(sharp[:, QUESTION_SLICES["Q10"]].sum(axis=0)) == 0
