"""The benchmark suite: one JSON document with every throughput figure of stampflow next to the machine's
own reference measured in the same run (``python -m benchmarks``; ``make bench``).

Sections, in order (each times itself; ``seconds`` of the whole run at the end, target under 600 s on
2 cores):

- ``machine``: CPU model and flags that matter (avx512f, avx512_bf16), cores, torch threads, versions.
- ``ingest``: FITS stamps -> stamp store against a plain astropy + h5py loop (:mod:`benchmarks.ingest`), and
  the labelled-triplet ingest of the simulated HiTS set (4x21x21 ``.fits.gz`` -> store).
- ``simulate``: galaxies/s and HiTS triplets/s (:mod:`benchmarks.simulate`); the triplets are kept for
  the training and label-flip sections.
- ``augment``: augmentation stamps/s and bare training steps/s of each model (:mod:`benchmarks.augment`).
- ``train``: the ``hits`` preset trained by :func:`models.train.train_model` for ``train_seconds`` on the
  simulated set (Lightning fit with data loading and augmentation): samples/s.
- ``score``: :mod:`benchmarks.suite_scoring`: stamps/s of each preset and inference path, the label flips
  of each path on the trained model's test split, and ``score_store`` end to end.
- ``alerts``: decode + score alerts/s (:mod:`benchmarks.alerts`, when present).

Every model figure comes with its FLOPs per stamp (``FlopCounterMode``: forward for scoring, forward and
backward for training) and its ``fraction_of_roofline`` = stamps/s x FLOPs / (fp32 matmul FLOP/s of torch,
2048x2048, :mod:`benchmarks.roofline`), the matmul measured interleaved with (scoring) or right before and
after (training, augmentation, alerts) the model, best of each. ``summary`` lists the headline figures as
rows (figure, value, unit, fraction of roofline, command); :func:`markdown_table` turns them into the README
table.
"""

from __future__ import annotations

import importlib
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import augment as augment_bench
from benchmarks import ingest as ingest_bench
from benchmarks import simulate as simulate_bench
from benchmarks import suite_scoring
from benchmarks.roofline import fraction, matmul_gflops

SUITE_COMMAND = "python -m benchmarks"
#: train / val / test fractions of the simulated set (test >= 1,000 stamps with the default 5,000).
FRACTIONS = (0.7, 0.1, 0.2)
TARGET_SECONDS = 600


