"""Real-bogus speed: the ``ztf`` preset against ``ztf_fast``, end to end on real ZTF alerts, side by side.

For each preset (:data:`models.realbogus_config.PRESETS`): GFLOP per 63x63 stamp
(``torch.utils.flop_counter.FlopCounterMode``, one forward pass, input step included), trainable parameters,
and the alerts/s of the command a broker runs, on ONE core with ONE torch thread::

    OMP_NUM_THREADS=1 taskset -c CPU stampflow alerts score FILES... --model CKPT --out OUT --workers 1 --json

(``--workers 1``: the packets are decoded in the scoring process; one torch thread, so ONNX Runtime gets one
intra-op thread too). The numbers are the command's own report: ``decode_seconds``, ``score_seconds`` and
``seconds`` (decode + prepare + model + writing the scored catalog and broker records; process start-up
and model loading are outside it and reported as ``process_seconds``). The presets alternate within each
of ``--repeats`` rounds (order flipped every round) and the ratio ``ztf_fast / ztf`` is taken per round,
then its median: the machine is shared, so the ratio is the number to quote.

Inputs: the real ZTF packets of ``../shared/ztf_alerts`` (``--alerts``): every ``.avro`` of sets A, B, C and
``F_more_real`` except the Rubin folders ``F_more_real/rubin_*`` (a ZTF model does not score Rubin alerts).
Models: with ``--train-steps N`` (default 3) each preset is trained N Adam steps on ``--train-stamps``
simulated ZTF triplets (``stampflow simulate transients --survey ztf`` + ``stampflow ingest-labelled`` +
``stampflow train realbogus --max-steps N``, here through the same library functions), so the checkpoint
and card are those a user gets; ``--train-steps 0`` saves seeded untrained weights instead (speed does not
depend on the weights). ``choices`` lists the other designs measured for the fast preset: GFLOP,
parameters and model-only stamps/s (eager PyTorch, one thread, batches of 256 prepared stamps).

Usage: python benchmarks/realbogus_speed.py [--alerts ../shared/ztf_alerts] [--repeats 3] [--cpu 0]
       [--train-steps 3] [--train-stamps 120] [--work DIR] [--seed 0] [--skip-choices]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from data_catalogs.alert_schemas import CHANNELS
from models.components import count_parameters
from models.realbogus import RealBogusModel
from models.realbogus_config import ZTF_FAST_CONV

REPO = Path(__file__).resolve().parents[1]
ALERTS = REPO.parent / "shared" / "ztf_alerts"
SETS = ("A_*", "B_*", "C_*", "F_more_real")
PRESETS = ("ztf", "ztf_fast")
#: Designs measured for the fast preset (overrides of ``ztf``); ``ztf_fast`` is ``crop31_light``.
CHOICES: dict[str, dict[str, Any]] = {
    "ztf (63x63, 32/32/64/64/64)": {},
    "crop31_full (central 31x31, ztf's filters)": {"input_size": 31, "crop": True},
    "crop31_half (31x31, 16/16/32/32/32)": {
        "input_size": 31,
        "crop": True,
        "conv": ((16, 4, 3, 1), (16, 3, 1, 2), (32, 3, 1, 1), (32, 3, 1, 1), (32, 3, 1, 2)),
    },
    "crop31_light = ztf_fast (31x31, 16+pool/32/32)": {"input_size": 31, "crop": True, "conv": ZTF_FAST_CONV},
    "crop31_light, merge=mean": {"input_size": 31, "crop": True, "conv": ZTF_FAST_CONV, "merge": "mean"},
    "vgg63 (63x63, braai's VGG6 convs 16/16/32/32)": {
        "conv": ((16, 3, 1, 1), (16, 3, 1, 2), (32, 3, 1, 1), (32, 3, 1, 4)),
    },
}


def ztf_alert_files(root: Path) -> list[Path]:
    """The ``.avro`` files of sets A-C and ``F_more_real`` under ``root``, Rubin folders left out."""
    files = [f for pattern in SETS for d in sorted(root.glob(pattern)) for f in sorted(d.rglob("*.avro"))]
    return [f for f in files if not any(part.startswith("rubin") for part in f.relative_to(root).parts)]


def gflop_per_stamp(model: torch.nn.Module) -> float:
    """GFLOP of one forward pass of one raw 3x63x63 stamp (input step, 4 rotations, dense layers)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 3, 63, 63))
    return counter.get_total_flops() / 1e9


