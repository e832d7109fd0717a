"""Throughput of the simulators: prints JSON with galaxies/s and triplets/s on this machine.

    python benchmarks/simulate.py                      # 200 galaxies, 2000 HiTS triplets, all CPUs
    python benchmarks/simulate.py --galaxies 2000 --triplets 20000   # the default sets, full size
    python benchmarks/simulate.py --noise-check        # also: ZTF-like noise / real shipped triplets' noise
                                                       # (robust sigma; median and geometric mean ratios)

Also reports the projected time of the default 2,000-galaxy and 20,000-triplet sets, the load average
(other processes share the CPUs), and for the triplets the hardest-case fractions: faint reals (S/N < 8),
noise peaks, and the share of candidates a matched-filter threshold between noise peaks and reals gets wrong
(the part of the set whose labels are ambiguous from the pixels).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _ambiguous_fraction(labels) -> float:
    """Smallest error of a threshold on |matched-filter S/N| separating noise peaks from reals, as a fraction
    of all candidates."""
    noise = np.abs(labels.loc[labels["kind"] == "noise_peak", "snr_measured"].to_numpy())
    real = np.abs(labels.loc[labels["real"] == 1, "snr_measured"].to_numpy())
    if noise.size == 0 or real.size == 0:
        return 0.0
    thresholds = np.unique(np.concatenate([noise, real]))
    errors = [(noise >= t).sum() + (real < t).sum() for t in thresholds]
    return float(min(errors) / len(labels))


def run(
    galaxies: int = 200,
    triplets: int = 2000,
    survey: str = "hits",
    workers: int | None = None,
    seed: int = 0,
    noise_check: bool = False,
    keep_triplets: str | os.PathLike | None = None,
) -> dict:
    """Measure and return the figures of the module docstring.

    ``keep_triplets``: write the triplets (FITS + ``labels.csv``) to this folder and keep them (the suite
    trains on them); otherwise everything goes to a temporary folder.
    """
    from pipeline.cpus import usable_cpus
    from pipeline.simulate.galaxies import simulate_galaxies
    from pipeline.simulate.transients import simulate_transients

    workers = workers or usable_cpus()
    result: dict = {"cpus": os.cpu_count(), "workers": workers, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        if galaxies:
            start = time.perf_counter()
            simulate_galaxies(galaxies, f"{tmp}/g", seed=seed, workers=workers)
            seconds = time.perf_counter() - start
            result.update(
                galaxies=galaxies,
                galaxies_seconds=round(seconds, 2),
                galaxies_per_s=round(galaxies / seconds, 1),
                projected_2000_galaxies_s=round(2000 * seconds / galaxies, 1),
            )
        if triplets:
            folder = Path(keep_triplets) if keep_triplets else Path(tmp) / "t"
            start = time.perf_counter()
            labels = simulate_transients(triplets, folder, survey=survey, seed=seed, workers=workers)
            seconds = time.perf_counter() - start
            real = labels["real"] == 1
            result.update(
                survey=survey,
                triplets=triplets,
                triplets_seconds=round(seconds, 2),
                triplets_per_s=round(triplets / seconds, 1),
                projected_20000_triplets_s=round(20000 * seconds / triplets, 1),
                real_fraction=round(float(real.mean()), 4),
                faint_real_fraction=round(float((real & (labels["snr"].abs() < 8)).mean()), 4),
                noise_peak_fraction=round(float((labels["kind"] == "noise_peak").mean()), 4),
                ambiguous_fraction=round(_ambiguous_fraction(labels), 4),
                kb_per_triplet=round(sum(f.stat().st_size for f in os.scandir(folder)) / triplets / 1e3, 2),
            )
    if noise_check:
        from astropy.stats import mad_std

        from pipeline.simulate.transients import measure_triplets, simulate_triplet

        real = measure_triplets()
        sims = [simulate_triplet("ztf", seed, i) for i in range(300)]
        for channel in ("science", "template", "difference"):
            sim = np.array([mad_std(t.stamps[channel.upper()]) for t in sims])
            obs = real[f"sigma_{channel}"].to_numpy()
            result[f"noise_ratio_{channel}_median"] = round(float(np.median(sim) / np.median(obs)), 3)
            geo = np.exp(np.mean(np.log(sim)) - np.mean(np.log(obs)))
            result[f"noise_ratio_{channel}_geomean"] = round(float(geo), 3)
    result["load_after"] = os.getloadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=200)
    parser.add_argument("--triplets", type=int, default=2000)
    parser.add_argument("--survey", default="hits", choices=("hits", "ztf"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-check", action="store_true")
    args = parser.parse_args()
    result = run(args.galaxies, args.triplets, args.survey, args.workers, args.seed, args.noise_check)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
