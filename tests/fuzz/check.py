"""What every fuzz case must satisfy, checked against the real outputs of a run (store + ``rejects.csv``, or
an alert scoring folder), and the failure messages that replay it.

A run mixes valid inputs with mutated ones. For every case: no exception escapes the library driver;
every valid input has the outcome it had in a clean run of the valid inputs alone (same pixels); every bad
input has exactly one outcome, a named reject (or, when the mutation may leave it valid, an ingest);
inputs = ingested + rejected, and the report's counts are the rows written.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: A reject reason must be a snake_case code, and not one that hides what went wrong.
REASON_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
VAGUE_REASONS = {"error", "exception", "unknown", "internal", "corrupt", "failed", "other"}


@dataclass
class Case:
    """One input of a fuzz run.

    Attributes:
        key: how the input is named in the outputs (after the kind's key function).
        mutation: ``none`` for a valid input, else what was done (``truncate@12of400``...).
        expect: ``ingest``, ``reject``, ``either`` or ``skip`` (not an input at all, e.g. a temporary name).
        base: key of the clean input it was made from, when its pixels must equal that input's.
        token: a string its reject message must contain (the file name or id); None: not checked.
    """

    key: str
    mutation: str
    expect: str
    base: str | None = None
    token: str | None = None


@dataclass
class Outcomes:
    """What a run did, per case key: ingested digests and rejects ``(reason, error)``."""

    ingested: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    rejected: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    unattributed: list[str] = field(default_factory=list)

    def n(self, key: str) -> int:
        return len(self.ingested.get(key, [])) + len(self.rejected.get(key, []))


def digest(*parts: object) -> str:
    """A short digest of arrays and values (pixels, mask, ids)."""
    h = hashlib.sha1()
    for part in parts:
        h.update(
            np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode()
        )
    return h.hexdigest()[:16]


def read_rejects(path: str | Path) -> pd.DataFrame:
    """``rejects.csv`` as strings (empty frame when absent)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({"source": [], "reason": [], "error": []}, dtype=str)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def collect(
    ingested: Iterable[tuple[str, str]],
    rejects: pd.DataFrame,
    key_of: Callable[[str], str | None],
) -> Outcomes:
    """Outcomes from ``(source, digest)`` of the ingested stamps and the rejects table; ``key_of`` maps a
    ``source`` to its case key (None: cannot be attributed)."""
    out = Outcomes()
    for source, dig in ingested:
        key = key_of(source)
        (out.ingested[key].append(dig) if key is not None else out.unattributed.append(f"ingested {source}"))
    for source, reason, error in zip(rejects["source"], rejects["reason"], rejects["error"], strict=True):
        key = key_of(source)
        if key is None:
            out.unattributed.append(f"rejected {source} ({reason})")
        else:
            out.rejected[key].append((reason, error))
    return out


def reason_problem(reason: str) -> str | None:
    """Why a reject reason is not a named reason (None when it is)."""
    if not REASON_PATTERN.match(reason or ""):
        return f"reason {reason!r} is not a snake_case code"
    if reason in VAGUE_REASONS:
        return f"reason {reason!r} does not name the problem"
    return None


def judge(cases: list[Case], outcomes: Outcomes, clean: dict[str, str]) -> list[str]:
    """Problems of a run: each case's outcome against its expectation, valid inputs against the clean run
    (``clean``: key -> digest of the clean ingest). Empty when the run is right."""
    problems = [f"output not attributable to any input: {u}" for u in outcomes.unattributed]
    known = {c.key for c in cases}
    for key in set(outcomes.ingested) | set(outcomes.rejected):
        if key not in known:
            problems.append(f"output for an unknown input {key!r}")
    for case in cases:
        problems += [f"[{case.mutation}] {case.key!r}: {p}" for p in _case_problems(case, outcomes, clean)]
    return problems


def _case_problems(case: Case, outcomes: Outcomes, clean: dict[str, str]) -> list[str]:
    ingested = outcomes.ingested.get(case.key, [])
    rejected = outcomes.rejected.get(case.key, [])
    n = len(ingested) + len(rejected)
    if case.expect == "skip":
        return [f"not an input, yet it has {n} outcome(s)"] if n else []
    if n != 1:
        what = [f"reject {r}: {e[:120]}" for r, e in rejected] + [f"ingested x{len(ingested)}"] * bool(
            ingested
        )
        return [f"expected exactly one outcome, got {n}: {what}"]
    problems = []
    if rejected:
        reason, error = rejected[0]
        if case.expect == "ingest":
            problems.append(f"a valid input was rejected: {reason}: {error[:300]}")
        if (bad := reason_problem(reason)) is not None:
            problems.append(bad)
        if case.token and case.token not in error:
            problems.append(f"reject message does not name the input ({case.token!r}): {error[:300]}")
    else:
        if case.expect == "reject":
            problems.append("a bad input was ingested")
        base = case.base if case.base is not None else (case.key if case.mutation == "none" else None)
        if base is not None and base in clean and ingested[0] != clean[base]:
            problems.append(f"ingested pixels differ from the clean run of {base!r}")
        elif base is not None and base not in clean and case.mutation == "none":
            problems.append("valid input not ingested in the clean run either (fixture problem)")
    base = case.base or case.key
    if case.mutation == "none" and rejected and base in clean:
        problems.append("valid input ingested in the clean run but rejected next to bad inputs")
    return problems


def counts_problems(
    n_inputs: int, n_ingested: int, n_rejected: int, outcomes: Outcomes, cases: list[Case]
) -> list[str]:
    """The report's counts against the rows written and the cases (inputs = ingested + rejected)."""
    problems = []
    rows_in = sum(len(v) for v in outcomes.ingested.values()) + sum(
        1 for u in outcomes.unattributed if u.startswith("ingested")
    )
    rows_rej = sum(len(v) for v in outcomes.rejected.values()) + sum(
        1 for u in outcomes.unattributed if u.startswith("rejected")
    )
    if n_inputs != n_ingested + n_rejected:
        problems.append(
            f"counts do not add up: inputs={n_inputs} != ingested={n_ingested} + rejected={n_rejected}"
        )
    if (n_ingested, n_rejected) != (rows_in, rows_rej):
        problems.append(
            f"report says ingested={n_ingested} rejected={n_rejected}; the outputs hold {rows_in} and {rows_rej} rows"
        )
    expected = sum(1 for c in cases if c.expect != "skip")
    if n_inputs != expected:
        problems.append(f"inputs={n_inputs}, but {expected} inputs were given")
    return problems


def crash_problem(err: BaseException) -> str:
    """The problem of an exception that escaped the driver (type, message, innermost frames)."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/pipeline/" in f.filename or "/data_catalogs/" in f.filename]
    shown = frames[-2:] if not ours or ours[-1] in frames[-2:] else [ours[-1], *frames[-2:]]
    where = " -> ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in shown)
    return f"exception escaped: {type(err).__name__}: {str(err)[:300]} (at {where})"
