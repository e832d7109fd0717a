"""Write the synthetic GZ2 and GZ DECaLS fixture tables of this folder (run once; output is committed).

Volunteers are simulated walking each decision tree with seeded random answer preferences, so vote counts
are consistent with the tree (a question's votes = its parent answer's votes). Column names are the real
ones of Willett et al. 2013 / Hart et al. 2016 (GZ2) and Walmsley et al. 2022 (GZ DECaLS volunteers);
the ids, positions and numbers are made up.

    .venv/bin/python tests/data/galaxy_zoo/make_synthetic_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, QUESTIONS
from data_catalogs.galaxy_zoo_schemas import DECALS_SCHEMA, GZ2_ANSWER_STEMS, GZ2_TASKS

HERE = Path(__file__).resolve().parent


def _walk(rng, prefs, start, next_of):
    """Answers chosen by one volunteer: prefs[q] are answer probabilities, next_of(answer) the next questions."""
    chosen, todo = [], list(start)
    while todo:
        q = todo.pop(0)
        a = int(rng.choice(len(prefs[q]), p=prefs[q]))
        chosen.append((q, a))
        todo = next_of(q, a) + todo
    return chosen


def gz2(rng, n_galaxies=4, n_volunteers=40) -> pd.DataFrame:
    # GZ2 flow in Kaggle question numbering: star/artifact ends the classification; Q6 after each branch.
    def next_of(q, a):
        return {
            (1, 0): [7, 6], (1, 1): [2], (1, 2): [],
            (2, 0): [9, 6], (2, 1): [3, 4],
            (4, 0): [10, 11, 5, 6], (4, 1): [5, 6],
            (6, 0): [8],
        }.get((q, a), [])  # fmt: skip

    rows = []
    for g in range(n_galaxies):
        prefs = {i + 1: rng.dirichlet(np.ones(len(q.answers))) for i, q in enumerate(QUESTIONS)}
        votes = np.zeros(37, int)
        offsets = np.cumsum([0] + [len(q.answers) for q in QUESTIONS])
        for _ in range(n_volunteers):
            for q, a in _walk(rng, prefs, [1], next_of):
                votes[offsets[q - 1] + a] += 1
        row = {"dr7objid": 587722981741363000 + 17 * g, "ra": 150.0 + g, "dec": 2.0 + 0.5 * g}
        row["total_classifications"] = n_volunteers
        row["total_votes"] = int(votes.sum())
        for k, (task, answers) in enumerate(GZ2_TASKS):
            sl = slice(offsets[k], offsets[k + 1])
            total = votes[sl].sum()
            frac = votes[sl] / total if total else np.zeros(len(answers))
            weighted = frac * rng.uniform(0.9, 1.1, len(answers))
            weighted = weighted / weighted.sum() if total else weighted
            debiased = np.clip(frac * rng.uniform(0.8, 1.3, len(answers)), 0, 1)
            for j, answer in enumerate(answers):
                stem = f"{task}_{answer}"
                row[f"{stem}_count"] = int(votes[offsets[k] + j])
                row[f"{stem}_weighted_fraction"] = round(float(weighted[j]), 3)
                row[f"{stem}_fraction"] = round(float(frac[j]), 3)
                row[f"{stem}_debiased"] = round(float(debiased[j]), 3)
        rows.append(row)
    assert len(GZ2_ANSWER_STEMS) == len(ANSWER_COLUMNS)
    return pd.DataFrame(rows)


def decals(rng, n_galaxies=4, n_volunteers=30) -> pd.DataFrame:
    qs = DECALS_SCHEMA.questions
    names = [q.name for q in qs]
    children = {}
    for q in qs:
        if q.parent:
            children.setdefault(q.parent, []).append(q.name)

    def next_of(qname, a):
        q = qs[names.index(qname)]
        nxt = list(children.get(f"{q.name}_{q.answers[a]}", []))
        if qname == "smooth-or-featured" and q.answers[a] != "artifact":
            return [*nxt, "merging"]
        return nxt

    rows = []
    for g in range(n_galaxies):
        prefs = {q.name: rng.dirichlet(np.ones(len(q.answers))) for q in qs}
        counts = {q.name: np.zeros(len(q.answers), int) for q in qs}
        for _ in range(n_volunteers):
            for qname, a in _walk(rng, prefs, ["smooth-or-featured"], next_of):
                counts[qname][a] += 1
        row = {"iauname": f"J10{g:02d}00.00+0{g}3000.0", "ra": 150.0 + g / 100, "dec": g + 0.5}
        for q in qs:
            total = int(counts[q.name].sum())
            row[f"{q.name}_total-votes"] = total
            for j, a in enumerate(q.answers):
                frac = counts[q.name][j] / total if total else np.nan
                row[f"{q.name}_{a}"] = int(counts[q.name][j])
                row[f"{q.name}_{a}_fraction"] = frac
                row[f"{q.name}_{a}_debiased"] = np.nan if not total else float(np.clip(frac * 1.1, 0, 1))
        rows.append(row)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    rng = np.random.default_rng(20130901)
    gz2(rng).to_csv(HERE / "gz2_synthetic.csv", index=False)
    decals(rng).to_csv(HERE / "gz_decals_synthetic.csv", index=False)