def machine() -> dict[str, Any]:
    """CPU model, the SIMD flags that matter for fp32/bf16 inference, cores, threads and versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), ""
        )
        flags = set(
            next(
                (line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")),
                [],
            )
        )
        info["cpu"] = model
        info["cpu_flags"] = sorted(
            flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni"}
        )
    except OSError:
        info["cpu"] = platform.processor()
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def bracketed(fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """``fn()`` with the matmul reference measured right before and right after (best of the two)."""
    before = matmul_gflops()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    after = matmul_gflops()
    return result, {
        "roofline_gflops": round(max(before, after), 1),
        "roofline_before_after": [round(before, 1), round(after, 1)],
        "seconds": round(seconds, 1),
    }


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn()
    return result, round(time.perf_counter() - t0, 1)


# ------------------------------------------------------------------------------------------------ sections
def ingest_section(n: int) -> dict[str, Any]:
    result, seconds = _timed(lambda: ingest_bench.run(n=n, size=21, channels=1, repeats=2))
    return {**result, "section_seconds": seconds}


def simulate_section(galaxies: int, triplets: int, folder: Path, seed: int) -> dict[str, Any]:
    result, seconds = _timed(
        lambda: simulate_bench.run(galaxies, triplets, "hits", seed=seed, keep_triplets=folder)
    )
    return {**result, "section_seconds": seconds}


def labelled_ingest(folder: Path, store: Path) -> dict[str, Any]:
    """Ingest the simulated triplets with their labels (the store the training and flips use)."""
    from pipeline.ingest import ingest_labelled_triplets

    report, seconds = _timed(
        lambda: ingest_labelled_triplets(folder, store, rejects_path=store.with_suffix(".rejects.csv"))
    )
    return {
        "inputs": report.n_inputs,
        "ingested": report.n_ingested,
        "rejected": report.n_rejected,
        "seconds": seconds,
        "stamps_per_s": round(report.n_ingested / seconds, 1) if seconds else None,
    }


def augment_section(threads: int, seconds: float, batch: int = 32) -> dict[str, Any]:
    result, ref = bracketed(lambda: augment_bench.run(batch=batch, seconds=seconds, threads=threads))
    for case in result["cases"]:
        rate, flops = case.get("model_train_stamps_per_s"), case.get("model_train_flops_per_stamp")
        case["model_train_fraction_of_roofline"] = (
            round(fraction(rate, flops, ref["roofline_gflops"]), 3) if rate and flops else None
        )
    return {**result, **ref}


def train_section(
    store: Path, out: Path, seconds: float, threads: int, seed: int, flops: float | None
) -> dict[str, Any]:
    """Train ``hits`` for ``seconds`` of fitting; samples/s = steps x batch / fit seconds."""
    from models.train import train_model

    def fit() -> Any:
        return train_model(
            "realbogus",
            [store],
            out,
            preset="hits",
            max_epochs=1000,
            max_time_s=seconds,
            val_every_n_epochs=None,
            seed=seed,
            threads=threads,
            data_overrides={"fractions": FRACTIONS},
        )

    result, ref = bracketed(fit)
    torch.set_num_threads(threads)
    from models.realbogus_config import RealBogusConfig

    batch = RealBogusConfig.from_preset("hits").batch_size
    rate = result.steps * batch / result.fit_seconds if result.fit_seconds else 0.0
    return {
        "model": "RealBogusModel(hits), 4x21x21",
        "checkpoint": result.checkpoint,
        "steps": result.steps,
        "epochs": result.epochs,
        "batch_size": batch,
        "fit_seconds": round(result.fit_seconds, 1),
        "samples_per_s": round(rate, 1),
        "flops_per_sample": flops,
        "fraction_of_roofline": round(fraction(rate, flops, ref["roofline_gflops"]), 3) if flops else None,
        "test_metrics": {k: round(v, 4) for k, v in result.metrics.items() if k.startswith("test/")},
        **ref,
    }


def test_rows(store: Path, splits_csv: Path) -> np.ndarray:
    """Store rows of the test split written by the training run."""
    from models.data import load_splits
    from pipeline.store import open_store

    with open_store(store) as opened:
        ids = opened.catalog(columns=["object_id"])["object_id"].to_numpy()
    return np.flatnonzero(load_splits(splits_csv, ids) == "test")


def alerts_section(threads: int, flops: float | None) -> dict[str, Any]:
    """``benchmarks.alerts.run`` at a small size, when the module is there."""
    try:
        alerts = importlib.import_module("benchmarks.alerts")
    except ImportError as err:
        return {"missing": f"benchmarks.alerts not importable: {err}"}
    if not hasattr(alerts, "run"):
        return {"missing": "benchmarks.alerts has no run()"}

    def small_run() -> dict[str, Any]:
        return alerts.run(n=1000, n_plain=300, repeats=2, workers=2, batch=500, batches=3, threads=threads)

    try:
        result, ref = bracketed(small_run)
    except Exception as err:  # report it; the other sections stand
        return {"error": f"{err.__class__.__name__}: {err}"}
    scored = result.get("decode_and_score") or {}
    rate = scored.get("alerts_per_s")
    result["decode_and_score_fraction_of_roofline"] = (
        round(fraction(rate, flops, ref["roofline_gflops"]), 3) if rate and flops else None
    )
    result["model_flops_per_stamp"] = flops
    torch.set_num_threads(threads)
    return {**result, **ref}


# ------------------------------------------------------------------------------------------------ summary
def _row(
    figure: str, value: Any, unit: str, command: str, frac: float | None = None, note: str = ""
) -> dict[str, Any]:
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "fraction_of_roofline": frac,
        "command": command,
        "note": note,
    }


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline figures of a suite result, one row each (the README table)."""
    rows = [
        _row(
            "Roofline: torch fp32 matmul 2048x2048",
            result["roofline"]["matmul_fp32_gflops"],
            "GFLOP/s",
            "python benchmarks/roofline.py",
        )
    ]
    ing = result.get("ingest", {})
    if "stamps_per_s" in ing:
        n = ing["n_stamps"]
        rows.append(
            _row(
                f"Ingest {n} FITS stamps 1x21x21 -> store",
                ing["stamps_per_s"]["stampflow_ingest"],
                "stamps/s",
                f"python benchmarks/ingest.py --n {n} --repeats 2",
                note=f"{ing['speedup_store_vs_plain']}x a plain astropy+h5py loop",
            )
        )
    lab = result.get("ingest_labelled", {})
    if lab.get("stamps_per_s"):
        rows.append(
            _row(
                f"Ingest {lab['ingested']} labelled HiTS triplets 4x21x21 (.fits.gz)",
                lab["stamps_per_s"],
                "stamps/s",
                SUITE_COMMAND,
            )
        )
    sim = result.get("simulate", {})
    if "galaxies_per_s" in sim:
        rows.append(
            _row(
                f"Simulate {sim['galaxies']} galaxies",
                sim["galaxies_per_s"],
                "galaxies/s",
                f"python benchmarks/simulate.py --galaxies {sim['galaxies']} --triplets 0",
            )
        )
    if "triplets_per_s" in sim:
        rows.append(
            _row(
                f"Simulate {sim['triplets']} HiTS triplets",
                sim["triplets_per_s"],
                "triplets/s",
                f"python benchmarks/simulate.py --galaxies 0 --triplets {sim['triplets']}",
            )
        )
    aug = result.get("augment", {})
    for case in aug.get("cases", []):
        shape = "x".join(str(v) for v in case["input_shape"])
        cmd = f"python benchmarks/augment.py --batch {aug['batch_size']} --threads {aug['threads']}"
        rows.append(
            _row(
                f"Augment ({case['augment_preset']}, {shape})", case["augment_stamps_per_s"], "stamps/s", cmd
            )
        )
        if case.get("model_train_stamps_per_s"):
            rows.append(
                _row(
                    f"Train step {case['model']} {shape}, batch {aug['batch_size']}",
                    case["model_train_stamps_per_s"],
                    "samples/s",
                    cmd,
                    case.get("model_train_fraction_of_roofline"),
                )
            )
    train = result.get("train", {})
    if "samples_per_s" in train:
        rows.append(
            _row(
                f"Train {train['model']} with train_model "
                f"({train['fit_seconds']} s fit, data loading + augmentation)",
                train["samples_per_s"],
                "samples/s",
                SUITE_COMMAND,
                train.get("fraction_of_roofline"),
            )
        )
    score = result.get("score", {})
    for preset, entry in score.get("throughput", {}).get("presets", {}).items():
        for path, p in entry["paths"].items():
            for batch, b in p["batches"].items():
                rows.append(
                    _row(
                        f"Score {preset} {'x'.join(map(str, entry['stamp_shape']))}, {path}, batch {batch}",
                        b["stamps_per_s"],
                        "stamps/s",
                        f"python -m benchmarks.suite_scoring --presets {preset}",
                        b["fraction_of_roofline"],
                        p.get("inference_note", ""),
                    )
                )
    flips = score.get("label_flips", {})
    for path in suite_scoring.PATHS:
        if path in flips:
            f = flips[path]
            rows.append(
                _row(
                    f"Label flips vs pytorch_fp32 at the card threshold, {path} (trained hits, test split)",
                    f"{f['label_flips']} / {flips['n_stamps']}",
                    "stamps",
                    SUITE_COMMAND,
                    note=(
                        f"largest rb change {f['rb_max_abs_diff']:.2g}; "
                        f"{'within' if f['within_allowed'] else 'above'} the "
                        f"{flips['max_flip_fraction_allowed']:.1%} allowed"
                    ),
                )
            )
    e2e = score.get("store_end_to_end", {})
    if e2e.get("stamps_per_s"):
        rows.append(
            _row(
                f"score_store end to end, {e2e['n_stamps']} hits stamps ({e2e['inference_backend']})",
                e2e["stamps_per_s"],
                "stamps/s",
                SUITE_COMMAND,
                note="HDF5 read + prepare + model + Parquet write",
            )
        )
    alerts = result.get("alerts", {})
    decode = (alerts.get("decode") or {}).get("alerts_per_s_best") or {}
    if decode.get("stampflow_1_process"):
        ratio = (alerts["decode"].get("median_ratio_per_round") or {}).get("stampflow_1_process_vs_plain")
        rows.append(
            _row(
                "Alerts decode (ZTF Avro packets, 1 process)",
                decode["stampflow_1_process"],
                "alerts/s",
                "python benchmarks/alerts.py --skip-latency",
                note=f"{ratio}x a plain fastavro + astropy loop" if ratio else "",
            )
        )
    scored = alerts.get("decode_and_score") or {}
    if scored.get("alerts_per_s"):
        rows.append(
            _row(
                f"Alerts decode + score (ztf, batches of {scored['batch_alerts']})",
                scored["alerts_per_s"],
                "alerts/s",
                "python benchmarks/alerts.py",
                alerts.get("decode_and_score_fraction_of_roofline"),
            )
        )
    return rows


