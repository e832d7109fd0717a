"""Fuzz FITS stamp files (six layouts, plain and gzipped) and labelled triplets (a folder + labels.csv)
through the real ingest driver: mutated and odd inputs mixed with valid ones (see tests/fuzz/check.py for
what every case must satisfy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.ingest import FitsSource, LabelledSource, input_name
from pipeline.io import fits_stem
from tests.fuzz.check import Case
from tests.fuzz.corpus import (
    FITS_LAYOUTS,
    LAYOUT_EXTENSIONS,
    TRIPLET_EXTENSIONS,
    file_bytes,
    hex_name,
    ingest_and_judge,
    layout_bytes,
    run_ingest,
    suffix_of,
    triplet_files,
)
from tests.fuzz.mutate import FS_CASES, fits_mutant, write_fs_case

GOOD_FILES = 4
BAD_FILES = 6
FS_FILES = 3


def _pick(rng: np.random.Generator, n: int) -> list[Path]:
    files = triplet_files()
    return [files[int(i)] for i in rng.choice(len(files), n, replace=False)]


def _fits_round(root: Path, rng: np.random.Generator) -> tuple[list[Case], list[str]]:
    layout = FITS_LAYOUTS[int(rng.integers(0, len(FITS_LAYOUTS)))]
    suffix, gz = suffix_of(layout), layout.endswith("gz")
    (root / "00").mkdir(parents=True)
    (root / "mix").mkdir()
    originals = _pick(rng, GOOD_FILES + 1)
    good: list[Path] = [root / "00" / f"anchor{suffix}"]  # first in reading order: fixes the channels
    good += [root / "mix" / f"{hex_name(rng)}{suffix}" for _ in originals[1:]]
    for path, original in zip(good, originals, strict=True):
        path.write_bytes(file_bytes(original, layout))
    cases = [Case(str(p), "none", "ingest") for p in good]
    source = FitsSource(
        inputs=[root], extensions=LAYOUT_EXTENSIONS.get(layout), stamp_shape=(63, 63), size_policy="pad"
    )
    known = {c.key for c in cases}

    def key_of(name: str) -> str | None:
        return name if name in known else None

    clean, problems = run_ingest(source, root.parent / f"{root.name}-clean" / "stamps.h5", key_of)
    problems = [f"[clean {layout}] {p}" for p in problems]
    for _ in range(BAD_FILES):
        i = int(rng.integers(0, len(good)))
        mutant = fits_mutant(layout_bytes(originals[i], layout), rng, gz)
        path = root / "mix" / f"{hex_name(rng)}{suffix}"
        path.write_bytes(mutant.data or b"")
        base = str(good[i]) if mutant.keeps_pixels else None
        cases.append(Case(str(path), f"{layout}/{mutant.mutation}", mutant.expect, base, path.name))
    for _ in range(FS_FILES):
        i = int(rng.integers(0, len(good)))
        kind = FS_CASES[int(rng.integers(0, len(FS_CASES)))]
        path, mutation, expect = write_fs_case(kind, root / "mix", hex_name(rng), suffix, good[i], rng)
        name = input_name(path)
        cases.append(Case(name, f"{layout}/{mutation}", expect, str(good[i]), Path(name).name))
    known = {c.key for c in cases}
    return cases, problems + ingest_and_judge(
        source, root.parent / f"{root.name}-out" / "stamps.h5", key_of, cases, clean, restore=root
    )


def test_fits(fuzz, tmp_path):
    fuzz.run(_fits_round, tmp_path, default_rounds=3)


# ------------------------------------------------------------------------------------ labelled triplets
BAD_LABELS = ("nan", "abc", "300", "1.5", "", "-1e9")


def _write_labels(folder: Path, rows: list[tuple[str, str]]) -> None:
    pd.DataFrame({"id": [r[0] for r in rows], "real": [r[1] for r in rows]}).to_csv(
        folder / "labels.csv", index=False
    )


def _labelled_round(root: Path, rng: np.random.Generator) -> tuple[list[Case], list[str]]:
    root.mkdir(parents=True)
    originals = _pick(rng, GOOD_FILES + 1)
    ids = ["0000anchor"] + [hex_name(rng) for _ in originals[1:]]
    good = {cid: root / f"{cid}.fits.gz" for cid in ids}
    for path, original in zip(good.values(), originals, strict=True):
        path.write_bytes(original.read_bytes())
    rows = [(cid, str(int(rng.integers(0, 2)))) for cid in ids]
    _write_labels(root, rows)
    cases = [Case(cid, "none", "ingest") for cid in ids]
    source = LabelledSource(folder=root, extensions=TRIPLET_EXTENSIONS)
    known = set(ids)

    def key_of(name: str) -> str | None:
        key = fits_stem(Path(name).name)
        return key if key in known else None

    clean, problems = run_ingest(source, root.parent / f"{root.name}-clean" / "stamps.h5", key_of)
    problems = [f"[clean labelled] {p}" for p in problems]
    for _ in range(BAD_FILES):
        i = int(rng.integers(0, len(ids)))
        mutant = fits_mutant(layout_bytes(originals[i], "mef"), rng, gz=True)
        cid = hex_name(rng)
        (root / f"{cid}.fits.gz").write_bytes(mutant.data or b"")
        rows.append((cid, "1"))
        base = ids[i] if mutant.keeps_pixels else None
        cases.append(Case(cid, f"labelled/{mutant.mutation}", mutant.expect, base, cid))
    for _ in range(FS_FILES):
        i = int(rng.integers(0, len(ids)))
        kind = FS_CASES[int(rng.integers(0, len(FS_CASES)))]
        path, mutation, expect = write_fs_case(kind, root, hex_name(rng), ".fits.gz", good[ids[i]], rng)
        cid = fits_stem(Path(input_name(path)).name)
        if mutation != "name:non_utf8":  # its id cannot be written in a UTF-8 labels.csv
            rows.append((fits_stem(path.name), "0"))
        cases.append(Case(cid, f"labelled/{mutation}", expect, ids[i], cid))
    if rng.random() < 0.4:  # bad label rows in some rounds only, so that file cases show in the others
        cases += _label_mutations(root, rng, rows, good, ids)
    _write_labels(root, rows)
    known = {c.key for c in cases}
    return cases, problems + ingest_and_judge(
        source, root.parent / f"{root.name}-out" / "stamps.h5", key_of, cases, clean, restore=root
    )


def _label_mutations(
    root: Path, rng: np.random.Generator, rows: list[tuple[str, str]], good: dict[str, Path], ids: list[str]
) -> list[Case]:
    """labels.csv rows without a file, files without a row, and rows with a bad label (their files valid)."""
    cases = []
    orphan = hex_name(rng)
    rows.append((orphan, "1"))
    cases.append(Case(orphan, "labels/row_without_file", "reject", token=orphan))
    lonely = hex_name(rng)
    (root / f"{lonely}.fits.gz").write_bytes(good[ids[0]].read_bytes())
    cases.append(Case(lonely, "labels/file_without_row", "reject", token=lonely))
    bad = hex_name(rng)
    (root / f"{bad}.fits.gz").write_bytes(good[ids[-1]].read_bytes())
    value = BAD_LABELS[int(rng.integers(0, len(BAD_LABELS)))]
    rows.append((bad, value))
    cases.append(Case(bad, f"labels/bad_value={value!r}", "reject", token=bad))
    return cases


def test_labelled(fuzz, tmp_path):
    fuzz.run(_labelled_round, tmp_path, default_rounds=3)
