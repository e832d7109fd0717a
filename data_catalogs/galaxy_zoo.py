"""The Galaxy Zoo 2 decision tree as used by the Kaggle "Galaxy Zoo - The Galaxy Challenge" (Willett et al.
2013; Dieleman et al. 2015), and conversions between vote counts, per-question (conditional) fractions and the
Kaggle cumulative fractions.

The tree has 11 questions and 37 answers (3, 2, 2, 2, 4, 2, 3, 7, 3, 3, 6). Each question hangs off one parent
answer; Q1 and Q6 hang off the root::

    Q1 (root) -> A1.1 smooth          -> Q7 (how rounded)
              -> A1.2 features/disk   -> Q2 (edge-on) -> A2.1 yes -> Q9 (bulge shape)
                                                      -> A2.2 no  -> Q3 (bar), Q5 (bulge prominence),
                                                                     Q4 (spiral) -> A4.1 yes -> Q10, Q11
    Q6 (root, "anything odd?") -> A6.1 yes -> Q8 (odd feature)

A Kaggle *cumulative* fraction is an answer's vote fraction within its question times the cumulative fraction
of the question's parent answer (1 for the root questions). So in the Kaggle data each question's answers sum
to its parent's cumulative fraction, and Q1 and Q6 sum to 1.

Array conventions: every label array is ``(N, 37)`` with columns in :data:`ANSWER_COLUMNS` order
(``Class1.1`` .. ``Class11.6``); fractions are dimensionless in [0, 1]; vote counts are non-negative numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Question:
    """One question of the Galaxy Zoo 2 / Kaggle decision tree.

    Attributes:
        name: ``"Q1"`` .. ``"Q11"``.
        text: the question as volunteers saw it.
        answers: Kaggle column names of its answers, e.g. ``("Class1.1", "Class1.2", "Class1.3")``.
        answer_labels: short snake_case answer names, e.g.
            ``("smooth", "features_or_disk", "star_or_artifact")``.
        parent: the Kaggle column of the answer that leads to this question, or None for a root question
            (Q1, Q6).
    """

    name: str
    text: str
    answers: tuple[str, ...]
    answer_labels: tuple[str, ...]
    parent: str | None


def _q(number: int, text: str, labels: tuple[str, ...], parent: str | None) -> Question:
    answers = tuple(f"Class{number}.{i + 1}" for i in range(len(labels)))
    return Question(f"Q{number}", text, answers, labels, parent)


#: The 11 questions in tree order Q1..Q11 (also a valid parent-before-child order).
QUESTIONS: tuple[Question, ...] = (
    _q(1, "Is the galaxy simply smooth and rounded, with no sign of a disk?",
       ("smooth", "features_or_disk", "star_or_artifact"), None),
    _q(2, "Could this be a disk viewed edge-on?", ("edge_on_yes", "edge_on_no"), "Class1.2"),
    _q(3, "Is there a sign of a bar feature through the centre of the galaxy?",
       ("bar", "no_bar"), "Class2.2"),
    _q(4, "Is there any sign of a spiral arm pattern?", ("spiral", "no_spiral"), "Class2.2"),
    _q(5, "How prominent is the central bulge, compared with the rest of the galaxy?",
       ("no_bulge", "just_noticeable", "obvious", "dominant"), "Class2.2"),
    _q(6, "Is there anything odd?", ("odd_yes", "odd_no"), None),
    _q(7, "How rounded is it?", ("completely_round", "in_between", "cigar_shaped"), "Class1.1"),
    _q(8, "Is the odd feature a ring, or is the galaxy disturbed or irregular?",
       ("ring", "lens_or_arc", "disturbed", "irregular", "other", "merger", "dust_lane"), "Class6.1"),
    _q(9, "Does the galaxy have a bulge at its centre? If so, what shape?",
       ("bulge_rounded", "bulge_boxy", "no_bulge"), "Class2.1"),
    _q(10, "How tightly wound do the spiral arms appear?", ("tight", "medium", "loose"), "Class4.1"),
    _q(11, "How many spiral arms are there?", ("1", "2", "3", "4", "more_than_4", "cant_tell"), "Class4.1"),
)  # fmt: skip

#: The 37 Kaggle answer columns in order, ``Class1.1`` .. ``Class11.6``.
ANSWER_COLUMNS: tuple[str, ...] = tuple(a for q in QUESTIONS for a in q.answers)

#: Short answer names aligned with :data:`ANSWER_COLUMNS`, e.g. ``"Q1_smooth"``.
ANSWER_LABELS: tuple[str, ...] = tuple(f"{q.name}_{label}" for q in QUESTIONS for label in q.answer_labels)

#: Number of answers per question, (3, 2, 2, 2, 4, 2, 3, 7, 3, 3, 6).
QUESTION_SIZES: tuple[int, ...] = tuple(len(q.answers) for q in QUESTIONS)

N_ANSWERS = len(ANSWER_COLUMNS)  # 37


def _slices() -> dict[str, slice]:
    out, start = {}, 0
    for q in QUESTIONS:
        out[q.name] = slice(start, start + len(q.answers))
        start += len(q.answers)
    return out


#: Question name -> slice of its answers in the 37 columns, e.g. ``"Q1" -> slice(0, 3)``.
QUESTION_SLICES: dict[str, slice] = _slices()

#: Answer column -> its index 0..36.
ANSWER_INDEX: dict[str, int] = {a: i for i, a in enumerate(ANSWER_COLUMNS)}

#: Question name -> index of its parent answer in the 37 columns, or None for a root question.
PARENT_INDEX: dict[str, int | None] = {
    q.name: None if q.parent is None else ANSWER_INDEX[q.parent] for q in QUESTIONS
}

#: Answer column -> name of the question it belongs to.
QUESTION_OF_ANSWER: dict[str, str] = {a: q.name for q in QUESTIONS for a in q.answers}


def _check_37(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != N_ANSWERS:
        raise ValueError(f"{what} must be (N, {N_ANSWERS}) or ({N_ANSWERS},), got shape {arr.shape}")
    return arr


def _same_dims(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    return out if np.ndim(like) == 2 else out[0]


def cumulative_from_conditional(cond: np.ndarray) -> np.ndarray:
    """Per-question (conditional) fractions -> Kaggle cumulative fractions.

    Args:
        cond: ``(N, 37)`` (or ``(37,)``) fractions; each question's answers are that question's vote shares
            (sum to 1 where the question was answered).

    Returns:
        ``(N, 37)`` (or ``(37,)``) float64: each answer's fraction times the cumulative fraction of its
        question's parent answer (1 for Q1 and Q6).
    """
    arr = _check_37(cond, "cond")
    c = np.atleast_2d(arr)
    cum = np.empty_like(c)
    for q in QUESTIONS:  # tree order visits every parent before its children
        sl, parent = QUESTION_SLICES[q.name], PARENT_INDEX[q.name]
        cum[:, sl] = c[:, sl] if parent is None else c[:, sl] * cum[:, parent : parent + 1]
    return _same_dims(cum, arr)


def conditional_from_cumulative(cum: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Kaggle cumulative fractions -> per-question (conditional) fractions; inverse of
    :func:`cumulative_from_conditional`.

    Each question's answers are divided by the cumulative fraction of its parent answer. A question whose
    parent mass is at most ``eps`` (nobody reached it) gets 0 for all its answers.

    Args:
        cum: ``(N, 37)`` (or ``(37,)``) cumulative fractions.
        eps: parent mass at or below which a question counts as unreached.

    Returns:
        ``(N, 37)`` (or ``(37,)``) float64 conditional fractions.
    """
    arr = _check_37(cum, "cum")
    c = np.atleast_2d(arr)
    cond = np.empty_like(c)
    for q in QUESTIONS:
        sl, parent = QUESTION_SLICES[q.name], PARENT_INDEX[q.name]
        if parent is None:
            cond[:, sl] = c[:, sl]
            continue
        mass = c[:, parent : parent + 1]
        reached = mass > eps
        cond[:, sl] = np.divide(c[:, sl], mass, out=np.zeros_like(c[:, sl]), where=reached)
    return _same_dims(cond, arr)


