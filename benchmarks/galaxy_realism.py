"""Do simulated galaxy JPEGs look like the real Kaggle / Galaxy Zoo 2 ones? Prints JSON: the same summary
statistics for real dev images and for simulated ones, each computed after the same frame
(:class:`pipeline.prep.frame.IngestFrame` ``(297, 99)`` on the 424 px image, as ``dieleman2015`` ingests it).

    python benchmarks/galaxy_realism.py                      # 300 real vs 300 simulated (sdss-jpeg style)
    python benchmarks/galaxy_realism.py --style fits --n 200 # the FITS style's --jpeg composites (before)
    python benchmarks/galaxy_realism.py --sim DIR            # a simulated folder made before

Statistics (8-bit units: the float pixels of :func:`pipeline.io.read_image` x 255; lengths in frame px):

- ``sky``, ``noise``: per channel R, G, B, the median and the robust sigma (1.4826 MAD) of the frame's
  outer 8 px border (median over images).
- ``colour_r_over_g``, ``colour_b_over_g``: sky-subtracted channel sums inside 6 frame px of the centre,
  R/G and B/G (median over images).
- ``r50``, ``concentration``: half-light radius and r90/r50 of the sky-subtracted mean of the channels,
  from its curve of growth within 30 frame px of the centre (percentiles 10, 50, 90 over images).
- ``saturated``: fraction of frame pixels with a channel >= 250 (mean over images).
- ``bright_neighbour``: fraction of images with a blob (luminance > sky + 40, >= 3 px) that is not the one
  at the centre and peaks above sky + 80.
- ``labels``: the mean of each of the 37 Kaggle answers (Q6 "odd" ``Class6.1`` included), real and sim,
  and the largest absolute difference.

Only these marginal statistics of the real dev set may set simulator parameters (no per-galaxy fitting),
and only of its training part: the real sample is drawn from the galaxies outside the test split of
benchmarks/morphology_real.py (``split_dev(ids, 214, seed 0)``), whose test galaxies must not shape the
simulation that pretrains the models it evaluates.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REAL_DIR = Path("/work/shared/galaxy_zoo/kaggle_real_dev")
BORDER = 8  # frame px
COLOUR_RADIUS = 6.0  # frame px
MAX_RADIUS = 30.0  # frame px
SATURATED = 250.0
BLOB, BRIGHT = 40.0, 80.0  # 8-bit above sky


def _frame():
    from pipeline.prep.frame import IngestFrame

    return IngestFrame(297, 99)


def image_stats(pixels: np.ndarray) -> dict[str, float]:
    """Statistics of one framed image ``(3, S, S)`` in 8-bit units (R, G, B)."""
    from scipy import ndimage

    side = pixels.shape[-1]
    border = np.ones((side, side), bool)
    border[BORDER:-BORDER, BORDER:-BORDER] = False
    edge = pixels[:, border]
    sky = np.median(edge, axis=1)
    noise = 1.4826 * np.median(np.abs(edge - sky[:, None]), axis=1)
    clean = pixels - sky[:, None, None]
    y, x = np.indices((side, side))
    c = (side - 1) / 2.0
    radius = np.hypot(x - c, y - c)
    core = radius <= COLOUR_RADIUS
    sums = np.clip(clean[:, core].sum(axis=1), 1e-6, None)
    light = clean.mean(axis=0)
    inside = radius <= MAX_RADIUS
    order = np.argsort(radius[inside])
    growth = np.cumsum(light[inside][order])
    total = growth[-1]
    r_sorted = radius[inside][order]
    r50 = float(r_sorted[np.searchsorted(growth, 0.5 * total)]) if total > 0 else float("nan")
    r90 = float(r_sorted[min(np.searchsorted(growth, 0.9 * total), len(growth) - 1)]) if total > 0 else np.nan
    blobs, count = ndimage.label(light > BLOB)
    centre_label = blobs[int(c), int(c)]
    neighbour = False
    if count:
        labels = np.arange(1, count + 1)
        peaks = ndimage.maximum(light, blobs, labels)
        sizes = ndimage.sum(np.ones_like(light), blobs, labels)
        neighbour = bool(np.any((labels != centre_label) & (peaks > BRIGHT) & (sizes >= 3)))
    return {
        **{f"sky_{ch}": float(v) for ch, v in zip("RGB", sky, strict=True)},
        **{f"noise_{ch}": float(v) for ch, v in zip("RGB", noise, strict=True)},
        "colour_r_over_g": float(sums[0] / sums[1]),
        "colour_b_over_g": float(sums[2] / sums[1]),
        "r50": r50,
        "concentration": r90 / r50 if r50 > 0 else float("nan"),
        "saturated": float((pixels.max(axis=0) >= SATURATED).mean()),
        "bright_neighbour": float(neighbour),
    }


def folder_stats(paths: list[Path]) -> dict[str, object]:
    """Summary of :func:`image_stats` over JPEG files (read as ingest reads them, framed as ingest frames)."""
    from pipeline.io import read_image

    frame = _frame()
    rows = [image_stats(frame.apply(read_image(p).pixels) * 255.0) for p in paths]
    table = pd.DataFrame(rows)
    out: dict[str, object] = {"images": len(rows)}
    for name in [c for c in table.columns if c.startswith(("sky_", "noise_", "colour_"))]:
        out[name] = round(float(table[name].median()), 3)
    for name in ("r50", "concentration"):
        values = table[name].dropna()
        out[name] = [round(float(np.percentile(values, q)), 2) for q in (10, 50, 90)]
    out["saturated"] = round(float(table["saturated"].mean()), 5)
    out["bright_neighbour"] = round(float(table["bright_neighbour"].mean()), 3)
    return out


def label_means(csv: Path, ids: list[int] | None = None) -> dict[str, float]:
    """Mean of each Kaggle answer column over the rows of ``csv`` (only ``ids`` when given)."""
    from data_catalogs.galaxy_zoo import ANSWER_COLUMNS

    table = pd.read_csv(csv)
    if ids is not None:
        table = table[table["GalaxyID"].isin(ids)]
    return {c: round(float(table[c].mean()), 4) for c in ANSWER_COLUMNS}


def simulate(n: int, seed: int, style: str, out: Path) -> tuple[Path, float]:
    """Simulate ``n`` galaxies of ``style`` into ``out``; returns the JPEG folder and galaxies/s (1 worker)."""
    from pipeline.simulate.galaxies import simulate_galaxies

    start = time.perf_counter()
    if style == "fits":
        simulate_galaxies(n, out, seed=seed, workers=1, jpeg=True)
        images = out / "jpeg"
    else:
        simulate_galaxies(n, out, seed=seed, workers=1, style=style)
        images = out / "images"
    return images, n / (time.perf_counter() - start)


def compare(real: dict, sim: dict) -> dict[str, object]:
    """Sim minus real for the scalar statistics; the largest label-mean differences."""
    diff = {k: round(sim[k] - real[k], 3) for k in real if isinstance(real[k], float) and k in sim}
    labels = {k: round(sim["labels"][k] - real["labels"][k], 4) for k in real["labels"]}
    worst = sorted(labels, key=lambda k: -abs(labels[k]))[:6]
    diff["labels_max_abs"] = round(max(abs(v) for v in labels.values()), 4)
    diff["labels_worst"] = {k: labels[k] for k in worst}
    return diff


def run(n: int = 300, seed: int = 0, style: str = "sdss-jpeg", sim_dir: Path | None = None) -> dict:
    """Real dev images (a seeded sample of ``n``) vs ``n`` simulated ones; see the module docstring."""
    rng = np.random.default_rng(seed)
    from benchmarks.morphology_real_data import split_dev

    all_paths = sorted((REAL_DIR / "images").glob("*.jpg"))
    test = set(split_dev([p.stem for p in all_paths], 214, 0).test)
    real_paths = [p for p in all_paths if p.stem not in test]  # never the real benchmark's test galaxies
    real_paths = [real_paths[i] for i in sorted(rng.choice(len(real_paths), min(n, len(real_paths)), False))]
    real = folder_stats(real_paths)
    real["labels"] = label_means(REAL_DIR / "training_solutions_rev1.csv", [int(p.stem) for p in real_paths])
    result: dict[str, object] = {"n": n, "seed": seed, "style": style, "real": real}
    with tempfile.TemporaryDirectory() as tmp:
        if sim_dir is None:
            images, rate = simulate(n, seed, style, Path(tmp) / "sim")
            result["galaxies_per_s_one_core"] = round(rate, 1)
            root = images.parent
        else:
            root = Path(sim_dir)
            images = root / ("jpeg" if (root / "jpeg").is_dir() else "images")
        sim = folder_stats(sorted(images.glob("*.jpg"))[:n])
        sim["labels"] = label_means(root / "training_solutions.csv")
    result["sim"] = sim
    result["sim_minus_real"] = compare(real, sim)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="images per set (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", choices=("sdss-jpeg", "fits"), default="sdss-jpeg")
    parser.add_argument("--sim", type=Path, help="a simulated folder to compare instead of simulating")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.n, args.seed, args.style, args.sim), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
