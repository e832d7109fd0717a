"""Fuzz the catalog-driven sources through the real ingest driver: Galaxy Zoo catalogs (Kaggle rows of
vote fractions, from tests/data/galaxy_zoo) with their JPEG/PNG images, and cutout catalogs (a FITS image
with a WCS + a CSV of sky or pixel positions). Bad rows and bad images are mixed with valid ones; a
catalog or image that cannot be used at all must fail with a named error."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from pipeline.ingest import CutoutSource, GalaxyZooSource, ingest_source
from tests.fuzz.check import Case, crash_problem
from tests.fuzz.corpus import ingest_and_judge, run_ingest
from tests.fuzz.mutate import FS_CASES, flip, truncate, write_fs_case
from tests.pipeline.ingest.test_galaxy_zoo_ingest import KAGGLE

SIZE = 32
BAD_VALUES = ("nan", "inf", "-inf", "-0.3", "1.7", "abc", "", "1e400")
BAD_IDS = ("{id}.5", "", "nan", "-{id}", "{id}e3", "0x{id}")


def _image_bytes(rng: np.random.Generator, fmt: str, size: int = SIZE) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def _write_catalog(path: Path, rows: list[dict[str, str]]) -> None:
    pd.DataFrame(rows, dtype=object).to_csv(path, index=False)


def _gz_image_case(folder: Path, gid: str, rng: np.random.Generator, good: Path) -> tuple[str, str, bool]:
    """A mutated or odd image for the (valid) row ``gid``: ``(mutation, expect, keeps_pixels)``."""
    choice = int(rng.integers(0, 5))
    data = good.read_bytes()
    path = folder / f"{gid}{good.suffix}"
    if choice == 0:
        mutant = truncate(data, rng, reject_before=len(data) - 16)
    elif choice == 1:
        mutant = flip(data, rng, 0, len(data), "image", "either")
    elif choice == 2:
        path.write_bytes(_image_bytes(rng, "PNG", SIZE + 3))
        return "image_wrong_size", "reject", False
    elif choice == 3:
        return "image_missing", "reject", False
    else:
        kind = FS_CASES[int(rng.integers(0, len(FS_CASES)))]
        made, mutation, expect = write_fs_case(kind, folder, gid, good.suffix, good, rng)
        if made.name != path.name:  # an odd name: the row's image ({id}.jpg) is not there
            expect = "reject"
        return mutation, expect, True
    path.write_bytes(mutant.data or b"")
    return f"image_{mutant.mutation}", mutant.expect, False


def _galaxy_zoo_round(root: Path, rng: np.random.Generator) -> tuple[list[Case], list[str]]:
    images = root / "images"
    images.mkdir(parents=True)
    base = pd.read_csv(KAGGLE, dtype=str, keep_default_na=False).to_dict("records")
    answer_columns = [c for c in base[0] if c != "GalaxyID"]
    next_id = iter(range(400000 + 1000 * int(rng.integers(0, 500)), 10**7))

    def row(gid: str) -> dict[str, str]:
        return {**base[int(rng.integers(0, len(base)))], "GalaxyID": gid}

    good_ids = [str(next(next_id)) for _ in range(5)]
    good_images = {}
    for k, gid in enumerate(good_ids):
        good_images[gid] = images / f"{gid}.{'png' if k % 2 else 'jpg'}"
        good_images[gid].write_bytes(_image_bytes(rng, "PNG" if k % 2 else "JPEG"))
    rows = [row(gid) for gid in good_ids]
    _write_catalog(root / "clean.csv", rows)
    cases = [Case(gid, "none", "ingest", token=gid) for gid in good_ids]
    by_path = {str(p): gid for gid, p in good_images.items()}

    def key_of(name: str) -> str | None:
        return by_path.get(name, name if name in known else None)

    known = set(good_ids)
    source = GalaxyZooSource(catalog=root / "clean.csv", images_dir=images, stamp_shape=(SIZE, SIZE))
    clean, problems = run_ingest(source, root / "clean" / "stamps.h5", key_of)
    problems = [f"[clean galaxy_zoo] {p}" for p in problems]
    bad_rows = []
    for _ in range(4):  # bad catalog rows, their images valid
        gid = str(next(next_id))
        shutil.copy(good_images[good_ids[0]], images / f"{gid}.jpg")
        bad = row(gid)
        column = answer_columns[int(rng.integers(0, len(answer_columns)))]
        value = BAD_VALUES[int(rng.integers(0, len(BAD_VALUES)))]
        bad[column] = value
        bad_rows.append(bad)
        cases.append(Case(gid, f"row_value:{column}={value!r}", "reject", token=gid))
    for pick in rng.choice(len(BAD_IDS), 2, replace=False):  # bad ids (no image under them), distinct
        gid = BAD_IDS[int(pick)].format(id=next(next_id))
        bad_rows.append(row(gid))
        cases.append(Case(gid, f"row_id:{gid!r}", "reject"))  # named by its catalog row
    for _ in range(4):  # valid rows, bad images
        gid = str(next(next_id))
        template = good_images[good_ids[int(rng.integers(0, len(good_ids)))]]
        mutation, expect, keeps = _gz_image_case(images, gid, rng, template)
        bad_rows.append(row(gid))
        by_path[str(images / f"{gid}{template.suffix}")] = gid
        template_id = next(g for g, p in good_images.items() if p == template)
        cases.append(
            Case(
                gid,
                mutation if mutation.startswith("image_") else f"image_{mutation}",
                expect,
                template_id if keeps else None,
                gid,
            )
        )
    order = rng.permutation(len(bad_rows))
    mixed = rows[:1] + [bad_rows[i] for i in order] + rows[1:]
    _write_catalog(root / "mixed.csv", mixed)
    # a row without a usable id is named by the catalog and its 1-based row
    by_path.update({f"mixed.csv row {i}": r["GalaxyID"] for i, r in enumerate(mixed, start=1)})
    known = {c.key for c in cases}
    source = GalaxyZooSource(catalog=root / "mixed.csv", images_dir=images, stamp_shape=(SIZE, SIZE))
    return cases, problems + ingest_and_judge(
        source, root / "out" / "stamps.h5", key_of, cases, clean, restore=root
    )


def test_galaxy_zoo(fuzz, tmp_path):
    fuzz.run(_galaxy_zoo_round, tmp_path, default_rounds=3)


# --------------------------------------------------------------------------------------------- cutouts
IMAGE = 64
BAD_COORDS = ("nan", "inf", "-inf", "abc", "", "1e400", "400", "-91", "95", "1e12", "12:34:56")
ODD_IDS = ("nan", "", "1.5", "abc,def", "x" * 300, "g0", "-1")


def _cutout_image(path: Path, rng: np.random.Generator) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [IMAGE / 2, IMAGE / 2]
    wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
    data = rng.normal(100, 10, (IMAGE, IMAGE)).astype(np.float32)
    fits.PrimaryHDU(data, header=wcs.to_header()).writeto(path)
    return wcs


def _cutouts_round(root: Path, rng: np.random.Generator) -> tuple[list[Case], list[str]]:
    root.mkdir(parents=True)
    wcs = _cutout_image(root / "image.fits", rng)
    pixel_mode = rng.random() < 0.4
    cols = ("x", "y") if pixel_mode else ("ra", "dec")

    def position(x: float, y: float) -> dict[str, str]:
        if pixel_mode:
            return {"x": repr(float(x)), "y": repr(float(y))}
        ra, dec = wcs.pixel_to_world_values(x, y)
        return {"ra": repr(float(ra)), "dec": repr(float(dec))}

    good = [
        {"id": f"g{i}", **position(*rng.uniform(4, IMAGE - 5, 2)), "mag": f"{rng.uniform(15, 22):.2f}"}
        for i in range(5)
    ]
    _write_catalog(root / "clean.csv", good)
    options = {"x_col": "x", "y_col": "y"} if pixel_mode else {}
    source = CutoutSource(
        image=root / "image.fits", catalog=root / "clean.csv", size=9, id_col="id", **options
    )

    def key_of(name: str) -> str | None:
        match = re.search(r"#(\d+):", name)
        return f"row{match.group(1)}" if match else None

    clean, problems = run_ingest(source, root / "clean" / "stamps.h5", key_of)
    problems = [f"[clean cutouts] {p}" for p in problems]
    bad: list[tuple[dict[str, str], str, str]] = []
    for _ in range(5):
        row = {"id": f"b{len(bad)}", **position(*rng.uniform(4, IMAGE - 5, 2)), "mag": "20.0"}
        column, value = cols[int(rng.integers(0, 2))], BAD_COORDS[int(rng.integers(0, len(BAD_COORDS)))]
        row[column] = value
        bad.append((row, f"coord:{column}={value!r}", "reject"))
    far = {"id": f"b{len(bad)}", **position(IMAGE * 40.0, -IMAGE * 40.0), "mag": "20.0"}
    bad.append((far, "coord:outside_image", "reject"))
    for _ in range(2):
        odd = ODD_IDS[int(rng.integers(0, len(ODD_IDS)))]
        bad.append(({**good[int(rng.integers(0, len(good)))], "id": odd}, f"odd_id:{odd[:20]!r}", "either"))
    order = list(rng.permutation(len(good) + len(bad) - 1) + 1)
    mixed = [good[0]] + [good[i] if i < len(good) else bad[i - len(good)][0] for i in order]
    # cases are the mixed catalog's rows; a good row compares to its row of the clean run
    cases = []
    for i, r in enumerate(mixed):
        j = next((k for k, g in enumerate(good) if g is r), None)
        if j is not None:
            cases.append(Case(f"row{i}", "none", "ingest", base=f"row{j}"))
        else:
            _, mutation, expect = next(b for b in bad if b[0] is r)
            cases.append(Case(f"row{i}", mutation, expect))  # the source names the row
    _write_catalog(root / "mixed.csv", mixed)
    source = source.model_copy(update={"catalog": root / "mixed.csv"})
    return cases, problems + ingest_and_judge(source, root / "out" / "stamps.h5", key_of, cases, clean)


def test_cutouts(fuzz, tmp_path):
    fuzz.run(_cutouts_round, tmp_path, default_rounds=3)


# ------------------------------------------------------------------------------- unusable sources
def _broken(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    choice = int(rng.integers(0, 4))
    if choice == 0:
        return b"", "zero_length"
    if choice == 1:
        return data[: int(rng.integers(1, max(2, min(len(data), 200))))], "truncated_head"
    if choice == 2:
        return bytes(rng.integers(0, 256, 300, dtype=np.uint8)), "garbage"
    return data[:40] + b"\xff\xfe\xe9" + data[40:], "non_utf8_bytes"


def _unusable_round(root: Path, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """A Galaxy Zoo catalog, a cutout catalog or a cutout image that cannot be used at all: the ingest
    either completes with counts that add up, or raises an error that names the file and a reason."""
    root.mkdir(parents=True)
    images = root / "images"
    images.mkdir()
    _cutout_image(root / "image.fits", rng)
    pd.DataFrame({"x": [10.0, 20.0], "y": [12.0, 30.0]}).to_csv(root / "cat.csv", index=False)
    shutil.copy(KAGGLE, root / "gz.csv")
    target = ("gz.csv", "cat.csv", "image.fits")[int(rng.integers(0, 3))]
    data, mutation = _broken((root / target).read_bytes(), rng)
    (root / target).write_bytes(data)
    if target == "gz.csv":
        source = GalaxyZooSource(catalog=root / "gz.csv", images_dir=images)
    else:
        source = CutoutSource(
            image=root / "image.fits", catalog=root / "cat.csv", size=5, x_col="x", y_col="y"
        )
    label = f"[{target}/{mutation}] {target!r}"
    try:
        report = ingest_source(source, root / "out" / "stamps.h5")
    except Exception as err:
        named = hasattr(err, "reason") and re.fullmatch(r"[a-z][a-z0-9_]*", str(err.reason))
        if not named or target not in str(err):
            return [mutation], [
                f"{label}: unusable source raised an error without a reason naming the file: {crash_problem(err)}"
            ]
        return [mutation], []
    if report.n_inputs != report.n_ingested + report.n_rejected:
        return [mutation], [f"{label}: counts do not add up: {report.summary()}"]
    return [mutation], []


def test_unusable_catalogs(fuzz, tmp_path):
    fuzz.run(_unusable_round, tmp_path, default_rounds=6)