def conditional_from_votes(votes: np.ndarray) -> np.ndarray:
    """Raw per-answer vote counts -> per-question vote fractions (0 for a question nobody answered).

    Args:
        votes: ``(N, 37)`` (or ``(37,)``) non-negative vote counts.

    Returns:
        ``(N, 37)`` (or ``(37,)``) float64; each answered question's fractions sum to 1.
    """
    arr = _check_37(votes, "votes")
    if np.any(arr < 0):
        raise ValueError("votes must be non-negative counts")
    v = np.atleast_2d(arr)
    totals = question_sums(v)  # (N, 11)
    per_answer = np.repeat(totals, QUESTION_SIZES, axis=1)
    cond = np.divide(v, per_answer, out=np.zeros_like(v), where=per_answer > 0)
    return _same_dims(cond, arr)


def cumulative_from_votes(votes: np.ndarray) -> np.ndarray:
    """Raw per-answer vote counts -> Kaggle cumulative fractions.

    Args:
        votes: ``(N, 37)`` (or ``(37,)``) non-negative vote counts.

    Returns:
        ``(N, 37)`` (or ``(37,)``) float64 cumulative fractions (a question with no votes contributes 0s).
    """
    return cumulative_from_conditional(conditional_from_votes(votes))


def question_sums(arr: np.ndarray) -> np.ndarray:
    """Sum of each question's answers.

    Args:
        arr: ``(N, 37)`` (or ``(37,)``) fractions or counts.

    Returns:
        ``(N, 11)`` (or ``(11,)``) float64, questions in Q1..Q11 order.
    """
    a = _check_37(arr, "arr")
    starts = np.cumsum((0, *QUESTION_SIZES[:-1]))
    sums = np.add.reduceat(np.atleast_2d(a), starts, axis=1)
    return _same_dims(sums, a)