def markdown_table(result: dict[str, Any]) -> str:
    """The summary rows as a Markdown table (figure, value, fraction of roofline, command)."""
    lines = ["| Figure | Value | Fraction of roofline | Reproduce |", "|---|---|---|---|"]
    for row in result["summary"]:
        frac = "" if row["fraction_of_roofline"] is None else f"{row['fraction_of_roofline']:.2f}"
        value = f"{row['value']} {row['unit']}" + (f" ({row['note']})" if row["note"] else "")
        lines.append(f"| {row['figure']} | {value} | {frac} | `{row['command']}` |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ run
def run(
    *,
    threads: int = 2,
    seed: int = 0,
    ingest_n: int = 2000,
    galaxies: int = 40,
    triplets: int = 5000,
    train_seconds: float = 60.0,
    augment_seconds: float = 1.0,
    score_rounds: int = 2,
    score_seconds: float = 1.0,
    score_presets: tuple[str, ...] = ("hits", "ztf", "small"),
    score_batches: tuple[int, ...] = (256, 1024),
    with_alerts: bool = True,
    work: Path | None = None,
) -> dict[str, Any]:
    """Run every section (see the module docstring) and return the suite document."""
    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    warnings.filterwarnings("ignore")
    result: dict[str, Any] = {"benchmark": "stampflow suite", "command": SUITE_COMMAND, "machine": machine()}
    roof_start = matmul_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(work) if work else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        sim, store = root / "sim_hits", root / "hits.h5"
        result["ingest"] = ingest_section(ingest_n)
        result["simulate"] = simulate_section(galaxies, triplets, sim, seed)
        result["ingest_labelled"] = labelled_ingest(sim, store)
        result["augment"] = augment_section(threads, augment_seconds)
        torch.set_num_threads(threads)
        hits_train_flops = next(
            (
                c["model_train_flops_per_stamp"]
                for c in result["augment"]["cases"]
                if c["input_shape"] == [4, 21, 21]
            ),
            None,
        )
        result["train"] = train_section(
            store, root / "model_hits", train_seconds, threads, seed, hits_train_flops
        )
        score: dict[str, Any] = {}
        score["throughput"], seconds = _timed(
            lambda: suite_scoring.run(
                score_presets, score_batches, score_rounds, score_seconds, threads, seed=seed
            )
        )
        score["throughput_seconds"] = seconds
        rows = test_rows(store, root / "model_hits" / "splits.csv")
        score["label_flips"] = suite_scoring.label_flips(result["train"]["checkpoint"], store, rows)
        score["store_end_to_end"] = suite_scoring.store_throughput(
            result["train"]["checkpoint"], store, root / "scored.parquet"
        )
        result["score"] = score
        hits = score["throughput"]["presets"].get("hits")
        if hits:
            fast = hits["paths"]["onnxruntime_fp32"]["batches"]
            result["hits_fast_path"] = {
                "fraction_of_roofline_by_batch": {b: v["fraction_of_roofline"] for b, v in fast.items()},
                "meets_70_percent": all(v["fraction_of_roofline"] >= 0.7 for v in fast.values()),
            }
        ztf = score["throughput"]["presets"].get("ztf")
        if with_alerts:
            result["alerts"] = alerts_section(threads, ztf["model_flops_per_stamp"] if ztf else None)
    roof_end = matmul_gflops()
    result["roofline"] = {
        "matmul_n": 2048,
        "matmul_fp32_gflops": round(max(roof_start, roof_end), 1),
        "start_end": [round(roof_start, 1), round(roof_end, 1)],
        "note": "each section's fractions use the reference measured with it (interleaved, or right "
        "before and after)",
    }
    result["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    result["under_10_minutes"] = result["seconds"] < TARGET_SECONDS
    result["summary"] = summary_rows(result)
    return result