def untrained_checkpoint(preset: str, folder: Path, seed: int) -> Path:
    """``preset`` with seeded untrained weights saved as a real checkpoint with a card."""
    from models.checkpoints import save_checkpoint

    torch.manual_seed(seed)
    model = RealBogusModel(preset).eval()
    card = {
        "task": "realbogus",
        "model_name": f"stampflow-realbogus-{preset}",
        "model_version": f"benchmark-untrained.s{seed}",
        "channels": list(CHANNELS),
        "stamp_shape": [63, 63],
        "threshold": 0.5,
        "data_config": {"fill": "zero", "keep_mask": "none"},
        **model.card_fields(),
    }
    return save_checkpoint(model, folder / preset / "model.ckpt", card)


def trained_checkpoint(preset: str, work: Path, steps: int, stamps: int, seed: int) -> Path:
    """``preset`` trained ``steps`` steps on ``stamps`` simulated ZTF triplets (simulation cached in ``work``)."""
    from models.train import train_model
    from pipeline.ingest import ingest_labelled_triplets
    from pipeline.simulate.transients import simulate_transients

    store = work / f"sim_ztf_{stamps}_s{seed}.h5"
    if not store.exists():
        sim = work / f"sim_ztf_{stamps}_s{seed}"
        shutil.rmtree(sim, ignore_errors=True)
        simulate_transients(stamps, sim, survey="ztf", seed=seed, workers=1)
        ingest_labelled_triplets(sim, store)
    out = work / f"model_{preset}"
    shutil.rmtree(out, ignore_errors=True)
    result = train_model(
        "realbogus", [store], out, preset=preset, max_steps=steps, max_epochs=100, seed=seed, threads=1
    )
    return Path(result.checkpoint)