def parent_mass(cum: np.ndarray) -> np.ndarray:
    """Cumulative fraction of each question's parent answer (1 for the root questions).

    Args:
        cum: ``(N, 37)`` (or ``(37,)``) cumulative fractions.

    Returns:
        ``(N, 11)`` (or ``(11,)``) float64, questions in Q1..Q11 order.
    """
    a = _check_37(cum, "cum")
    c = np.atleast_2d(a)
    cols = [
        np.ones(len(c)) if PARENT_INDEX[q.name] is None else c[:, PARENT_INDEX[q.name]] for q in QUESTIONS
    ]
    return _same_dims(np.stack(cols, axis=1), a)


def tree_problems(cum: np.ndarray, tol: float | np.ndarray = 1e-6) -> list[list[tuple[str, str]]]:
    """Every way each row of cumulative fractions breaks the Kaggle tree, as ``(reason, message)`` pairs.

    Reasons: ``nan_label`` (an answer is NaN or infinite), ``fraction_out_of_range`` (an answer outside
    [0, 1] by more than ``tol``), ``tree_violation`` (a question's answers do not sum to its parent's
    cumulative fraction, or to 1 for Q1 and Q6, within ``tol``).

    Args:
        cum: ``(N, 37)`` (or ``(37,)``) cumulative fractions.
        tol: absolute tolerance on the sums, one for all questions or ``(11,)`` per question
            (:func:`data_catalogs.galaxy_zoo_precision.tree_tolerance`); the smallest also bounds the
            range. Sums are compared with a slack of 1e-12 for their own float rounding.

    Returns:
        one list per row (empty: the row is valid).
    """
    a = np.atleast_2d(_check_37(cum, "cum"))
    tols = np.broadcast_to(np.asarray(tol, dtype=np.float64), (len(QUESTIONS),))
    range_tol = float(tols.min())
    bad_value = ~np.isfinite(a)
    out_of_range = np.isfinite(a) & ((a < -range_tol) | (a > 1 + range_tol))
    sums = question_sums(a)
    expected = parent_mass(a)
    with np.errstate(invalid="ignore"):
        broken = np.abs(sums - expected) > tols + 1e-12
    rows: list[list[tuple[str, str]]] = []
    for i in range(len(a)):
        problems: list[tuple[str, str]] = []
        for j in np.flatnonzero(bad_value[i]):
            problems.append(("nan_label", f"{ANSWER_COLUMNS[j]} is {a[i, j]}"))
        for j in np.flatnonzero(out_of_range[i]):
            problems.append(
                ("fraction_out_of_range", f"{ANSWER_COLUMNS[j]} = {a[i, j]:.6g} is outside [0, 1]")
            )
        if not bad_value[i].any():
            for k in np.flatnonzero(broken[i]):
                q = QUESTIONS[k]
                target = "1" if q.parent is None else f"its parent {q.parent} = {expected[i, k]:.9g}"
                problems.append(
                    (
                        "tree_violation",
                        f"{q.name} answers sum to {sums[i, k]:.9g}, expected {target} (tol {tols[k]:g})",
                    )
                )
        rows.append(problems)
    return rows


def tree_violations(cum: np.ndarray, tol: float = 1e-6) -> list[list[str]]:
    """Per row, human-readable reasons the cumulative fractions break the tree (empty list: valid).

    Each string starts with its reason code (``nan_label``, ``fraction_out_of_range``, ``tree_violation``),
    e.g. ``"tree_violation: Q2 answers sum to 0.5, expected its parent Class1.2 = 0.6 (tol 1e-06)"``.

    Args:
        cum: ``(N, 37)`` (or ``(37,)``) cumulative fractions.
        tol: absolute tolerance on the range and the sums.
    """
    return [[f"{code}: {msg}" for code, msg in row] for row in tree_problems(cum, tol)]
