"""Derived morphology classes from the 37 Galaxy Zoo (Kaggle) cumulative vote fractions.

The same definitions are applied to model predictions (scored catalogs) and to volunteer votes (the
"true majority vote" of reports), so a confusion matrix compares like with like. With ``f[...]`` the Kaggle
cumulative fractions (``data_catalogs.galaxy_zoo``: an answer's share of *all* volunteers who classified the
galaxy, i.e. the product of the conditional shares along the decision tree):

- ``p_smooth`` = ``f[Class1.1]``, ``p_featured`` = ``f[Class1.2]``, ``p_star_artifact`` = ``f[Class1.3]``
  (Q1); ``morph_class`` is the Q1 answer with the largest fraction (``smooth``, ``featured``,
  ``star_artifact``; a tie goes to the first).
- ``p_edge_on`` = ``f[Class2.1]`` = P(featured) P(edge-on | featured); ``edge_on`` = ``p_edge_on > 0.5``.
- ``p_bar`` = ``f[Class3.1]`` = P(featured) P(not edge-on | featured) P(bar | not edge-on);
  ``bar`` = ``p_bar > 0.5``.
- ``p_spiral`` = ``f[Class4.1]`` = P(featured) P(not edge-on | featured) P(spiral | not edge-on);
  ``spiral`` = ``p_spiral > 0.5``.

So ``edge_on``, ``bar`` and ``spiral`` are true when more than half of all volunteers followed the tree to
that answer (a strict majority of the whole vote, not of the sub-question), which is stricter than the
conditional fraction > 0.5 and never true for a galaxy most volunteers called smooth.
"""

from __future__ import annotations

import numpy as np

from data_catalogs.galaxy_zoo import ANSWER_INDEX, N_ANSWERS, QUESTION_SLICES

#: The three Q1 classes in answer order (Class1.1, Class1.2, Class1.3).
MORPH_CLASSES: tuple[str, ...] = ("smooth", "featured", "star_artifact")
#: Binary derived classes -> the Kaggle answer whose cumulative fraction is their probability.
BINARY_CLASSES: dict[str, str] = {"edge_on": "Class2.1", "bar": "Class3.1", "spiral": "Class4.1"}
#: Probability column -> Kaggle answer column.
PROBABILITY_COLUMNS: dict[str, str] = {
    "p_smooth": "Class1.1",
    "p_featured": "Class1.2",
    "p_star_artifact": "Class1.3",
    **{f"p_{name}": answer for name, answer in BINARY_CLASSES.items()},
}
#: A binary class is true when its cumulative fraction is above this (a majority of all votes).
MAJORITY = 0.5
#: One-line definitions, for catalog descriptions and report text.
DEFINITIONS: dict[str, str] = {
    "morph_class": "argmax of Class1.1-1.3 (smooth, featured, star_artifact)",
    **{name: f"{answer} cumulative fraction > {MAJORITY}" for name, answer in BINARY_CLASSES.items()},
}


def _check(fractions: np.ndarray) -> np.ndarray:
    arr = np.asarray(fractions)
    if arr.ndim != 2 or arr.shape[1] != N_ANSWERS:
        raise ValueError(f"fractions must be (N, {N_ANSWERS}), got shape {arr.shape}")
    return arr


def derived_probabilities(fractions: np.ndarray) -> dict[str, np.ndarray]:
    """Probabilities of the derived classes.

    Args:
        fractions: ``(N, 37)`` Kaggle cumulative vote fractions (predicted or true), columns in
            :data:`data_catalogs.galaxy_zoo.ANSWER_COLUMNS` order; dimensionless in [0, 1].

    Returns:
        :data:`PROBABILITY_COLUMNS` name -> ``(N,)`` array of the input's dtype.
    """
    arr = _check(fractions)
    return {name: arr[:, ANSWER_INDEX[answer]] for name, answer in PROBABILITY_COLUMNS.items()}


def derived_labels(fractions: np.ndarray) -> dict[str, np.ndarray]:
    """Derived classes: ``morph_class`` ``(N,)`` str (:data:`MORPH_CLASSES`) and ``edge_on``, ``bar``,
    ``spiral`` ``(N,)`` bool, from ``(N, 37)`` cumulative fractions (definitions in the module docstring)."""
    arr = _check(fractions)
    q1 = arr[:, QUESTION_SLICES["Q1"]]
    out: dict[str, np.ndarray] = {"morph_class": np.asarray(MORPH_CLASSES)[np.argmax(q1, axis=1)]}
    for name, answer in BINARY_CLASSES.items():
        out[name] = arr[:, ANSWER_INDEX[answer]] > MAJORITY
    return out