def score_once(ckpt: Path, files: list[Path], out: Path, cpu: int) -> dict[str, Any]:
    """One ``stampflow alerts score --workers 1`` run on one core, one thread: its JSON report + wall time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "flows.cli", "alerts", "score", *map(str, files)]
    cmd += ["--model", str(ckpt), "--out", str(out), "--workers", "1", "--json"]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu >= 0 else None
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, preexec_fn=pin, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {proc.returncode}: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    return {
        "n_scored": report["n_scored"],
        "n_rejected": report["n_rejected"],
        "alerts_per_s": report["n_scored"] / report["seconds"],
        "decode_seconds": report["decode_seconds"],
        "score_seconds": report["score_seconds"],
        "seconds": report["seconds"],
        "process_seconds": wall,
    }


def side_by_side(ckpts: dict[str, Path], files: list[Path], work: Path, repeats: int, cpu: int) -> dict:
    """``repeats`` rounds of both presets (order flipped each round); per-preset medians, per-round ratios."""
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in ckpts}
    for k in range(repeats):
        for preset in list(ckpts)[:: 1 if k % 2 == 0 else -1]:
            runs[preset].append(score_once(ckpts[preset], files, work / f"out_{preset}", cpu))
            print(f"round {k} {preset}: {runs[preset][-1]['alerts_per_s']:.1f} alerts/s", file=sys.stderr)
    result: dict[str, Any] = {}
    for preset, rs in runs.items():
        med = {
            key: statistics.median(r[key] for r in rs)
            for key in rs[0]
            if key not in ("n_scored", "n_rejected")
        }
        result[preset] = {
            "n_scored": rs[0]["n_scored"],
            "n_rejected": rs[0]["n_rejected"],
            **{f"{key}_median": round(v, 3) for key, v in med.items()},
            "alerts_per_s_rounds": [round(r["alerts_per_s"], 1) for r in rs],
            "ms_per_alert_decode_median": round(1e3 * med["decode_seconds"] / rs[0]["n_scored"], 3),
            "ms_per_alert_score_median": round(1e3 * med["score_seconds"] / rs[0]["n_scored"], 3),
        }
    fast, ztf = runs["ztf_fast"], runs["ztf"]
    ratios = [f["alerts_per_s"] / z["alerts_per_s"] for f, z in zip(fast, ztf, strict=True)]
    score_ratios = [z["score_seconds"] / f["score_seconds"] for f, z in zip(fast, ztf, strict=True)]
    result["ratio_fast_over_ztf_alerts_per_s"] = {
        "median": round(statistics.median(ratios), 2),
        "rounds": [round(r, 2) for r in ratios],
    }
    result["ratio_ztf_over_fast_score_seconds_median"] = round(statistics.median(score_ratios), 2)
    return result


def choices(seed: int) -> list[dict[str, Any]]:
    """GFLOP, parameters and model-only stamps/s (eager, one thread, best of 2 batches of 256) per design."""
    torch.set_num_threads(1)
    x = torch.rand(256, 3, 63, 63)
    rows = []
    for name, overrides in CHOICES.items():
        torch.manual_seed(seed)
        model = RealBogusModel("ztf", **overrides).eval()
        prepared = model.net.normalise(x)
        with torch.no_grad():
            model(prepared[:16])
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                model(prepared)
                times.append(time.perf_counter() - t0)
        rows.append(
            {
                "design": name,
                "gflop_per_stamp": round(gflop_per_stamp(model), 4),
                "parameters": count_parameters(model.net),
                "model_stamps_per_s": round(256 / min(times), 1),
            }
        )
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    files = ztf_alert_files(Path(args.alerts))
    if not files:
        raise SystemExit(f"no ZTF .avro files under {args.alerts} (sets {SETS})")
    work = Path(args.work or tempfile.mkdtemp(prefix="realbogus_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    ckpts = {
        p: trained_checkpoint(p, work, args.train_steps, args.train_stamps, args.seed)
        if args.train_steps > 0
        else untrained_checkpoint(p, work, args.seed)
        for p in PRESETS
    }
    statics = {}
    for p in PRESETS:
        torch.manual_seed(args.seed)
        model = RealBogusModel(p).eval()
        statics[p] = {
            "gflop_per_stamp": round(gflop_per_stamp(model), 4),
            "parameters": count_parameters(model.net),
            "input_size": model.config.input_size,
        }
    speed = side_by_side(ckpts, files, work, args.repeats, args.cpu)
    out: dict[str, Any] = {
        "command": "OMP_NUM_THREADS=1 taskset -c CPU stampflow alerts score FILES --model CKPT --workers 1",
        "machine": {"cpu": platform.processor() or platform.machine(), "load_avg": os.getloadavg()},
        "pinned_cpu": args.cpu,
        "inputs": {"root": str(args.alerts), "n_files": len(files), "sets": list(SETS), "rubin": "left out"},
        "weights": f"trained {args.train_steps} steps on {args.train_stamps} simulated ZTF triplets"
        if args.train_steps > 0
        else "seeded untrained",
        "repeats": args.repeats,
        "presets": {p: {**statics[p], **speed[p]} for p in PRESETS},
        "ratio_fast_over_ztf_alerts_per_s": speed["ratio_fast_over_ztf_alerts_per_s"],
        "ratio_ztf_over_fast_score_seconds_median": speed["ratio_ztf_over_fast_score_seconds_median"],
        "ratio_ztf_over_fast_gflop": round(
            statics["ztf"]["gflop_per_stamp"] / statics["ztf_fast"]["gflop_per_stamp"], 1
        ),
        "fast_at_least_250_alerts_per_s": speed["ztf_fast"]["alerts_per_s_median"] >= 250,
    }
    if not args.skip_choices:
        out["choices"] = choices(args.seed)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=Path, default=ALERTS, help="folder holding sets A-C and F_more_real")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of both presets")
    parser.add_argument(
        "--cpu", type=int, default=min(os.sched_getaffinity(0)), help="core to pin to; -1: none"
    )
    parser.add_argument("--train-steps", type=int, default=3, help="Adam steps on simulations; 0: untrained")
    parser.add_argument("--train-stamps", type=int, default=120, help="simulated ZTF triplets to train on")
    parser.add_argument("--work", type=Path, help="working folder (default: a new temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-choices", action="store_true", help="skip the table of designs")
    result = run(parser.parse_args(argv))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
