"""Simulated Galaxy Zoo volunteers: each walks the GZ2 / Kaggle decision tree
(:mod:`data_catalogs.galaxy_zoo`) for one simulated galaxy and answers from its true morphology.

Answer model, per galaxy:

1. :func:`ideal_answers` gives, for every question, the answer shares an attentive volunteer would give with
   the galaxy perfectly visible (``(37,)`` conditional fractions, each question's block sums to 1). Graded
   properties have soft boundaries, like real volunteers: bulge prominence from the bulge-to-total ratio,
   roundness from the apparent (PSF-convolved) axis ratio, arm winding from the pitch angle, edge-on from
   the inclination, "features" from how strong the disk features are.
2. :func:`confusion` says how much of that is lost: ``c = 1 - (1 - exp(-(rho / 1.2)^2)) *
   (1 - exp(-snr / 200))`` with ``rho`` = half-light radius / PSF FWHM and ``snr`` the r-band S/N inside
   the half-light radius. Small and faint galaxies get ``c`` near 1; with the default imaging the median
   galaxy has c ~ 0.3, a 1" galaxy or one at S/N 100 c > 0.5.
3. A confused volunteer answers from :data:`CONFUSED_ANSWERS` instead, which carries Galaxy Zoo's known
   bias: unresolved or faint galaxies look smooth, round-ish, unbarred, without spiral arms, and arm counts
   become "can't tell" (Willett et al. 2013; Hart et al. 2016 debias GZ2 for exactly this).
4. Each volunteer has an own confusion ``c_v = clip(c + N(0, 0.1), 0, 1)`` and clicks at random with
   probability 0.03; they answer Q1, follow the branch they chose (Q7 | Q2 -> Q9 | Q3, Q4 -> Q10, Q11, Q5),
   and all answer Q6 (and Q8 if they said "odd"). In GZ2 "star or artifact" ended the classification, but
   the Kaggle labels normalise Q6 to 1 for every galaxy, so every simulated volunteer answers Q6.

Because every vote follows the tree, the Kaggle cumulative fractions computed from the counts
(:func:`data_catalogs.galaxy_zoo.cumulative_from_votes`) satisfy every tree constraint exactly.

GZ2 catalog columns (Willett et al. 2013, Hart et al. 2016) are :data:`GZ2_ANSWER_NAMES`, aligned with the
37 Kaggle columns (the GZ2 answer numbers skip a35 and put dust lane, a38, last in task 8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from data_catalogs.galaxy_zoo import (
    ANSWER_COLUMNS,
    N_ANSWERS,
    QUESTION_SLICES,
    QUESTIONS,
    conditional_from_votes,
    cumulative_from_votes,
)

#: GZ2 task/answer names aligned with :data:`data_catalogs.galaxy_zoo.ANSWER_COLUMNS`
#: (``t01_smooth_or_features_a01_smooth`` ...); a catalog column is ``<name>_count`` / ``<name>_fraction``.
GZ2_ANSWER_NAMES: tuple[str, ...] = (
    "t01_smooth_or_features_a01_smooth",
    "t01_smooth_or_features_a02_features_or_disk",
    "t01_smooth_or_features_a03_star_or_artifact",
    "t02_edgeon_a04_yes",
    "t02_edgeon_a05_no",
    "t03_bar_a06_bar",
    "t03_bar_a07_no_bar",
    "t04_spiral_a08_spiral",
    "t04_spiral_a09_no_spiral",
    "t05_bulge_prominence_a10_no_bulge",
    "t05_bulge_prominence_a11_just_noticeable",
    "t05_bulge_prominence_a12_obvious",
    "t05_bulge_prominence_a13_dominant",
    "t06_odd_a14_yes",
    "t06_odd_a15_no",
    "t07_rounded_a16_completely_round",
    "t07_rounded_a17_in_between",
    "t07_rounded_a18_cigar_shaped",
    "t08_odd_feature_a19_ring",
    "t08_odd_feature_a20_lens_or_arc",
    "t08_odd_feature_a21_disturbed",
    "t08_odd_feature_a22_irregular",
    "t08_odd_feature_a23_other",
    "t08_odd_feature_a24_merger",
    "t08_odd_feature_a38_dust_lane",
    "t09_bulge_shape_a25_rounded",
    "t09_bulge_shape_a26_boxy",
    "t09_bulge_shape_a27_no_bulge",
    "t10_arms_winding_a28_tight",
    "t10_arms_winding_a29_medium",
    "t10_arms_winding_a30_loose",
    "t11_arms_number_a31_1",
    "t11_arms_number_a32_2",
    "t11_arms_number_a33_3",
    "t11_arms_number_a34_4",
    "t11_arms_number_a36_more_than_4",
    "t11_arms_number_a37_cant_tell",
)

#: Q8 answers in Kaggle order (Class8.1 .. Class8.7).
ODD_FEATURES = ("ring", "lens_or_arc", "disturbed", "irregular", "other", "merger", "dust_lane")
#: Q9 answers (Class9.1 .. 9.3).
BULGE_SHAPES = ("rounded", "boxy", "none")
#: Q10 answers (Class10.1 .. 10.3) and the pitch angles (degrees) that typify them.
WINDINGS = ("tight", "medium", "loose")
WINDING_PITCH = (10.0, 20.0, 32.0)

#: What a volunteer who cannot make the galaxy out answers, per question (conditional shares).
CONFUSED_ANSWERS: dict[str, tuple[float, ...]] = {
    "Q1": (0.75, 0.15, 0.10),
    "Q2": (0.30, 0.70),
    "Q3": (0.10, 0.90),
    "Q4": (0.20, 0.80),
    "Q5": (0.20, 0.40, 0.30, 0.10),
    "Q6": (0.10, 0.90),
    "Q7": (0.35, 0.50, 0.15),
    "Q8": (0.10, 0.05, 0.20, 0.20, 0.35, 0.05, 0.05),
    "Q9": (0.40, 0.20, 0.40),
    "Q10": (0.30, 0.45, 0.25),
    "Q11": (0.05, 0.20, 0.05, 0.02, 0.03, 0.65),
}

RANDOM_CLICK = 0.03
RESOLUTION_SCALE = 1.2
SNR_SCALE = 200.0
VOLUNTEER_SCATTER = 0.1
MEAN_VOLUNTEERS = 40
#: Q6 "odd" share and Q8 shares for a galaxy with a bright star or galaxy overlapping it (truth
#: ``close_neighbour``, set by the ``sdss-jpeg`` style): volunteers flag overlaps as odd, mostly "other"
#: or "merger".
NEIGHBOUR_ODD = 0.45
NEIGHBOUR_FEATURES = (0.02, 0.02, 0.12, 0.06, 0.50, 0.26, 0.02)


def _softmax_distance(value: float, centres: Sequence[float], width: float) -> np.ndarray:
    d = (np.asarray(centres, dtype=float) - value) / width
    w = np.exp(-0.5 * d**2)
    return w / w.sum()


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _nan_to(value: Any, default: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return default if not np.isfinite(out) else out


def confusion(snr: float, resolution: float, snr_scale: float = SNR_SCALE) -> float:
    """Fraction of a galaxy's morphology lost to volunteers, in [0, 1].

    Args:
        snr: r-band signal-to-noise inside the half-light radius.
        resolution: half-light radius / PSF FWHM (dimensionless).
        snr_scale: the S/N at which 1 - 1/e of the morphology shows (on a resolved galaxy).
    """
    resolved = 1.0 - np.exp(-((max(resolution, 0.0) / RESOLUTION_SCALE) ** 2))
    seen = resolved * (1.0 - np.exp(-max(snr, 0.0) / snr_scale))
    return float(np.clip(1.0 - seen, 0.0, 1.0))


def _smooth_or_features(
    truth: Mapping[str, Any], bt: float, arms: int, arm_strength: float, bar: int, bar_strength: float
) -> np.ndarray:
    """Q1 shares (smooth, features or disk, star or artifact): a disk shows features as far as its arms,
    bar, ring, edge-on shape or small bulge are visible."""
    kind = truth["type"]
    if kind in ("star", "artifact"):
        return np.array([0.05, 0.03, 0.92])
    if kind in ("elliptical", "lens"):
        return np.array([0.92, 0.06, 0.02])
    if kind == "merger":
        return np.array([0.25, 0.73, 0.02])
    if kind == "irregular":
        return np.array([0.20, 0.78, 0.02])
    # disk, edge_on
    visible = max(
        arm_strength if arms else 0.0,
        0.85 * bar_strength if bar else 0.0,
        0.8 if truth.get("ring") else 0.0,
        0.95 if kind == "edge_on" else 0.0,
        0.8 * (1.0 - bt),
    )
    features = 0.06 + 0.88 * visible
    return np.array([0.99 - features, features, 0.01])


def _arm_count(arms: int) -> np.ndarray:
    """Q11 shares (1, 2, 3, 4, more than 4 arms, can't tell): most on the true count, some on its neighbours."""
    q11 = np.full(6, 0.0)
    if arms:
        k = min(arms, 5) - 1
        q11[k] = 0.7
        for j in (k - 1, k + 1):
            if 0 <= j <= 4:
                q11[j] = 0.1
        q11[5] = 0.1
    else:
        q11[:] = (0.05, 0.2, 0.05, 0.02, 0.03, 0.65)
    return q11


def ideal_answers(truth: Mapping[str, Any]) -> np.ndarray:
    """Conditional answer shares of an attentive volunteer seeing the galaxy perfectly.

    Args:
        truth: generating parameters of one galaxy (see :mod:`pipeline.simulate.galaxies.dataset`): ``type`` and,
            where they apply, ``bulge_to_total``, ``inclination`` (deg), ``apparent_q``, ``arms``, ``pitch``
            (deg), ``arm_strength``, ``bar``, ``bar_strength``, ``bulge_shape``, ``odd_feature``.

    Returns:
        ``(37,)`` float64 in Kaggle column order; each question's block sums to 1.
    """
    kind = truth["type"]
    bt = _nan_to(truth.get("bulge_to_total"), 0.3)
    incl = _nan_to(truth.get("inclination"), 0.0)
    q_app = _nan_to(truth.get("apparent_q"), 0.8)
    arms = int(_nan_to(truth.get("arms"), 0))
    arm_strength = _nan_to(truth.get("arm_strength"), 0.0)
    bar = int(_nan_to(truth.get("bar"), 0))
    bar_strength = _nan_to(truth.get("bar_strength"), 0.0)
    odd = truth.get("odd_feature") or "none"
    odd = "none" if odd != odd else odd  # NaN from a CSV round trip
    p: dict[str, np.ndarray] = {"Q1": _smooth_or_features(truth, bt, arms, arm_strength, bar, bar_strength)}
    edge = 0.94 if kind == "edge_on" else 0.03 + 0.9 * _sigmoid((incl - 72.0) / 4.0)
    p["Q2"] = np.array([edge, 1.0 - edge])
    barred = 0.15 + 0.8 * bar_strength if bar else 0.05
    p["Q3"] = np.array([barred, 1.0 - barred])
    if arms:
        spiral = 0.1 + 0.88 * arm_strength
    else:
        spiral = 0.3 if kind == "merger" else 0.06
    p["Q4"] = np.array([spiral, 1.0 - spiral])
    p["Q5"] = _softmax_distance(bt, (0.0, 0.12, 0.3, 0.6), 0.08)
    overlap = odd == "none" and bool(_nan_to(truth.get("close_neighbour"), 0))
    is_odd = 0.85 if odd != "none" else (NEIGHBOUR_ODD if overlap else 0.07)
    p["Q6"] = np.array([is_odd, 1.0 - is_odd])
    p["Q7"] = _softmax_distance(q_app, (0.95, 0.65, 0.30), 0.12)
    if odd in ODD_FEATURES:
        q8 = np.full(7, 0.14 / 6)
        q8[ODD_FEATURES.index("other")] += 0.08
        q8[ODD_FEATURES.index(odd)] = 0.78
    elif overlap:
        q8 = np.array(NEIGHBOUR_FEATURES)
    else:
        q8 = np.array([0.05, 0.02, 0.20, 0.15, 0.45, 0.05, 0.08])
    p["Q8"] = q8
    shape = truth.get("bulge_shape")
    if shape in BULGE_SHAPES:
        q9 = np.full(3, 0.09)
        q9[BULGE_SHAPES.index(shape)] = 0.82
    else:
        q9 = np.array([0.6, 0.1, 0.3])
    p["Q9"] = q9
    pitch = _nan_to(truth.get("pitch"), 20.0)
    p["Q10"] = _softmax_distance(pitch, WINDING_PITCH, 5.0)
    p["Q11"] = _arm_count(arms)
    out = np.concatenate([p[q.name] / p[q.name].sum() for q in QUESTIONS])
    assert out.shape == (N_ANSWERS,)
    return out


def _confused_vector() -> np.ndarray:
    return np.concatenate(
        [np.asarray(CONFUSED_ANSWERS[q.name], float) / sum(CONFUSED_ANSWERS[q.name]) for q in QUESTIONS]
    )


def simulate_votes(
    truth: Mapping[str, Any], rng: np.random.Generator, n_volunteers: int | None = None
) -> np.ndarray:
    """Walk ``n_volunteers`` simulated volunteers through the tree for one galaxy.

    Args:
        truth: the galaxy's parameters (:func:`ideal_answers`), plus ``snr_r`` and ``resolution`` for
            :func:`confusion` (or ``confusion`` directly).
        rng: random stream of this galaxy.
        n_volunteers: how many classify it; default Poisson(40), at least 10.

    Returns:
        ``(37,)`` int64 vote counts in Kaggle column order.
    """
    if n_volunteers is None:
        n_volunteers = max(10, int(rng.poisson(MEAN_VOLUNTEERS)))
    c = truth.get("confusion")
    if c is None:
        c = confusion(_nan_to(truth.get("snr_r"), 0.0), _nan_to(truth.get("resolution"), 0.0))
    ideal, confused = ideal_answers(truth), _confused_vector()
    c_v = np.clip(c + rng.normal(0.0, VOLUNTEER_SCATTER, n_volunteers), 0.0, 1.0)
    votes = np.zeros(N_ANSWERS, dtype=np.int64)
    reached = {"root": np.ones(n_volunteers, dtype=bool)}
    for q in QUESTIONS:
        sl = QUESTION_SLICES[q.name]
        who = reached["root"] if q.parent is None else reached[q.parent]
        k = sl.stop - sl.start
        probs = (1.0 - c_v[:, None]) * ideal[sl] + c_v[:, None] * confused[sl]
        probs = (1.0 - RANDOM_CLICK) * probs + RANDOM_CLICK / k
        cdf = np.cumsum(probs, axis=1)
        u = rng.random(n_volunteers) * cdf[:, -1]
        answer = np.minimum((u[:, None] > cdf).sum(axis=1), k - 1)
        answer = np.where(who, answer, -1)
        for j, column in enumerate(q.answers):
            hit = answer == j
            votes[sl.start + j] = int(hit.sum())
            reached[column] = hit
    return votes


def kaggle_table(ids: Sequence[int], votes: np.ndarray) -> pd.DataFrame:
    """Kaggle ``training_solutions`` table: ``GalaxyID`` and the 37 cumulative fractions.

    Args:
        ids: N galaxy ids.
        votes: ``(N, 37)`` vote counts.
    """
    cum = cumulative_from_votes(np.asarray(votes, dtype=np.float64).reshape(-1, N_ANSWERS))
    table = pd.DataFrame(cum, columns=list(ANSWER_COLUMNS))
    table.insert(0, "GalaxyID", np.asarray(ids, dtype=np.int64))
    return table


def votes_table(ids: Sequence[int], votes: np.ndarray) -> pd.DataFrame:
    """Raw vote counts: ``GalaxyID`` and the 37 Kaggle answer columns as integers."""
    table = pd.DataFrame(
        np.asarray(votes, dtype=np.int64).reshape(-1, N_ANSWERS), columns=list(ANSWER_COLUMNS)
    )
    table.insert(0, "GalaxyID", np.asarray(ids, dtype=np.int64))
    return table


def gz2_table(
    ids: Sequence[int], votes: np.ndarray, n_volunteers: Sequence[int] | None = None
) -> pd.DataFrame:
    """GZ2-format catalog: ``GalaxyID``, ``total_classifications``, ``total_votes`` and per answer
    ``<t..._a...>_count`` and ``<t..._a...>_fraction`` (share of that task's votes, 0 if the task got none).

    Args:
        ids: N galaxy ids.
        votes: ``(N, 37)`` vote counts.
        n_volunteers: N volunteer counts (default: the Q1 vote total).
    """
    v = np.asarray(votes, dtype=np.int64).reshape(-1, N_ANSWERS)
    fractions = conditional_from_votes(v.astype(np.float64))
    data: dict[str, Any] = {"GalaxyID": np.asarray(ids, dtype=np.int64)}
    q1 = QUESTION_SLICES["Q1"]
    data["total_classifications"] = (
        np.asarray(n_volunteers, dtype=np.int64) if n_volunteers is not None else v[:, q1].sum(axis=1)
    )
    data["total_votes"] = v.sum(axis=1)
    for j, name in enumerate(GZ2_ANSWER_NAMES):
        data[f"{name}_count"] = v[:, j]
        data[f"{name}_fraction"] = fractions[:, j]
    return pd.DataFrame(data)
