"""The label schemas of the Galaxy Zoo formats other than Kaggle's: GZ2 column names in Kaggle answer
order (Willett et al. 2013; Hart et al. 2016) and the Galaxy Zoo DECaLS decision tree (Walmsley et al. 2022),
read by :mod:`data_catalogs.galaxy_zoo_formats`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------------------
# GZ2 column names (Willett et al. 2013, Table 5; Hart et al. 2016), in Kaggle answer order.

#: GZ2 tasks and their answers, in Kaggle question and answer order (note a38 dust lane and no a35).
GZ2_TASKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("t01_smooth_or_features", ("a01_smooth", "a02_features_or_disk", "a03_star_or_artifact")),
    ("t02_edgeon", ("a04_yes", "a05_no")),
    ("t03_bar", ("a06_bar", "a07_no_bar")),
    ("t04_spiral", ("a08_spiral", "a09_no_spiral")),
    ("t05_bulge_prominence", ("a10_no_bulge", "a11_just_noticeable", "a12_obvious", "a13_dominant")),
    ("t06_odd", ("a14_yes", "a15_no")),
    ("t07_rounded", ("a16_completely_round", "a17_in_between", "a18_cigar_shaped")),
    (
        "t08_odd_feature",
        ("a19_ring", "a20_lens_or_arc", "a21_disturbed", "a22_irregular", "a23_other", "a24_merger",
         "a38_dust_lane"),
    ),
    ("t09_bulge_shape", ("a25_rounded", "a26_boxy", "a27_no_bulge")),
    ("t10_arms_winding", ("a28_tight", "a29_medium", "a30_loose")),
    ("t11_arms_number", ("a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell")),
)  # fmt: skip

#: The 37 GZ2 answer stems aligned with :data:`~data_catalogs.galaxy_zoo.ANSWER_COLUMNS`,
#: e.g. ``"t01_smooth_or_features_a01_smooth"``.
GZ2_ANSWER_STEMS: tuple[str, ...] = tuple(
    f"{task}_{answer}" for task, answers in GZ2_TASKS for answer in answers
)

#: GZ2 estimate name -> column-name suffix.
GZ2_ESTIMATES = {"fraction": "_fraction", "weighted": "_weighted_fraction", "debiased": "_debiased"}

#: Default tolerance on each question's raw fraction sum (1 when answered, 0 when not), per GZ2 estimate;
#: published fractions are rounded to 3 decimals. None: not checked (debiased fractions need not sum to 1).
GZ2_SUM_TOL: dict[str, float | None] = {"fraction": 0.01, "weighted": 0.01, "debiased": None}


# ---------------------------------------------------------------------------------------------------------
# GZ DECaLS schema (Walmsley et al. 2022, DR5 decision tree).


@dataclass(frozen=True)
class DecalsQuestion:
    """One question of the GZ DECaLS tree.

    Attributes:
        name: question name without campaign suffix, e.g. ``"smooth-or-featured"``.
        answers: answer names, e.g. ``("smooth", "featured-or-disk", "artifact")``.
        parent: the answer column that leads here, e.g. ``"smooth-or-featured_featured-or-disk"``; None
            when always asked.
    """

    name: str
    answers: tuple[str, ...]
    parent: str | None

    @property
    def columns(self) -> tuple[str, ...]:
        """Answer columns without suffix, e.g. ``("smooth-or-featured_smooth", ...)``."""
        return tuple(f"{self.name}_{a}" for a in self.answers)


@dataclass(frozen=True)
class DecalsSchema:
    """The GZ DECaLS decision tree and how its columns are named.

    Attributes:
        name: schema name.
        questions: questions in a parent-before-child order.
    """

    name: str
    questions: tuple[DecalsQuestion, ...]

    @property
    def answer_columns(self) -> tuple[str, ...]:
        """All answer columns without campaign suffix (34 for DR5), question by question."""
        return tuple(c for q in self.questions for c in q.columns)

    @property
    def question_sizes(self) -> tuple[int, ...]:
        return tuple(len(q.answers) for q in self.questions)

    @property
    def question_slices(self) -> dict[str, slice]:
        """Question name -> slice of its answers in :attr:`answer_columns`."""
        out, start = {}, 0
        for q in self.questions:
            out[q.name] = slice(start, start + len(q.answers))
            start += len(q.answers)
        return out

    def count_column(self, question: DecalsQuestion, answer: str, suffix: str = "") -> str:
        """Source column of the vote count, e.g. ``smooth-or-featured-dr5_smooth``."""
        return f"{question.name}{suffix}_{answer}"

    def estimate_column(self, question: DecalsQuestion, answer: str, estimate: str, suffix: str = "") -> str:
        """Source column of a fraction estimate, e.g. ``smooth-or-featured-dr5_smooth_fraction``."""
        return f"{question.name}{suffix}_{answer}_{estimate}"

    def total_column(self, question: DecalsQuestion, suffix: str = "") -> str:
        """Source column of the question's total votes, e.g. ``smooth-or-featured_total-votes``."""
        return f"{question.name}{suffix}_total-votes"

    def question_sums(self, arr: np.ndarray) -> np.ndarray:
        """``(N, A)`` answers -> ``(N, Q)`` per-question sums (NaN propagates)."""
        starts = np.cumsum((0, *self.question_sizes[:-1]))
        return np.add.reduceat(np.atleast_2d(np.asarray(arr, dtype=np.float64)), starts, axis=1)


#: The GZ DECaLS DR5 (and DR8) tree: 10 questions, 34 answers.
DECALS_SCHEMA = DecalsSchema(
    name="gz_decals_dr5",
    questions=(
        DecalsQuestion("smooth-or-featured", ("smooth", "featured-or-disk", "artifact"), None),
        DecalsQuestion("disk-edge-on", ("yes", "no"), "smooth-or-featured_featured-or-disk"),
        DecalsQuestion("has-spiral-arms", ("yes", "no"), "disk-edge-on_no"),
        DecalsQuestion("bar", ("strong", "weak", "no"), "disk-edge-on_no"),
        DecalsQuestion("bulge-size", ("dominant", "large", "moderate", "small", "none"), "disk-edge-on_no"),
        DecalsQuestion("how-rounded", ("round", "in-between", "cigar-shaped"), "smooth-or-featured_smooth"),
        DecalsQuestion("edge-on-bulge", ("boxy", "none", "rounded"), "disk-edge-on_yes"),
        DecalsQuestion("spiral-winding", ("tight", "medium", "loose"), "has-spiral-arms_yes"),
        DecalsQuestion(
            "spiral-arm-count", ("1", "2", "3", "4", "more-than-4", "cant-tell"), "has-spiral-arms_yes"
        ),
        DecalsQuestion("merging", ("none", "minor-disturbance", "major-disturbance", "merger"), None),
    ),
)

DECALS_SUFFIXES = ("", "-dr5", "-dr8")
DECALS_ESTIMATES = ("fraction", "debiased")
