"""The Galaxy Zoo 2 / Kaggle decision tree and the conversions between votes and fractions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_catalogs.galaxy_zoo import (
    ANSWER_COLUMNS,
    ANSWER_LABELS,
    PARENT_INDEX,
    QUESTION_SIZES,
    QUESTION_SLICES,
    QUESTIONS,
    conditional_from_cumulative,
    conditional_from_votes,
    cumulative_from_conditional,
    cumulative_from_votes,
    parent_mass,
    question_sums,
    tree_problems,
    tree_violations,
)

KAGGLE_SAMPLE = (
    Path(__file__).resolve().parents[1] / "data" / "galaxy_zoo" / "kaggle_training_solutions_sample.csv"
)


@pytest.fixture(scope="module")
def real_cum() -> np.ndarray:
    """The six real Kaggle rows, (6, 37) float64."""
    return pd.read_csv(KAGGLE_SAMPLE)[list(ANSWER_COLUMNS)].to_numpy(np.float64)


def random_votes(rng: np.random.Generator, n: int, low: int = 1) -> np.ndarray:
    return rng.integers(low, 30, size=(n, 37)).astype(np.float64)


def test_tree_shape_and_names():
    assert [q.name for q in QUESTIONS] == [f"Q{i}" for i in range(1, 12)]
    assert QUESTION_SIZES == (3, 2, 2, 2, 4, 2, 3, 7, 3, 3, 6)
    assert len(ANSWER_COLUMNS) == 37 == len(ANSWER_LABELS)
    assert ANSWER_COLUMNS[:3] == ("Class1.1", "Class1.2", "Class1.3")
    assert ANSWER_COLUMNS[-1] == "Class11.6"
    assert QUESTIONS[0].answer_labels == ("smooth", "features_or_disk", "star_or_artifact")
    assert QUESTIONS[0].text == "Is the galaxy simply smooth and rounded, with no sign of a disk?"
    assert QUESTION_SLICES["Q1"] == slice(0, 3)
    assert QUESTION_SLICES["Q8"] == slice(18, 25)
    assert QUESTION_SLICES["Q11"] == slice(31, 37)
    for q in QUESTIONS:
        assert ANSWER_COLUMNS[QUESTION_SLICES[q.name]] == q.answers
    with pytest.raises(dataclasses.FrozenInstanceError):
        QUESTIONS[0].name = "Q99"  # type: ignore[misc]


def test_parents_follow_the_kaggle_tree():
    parents = {q.name: q.parent for q in QUESTIONS}
    assert parents == {
        "Q1": None,
        "Q2": "Class1.2",
        "Q3": "Class2.2",
        "Q4": "Class2.2",
        "Q5": "Class2.2",
        "Q6": None,
        "Q7": "Class1.1",
        "Q8": "Class6.1",
        "Q9": "Class2.1",
        "Q10": "Class4.1",
        "Q11": "Class4.1",
    }
    # Tree order lists every parent's question before its children.
    seen: set[str] = set()
    for q in QUESTIONS:
        assert q.parent is None or q.parent in seen
        seen.update(q.answers)
    assert PARENT_INDEX["Q10"] == ANSWER_COLUMNS.index("Class4.1")


def test_real_kaggle_rows_satisfy_all_11_constraints(real_cum):
    assert tree_violations(real_cum, tol=1e-6) == [[]] * 6
    sums, parents = question_sums(real_cum), parent_mass(real_cum)
    assert sums.shape == (6, 11)
    np.testing.assert_allclose(sums, parents, atol=1e-6, rtol=0)
    np.testing.assert_allclose(sums[:, [0, 5]], 1.0, atol=1e-6)  # Q1 and Q6 sum to 1
    # Stricter than the data's precision: Q8 of two rows is off by 2.6e-7.
    assert any(tree_violations(real_cum, tol=1e-9))


def test_votes_round_trip_through_cumulative():
    rng = np.random.default_rng(7)
    votes = random_votes(rng, 50)
    cond = votes / np.repeat(question_sums(votes), QUESTION_SIZES, axis=1)
    cum = cumulative_from_votes(votes)
    assert cum.shape == (50, 37)
    assert tree_violations(cum) == [[]] * 50
    np.testing.assert_allclose(conditional_from_cumulative(cum), cond, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(conditional_from_votes(votes), cond, rtol=1e-12)


def test_cumulative_is_the_product_along_the_parent_chain():
    rng = np.random.default_rng(8)
    votes = random_votes(rng, 3)
    cond = conditional_from_votes(votes)
    cum = cumulative_from_votes(votes)
    col = ANSWER_COLUMNS.index
    # Class10.2 = A1.2 * A2.2 * A4.1 * A10.2 ; Class8.7 = A6.1 * A8.7 ; Class6.2 = A6.2
    expected = cond[:, col("Class1.2")] * cond[:, col("Class2.2")] * cond[:, col("Class4.1")]
    np.testing.assert_allclose(cum[:, col("Class10.2")], expected * cond[:, col("Class10.2")])
    np.testing.assert_allclose(cum[:, col("Class8.7")], cond[:, col("Class6.1")] * cond[:, col("Class8.7")])
    np.testing.assert_allclose(cum[:, col("Class6.2")], cond[:, col("Class6.2")])


def test_unreached_questions_give_zeros_both_ways():
    rng = np.random.default_rng(9)
    votes = random_votes(rng, 1)[0]
    votes[QUESTION_SLICES["Q1"]] = [5, 0, 0]  # nobody saw features: Q2..Q5, Q9..Q11 unreached
    for q in ("Q2", "Q3", "Q4", "Q5", "Q9", "Q10", "Q11"):
        votes[QUESTION_SLICES[q]] = 0
    cum = cumulative_from_votes(votes)
    assert cum.shape == (37,)
    assert tree_violations(cum) == [[]]
    cond = conditional_from_cumulative(cum)
    assert np.all(cond[QUESTION_SLICES["Q9"]] == 0)
    np.testing.assert_allclose(cond, conditional_from_votes(votes))


def test_real_rows_round_trip_conditional(real_cum):
    cond = conditional_from_cumulative(real_cum)
    np.testing.assert_allclose(cumulative_from_conditional(cond), real_cum, atol=1e-15)
    # Per-question conditional fractions of reached questions sum to ~1.
    sums = question_sums(cond)
    reached = parent_mass(real_cum) > 0
    np.testing.assert_allclose(sums[reached], 1.0, atol=2e-6)


@pytest.mark.parametrize("question", [q.name for q in QUESTIONS])
def test_breaking_each_constraint_names_that_question(real_cum, question):
    row = real_cum[2]  # GalaxyID 100134 reaches every question
    cond = conditional_from_cumulative(row)
    cond[QUESTION_SLICES[question]] *= 0.9  # children scale with their parent, so only this sum breaks
    broken = cumulative_from_conditional(cond)
    (problems,) = tree_problems(broken)
    assert [code for code, _ in problems] == ["tree_violation"]
    assert problems[0][1].startswith(f"{question} answers sum to")
    assert tree_violations(broken)[0][0].startswith(f"tree_violation: {question} ")


def test_out_of_range_and_nan_are_reported(real_cum):
    bad = real_cum[:3].copy()
    bad[0, ANSWER_COLUMNS.index("Class1.3")] = -0.2
    bad[1, ANSWER_COLUMNS.index("Class6.2")] = 1.5
    bad[2, ANSWER_COLUMNS.index("Class11.6")] = np.nan
    problems = tree_problems(bad)
    assert ("fraction_out_of_range", "Class1.3 = -0.2 is outside [0, 1]") in problems[0]
    assert problems[1][0] == ("fraction_out_of_range", "Class6.2 = 1.5 is outside [0, 1]")
    assert [code for code, _ in problems[2]] == ["nan_label"]


def test_bad_shapes_and_negative_votes_raise():
    with pytest.raises(ValueError, match="37"):
        cumulative_from_conditional(np.zeros((2, 36)))
    with pytest.raises(ValueError, match="non-negative"):
        cumulative_from_votes(-np.ones(37))
