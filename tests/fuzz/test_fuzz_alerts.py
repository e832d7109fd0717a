"""Fuzz alert packets (real ZTF and Rubin packets re-encoded as null, deflate and snappy containers of 1-3
packets, and mutated) through the real ingest driver (``AlertSource``) and the real scoring driver
(``pipeline.alerts.score_alert_files`` with a real, untrained ``ztf`` real-bogus checkpoint).

Fink Parquet is not fuzzed: the alert readers take Avro files only (``pipeline.alerts.decode``:
``ALERT_SUFFIXES``); a DataFrame of packets is scored by ``pipeline.alerts.frames``, not read from files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.alerts import score_alert_files
from pipeline.ingest import AlertSource, input_name
from tests.fuzz.avro_corpus import (
    CORRUPT_REASONS,
    SNAPPY_INSTALLED,
    FileCase,
    PacketOutcomes,
    avro_mutant,
    container,
    judge_alerts,
    packets,
    sample_files,
)
from tests.fuzz.check import crash_problem, read_rejects
from tests.fuzz.corpus import hex_name, store_items
from tests.fuzz.mutate import FS_CASES, restore_modes, write_fs_case

BAD_FILES = 6
FS_FILES = 3


def _good_files(folder: Path, survey: str, rng: np.random.Generator) -> list[Path]:
    """An anchor (a real file, first in reading order), a real file, and three re-encoded containers."""
    (folder / "00").mkdir(parents=True)
    (folder / "mix").mkdir()
    files = sample_files(survey)
    chosen = [files[int(i)] for i in rng.choice(len(files), 2, replace=False)]
    good = [folder / "00" / "anchor.avro", folder / "mix" / f"{hex_name(rng)}.avro"]
    for path, original in zip(good, chosen, strict=True):
        shutil.copy(original, path)
    pool = packets(survey)
    for codec in ("null", "deflate", "null" if rng.random() < 0.5 else "deflate"):
        first = pool[int(rng.integers(0, len(pool)))]
        same = [p for p in pool if p[0] is first[0]]  # one writer schema per container
        picks = [first] + [same[int(i)] for i in rng.choice(len(same), int(rng.integers(0, 3)))]
        path = folder / "mix" / f"{hex_name(rng)}-{codec}.avro"
        path.write_bytes(container(picks[0][0], [r for _, r in picks], codec))
        good.append(path)
    return good


def _bad_files(folder: Path, good: list[Path], survey: str, rng: np.random.Generator) -> list[FileCase]:
    cases = []
    for _ in range(BAD_FILES):
        base = good[int(rng.integers(0, len(good)))]
        mutant = avro_mutant(base.read_bytes(), rng)
        path = folder / "mix" / f"{hex_name(rng)}.avro"
        path.write_bytes(mutant.data or b"")
        cases.append(
            FileCase(
                str(path),
                f"{survey}/{mutant.mutation}",
                mutant.expect,
                str(base),
                mutant.keeps_pixels,
                path.name,
            )
        )
    for _ in range(FS_FILES):
        base = good[int(rng.integers(0, len(good)))]
        kind = FS_CASES[int(rng.integers(0, len(FS_CASES)))]
        path, mutation, expect = write_fs_case(kind, folder / "mix", hex_name(rng), ".avro", base, rng)
        name = input_name(path)
        cases.append(FileCase(name, f"{survey}/{mutation}", expect, str(base), True, Path(name).name))
    schema, record = packets(survey)[int(rng.integers(0, len(packets(survey))))]
    snappy = folder / "mix" / f"{hex_name(rng)}-snappy.avro"
    snappy.write_bytes(container(schema, [record], "snappy"))
    cases.append(
        FileCase(
            str(snappy),
            f"{survey}/codec_snappy",
            "ingest" if SNAPPY_INSTALLED else "reject",
            token=snappy.name,
        )
    )
    for skipped in (f".{hex_name(rng)}.avro", f"{hex_name(rng)}.avro.partial", f"{hex_name(rng)}.tmp.avro"):
        shutil.copy(good[0], folder / "mix" / skipped)
        cases.append(FileCase(str(folder / "mix" / skipped), f"{survey}/temporary_name", "skip"))
    return cases


def _snappy_problems(cases: list[FileCase], got: PacketOutcomes) -> list[str]:
    """A snappy file we cannot decode is refused for the missing library, never called corrupt."""
    problems = []
    for case in cases:
        if not case.mutation.endswith("codec_snappy") or SNAPPY_INSTALLED:
            continue
        for outcomes in got.files.get(case.key, {}).values():
            for reason, error in outcomes:
                if reason in CORRUPT_REASONS or "snappy" not in error.lower():
                    problems.append(
                        f"[{case.mutation}] {case.key!r}: a valid snappy file without the codec library is "
                        f"rejected as {reason!r} ({error[:200]}); expected a named missing-library reason"
                    )
    return problems


def _cases(folder: Path, survey: str, rng: np.random.Generator) -> tuple[list[Path], list[FileCase]]:
    good = _good_files(folder, survey, rng)
    cases = [FileCase(str(p), f"{survey}/none", "ingest", str(p), True, p.name) for p in good]
    return good, cases


# --------------------------------------------------------------------------------------------- ingest
def _ingest_outcomes(
    source: AlertSource, out: Path, known: set[str]
) -> tuple[PacketOutcomes | None, list[str]]:
    from pipeline.ingest import ingest_source

    try:
        report = ingest_source(source, out)
    except Exception as err:
        return None, [crash_problem(err)]
    got = PacketOutcomes()
    items = store_items(report)
    rejects = read_rejects(report.rejects)
    for source_name, dig in items:
        got.add(source_name, known, ("ingest", dig))
    return got, _tally_rejects(got, known, rejects, report, report.n_ingested, len(items))


def _tally_rejects(
    got, known: set[str], rejects: pd.DataFrame, report, n_done: int, n_rows: int
) -> list[str]:
    """Add each rejects.csv row to ``got``; the count problems of a report that ingested or scored
    ``n_done`` inputs into ``n_rows`` output rows (inputs = done + rejected, and as many rows written)."""
    for source_name, reason, error in zip(
        rejects["source"], rejects["reason"], rejects["error"], strict=True
    ):
        got.add(source_name, known, (reason, error))
    problems = []
    if report.n_inputs != n_done + report.n_rejected:
        problems.append(f"counts do not add up: {report.summary()}")
    if (n_done, report.n_rejected) != (n_rows, len(rejects)):
        problems.append(f"report {report.summary()} but the outputs hold {n_rows} and {len(rejects)} rows")
    return problems


def _alert_ingest_round(root: Path, rng: np.random.Generator) -> tuple[list[FileCase], list[str]]:
    survey = "ztf" if rng.random() < 0.75 else "rubin"
    good, cases = _cases(root, survey, rng)
    source = AlertSource(inputs=[root])
    clean, problems = _ingest_outcomes(
        source, root.parent / f"{root.name}-clean" / "stamps.h5", {c.key for c in cases}
    )
    problems = [f"[clean {survey}] {p}" for p in problems]
    cases += _bad_files(root, good, survey, rng)
    try:
        got, counted = _ingest_outcomes(
            source, root.parent / f"{root.name}-out" / "stamps.h5", {c.key for c in cases}
        )
    finally:
        restore_modes(root)
    if got is None or clean is None:
        return cases, problems + counted
    judged = judge_alerts(cases, got, clean, lambda a, b: a == b)
    return cases, problems + counted + judged + _snappy_problems(cases, got)


def test_alert_ingest(fuzz, tmp_path):
    fuzz.run(_alert_ingest_round, tmp_path, default_rounds=3)


# -------------------------------------------------------------------------------------------- scoring
@pytest.fixture(scope="module")
def rb_scorer(tmp_path_factory):
    """A real ``ztf`` real-bogus checkpoint (untrained, seeded weights) loaded as a Scorer."""
    from models.checkpoints import load_checkpoint
    from pipeline.scoring import Scorer
    from tests.pipeline.alerts.alert_helpers import write_ztf_checkpoint

    module, card = load_checkpoint(write_ztf_checkpoint(tmp_path_factory.mktemp("rb") / "model.ckpt"))
    return Scorer(module, card)


def _score_outcomes(
    scorer, root: Path, out: Path, known: set[str]
) -> tuple[PacketOutcomes | None, list[str]]:
    try:
        report = score_alert_files([root], scorer, out, batch_alerts=8)
    except Exception as err:
        return None, [crash_problem(err)]
    got = PacketOutcomes()
    scored_path = out / "scored.parquet"
    scored = pd.read_parquet(scored_path, columns=["source", "rb"]) if scored_path.exists() else None
    rows = [] if scored is None else list(zip(scored["source"], scored["rb"], strict=True))
    for source_name, rb in rows:
        got.add(str(source_name), known, ("ingest", float(rb)))
    rejects = read_rejects(out / "rejects.csv")
    return got, _tally_rejects(got, known, rejects, report, report.n_scored, len(rows))


def _scoring_round(scorer, root: Path, rng: np.random.Generator) -> tuple[list[FileCase], list[str]]:
    good, cases = _cases(root, "ztf", rng)
    rubin_good = _good_files(root / "rubin", "rubin", rng)  # scoring takes both surveys in one run
    cases += [FileCase(str(p), "rubin/none", "ingest", str(p), True, p.name) for p in rubin_good]
    known = {c.key for c in cases}
    clean, problems = _score_outcomes(scorer, root, root.parent / f"{root.name}-clean", known)
    problems = [f"[clean scoring] {p}" for p in problems]
    cases += _bad_files(root, good, "ztf", rng)
    try:
        got, counted = _score_outcomes(scorer, root, root.parent / f"{root.name}-out", {c.key for c in cases})
    finally:
        restore_modes(root)
    if got is None or clean is None:
        return cases, problems + counted
    judged = judge_alerts(cases, got, clean, lambda a, b: abs(a - b) <= 1e-5)
    return cases, problems + counted + judged + _snappy_problems(cases, got)


def test_alert_scoring(fuzz, tmp_path, rb_scorer):
    fuzz.run(lambda folder, rng: _scoring_round(rb_scorer, folder, rng), tmp_path, default_rounds=2)
