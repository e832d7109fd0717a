"""The end-to-end demo on the embedded default data (``make demo``, ``python -m flows.demo``).

Stages, each with a progress bar and its wall time printed (``runs/demo/manifest.json`` keeps them):

1. **simulate** (GalSim): a training set of galaxies with simulated Galaxy Zoo votes, a separate test set
   of galaxies, and real/bogus ZTF-like triplets.
2. **ingest**: the simulated galaxies (Galaxy Zoo Kaggle format), the simulated triplets (labelled), and the
   97 **real ZTF alerts** shipped in ``data_catalogs/samples/ztf_triplets`` (science, template, difference;
   CCD-edge stamps padded and masked; inputs = ingested + rejected).
3. **train** both small models side by side, one subprocess and one CPU thread each, for a fixed number of
   optimiser steps (``--morphology-steps``, ``--realbogus-steps``: the same seed gives the same models on
   any machine; ``--train-minutes`` only caps a slow one): Dieleman morphology (``small``) and Deep-HiTS
   real-bogus on the central 31x31 px of the ZTF cutouts (``ztf_fast``).
4. **score**: the test galaxies with the morphology model, the real alerts with the real-bogus model.
5. **report**: morphology against the test set's simulated votes; real-bogus on the real alerts against
   ZTF's own classifiers (``drb > 0.5`` where the alert has it, else ``rb > 0.5``: reference scores, not
   human labels).

Everything runs through the Prefect flows' stages and caches in ``runs/demo``: a second run reuses every
result. About 4 minutes on 2 cores with the defaults; ``--quick`` is a tiny version (tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the demo prints its own progress
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow

from flows import demo_stages
from flows.demo_stages import DemoOptions, DemoRun
from flows.runners import RunnerOptions, make_task_runner
from flows.stages import StageRecorder
from pipeline.runs import MANIFEST_NAME

#: Options of ``--quick``: a tiny demo (tests).
QUICK = {
    "galaxies": 60,
    "galaxies_test": 30,
    "triplets": 80,
    "morphology_steps": 2,
    "realbogus_steps": 2,
    "train_minutes": 0.2,
    "max_epochs": 1,
}
#: Options of :class:`DemoOptions` that are command-line options of their own (``--train-minutes``...).
SIZE_OPTIONS = (
    "galaxies",
    "galaxies_test",
    "triplets",
    "morphology_steps",
    "realbogus_steps",
    "train_minutes",
    "max_epochs",
)


def run_demo(out: Path, options: DemoOptions | None = None) -> dict[str, Any]:
    """Run the demo's stages (:mod:`flows.demo_stages`) into ``out`` inside the current flow run
    (:func:`demo_flow`).

    Returns:
        ``{"out", "ingest", "catalogs", "reports", "headline", "training", "timings_s", "tasks"}``: the
        ingest summary line per data set, paths per model task, headline metrics, training metrics, wall
        seconds per stage and how many task runs ended in each state.
    """
    out, options = Path(out), options or DemoOptions()
    recorder = StageRecorder(out / MANIFEST_NAME, seed=options.seed)
    with make_task_runner(RunnerOptions(max_workers=2)) as runner:
        run = DemoRun(out, options, runner, recorder)
        demo_stages.simulate(run)
        ingested = demo_stages.ingest(run)
        trained = demo_stages.train(run)
        catalogs = demo_stages.score(run, {task: Path(r["checkpoint"]) for task, r in trained.items()})
        headline = demo_stages.report(run, catalogs)
    return {
        "out": str(out),
        "ingest": {name: report.summary() for name, report in ingested.items()},
        "catalogs": {task: str(path) for task, path in catalogs.items()},
        "reports": {task: str(folder / "index.html") for task, folder in run.reports().items()},
        "headline": headline,
        "training": {task: r["metrics"] for task, r in trained.items()},
        "timings_s": recorder.timings_s,
        "tasks": dict(recorder.tasks),
    }


@flow(name="demo")
def demo_flow(
    out: Path = Path("runs/demo"),
    options: DemoOptions = DemoOptions(),  # noqa: B008  (a pydantic default, never mutated)
) -> dict[str, Any]:
    """The demo as one Prefect flow run (see :func:`run_demo`)."""
    return run_demo(out, options)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def print_summary(result: dict[str, Any], wall: float) -> None:
    """Where everything is, the headline metrics and the wall time per stage."""
    print("\nstampflow demo: done")
    for name, line in result["ingest"].items():
        print(f"  ingest {name}: {line.split(' store=')[0]}")
    for what in ("catalogs", "reports"):
        print(f"  {what}:")
        for name, path in result[what].items():
            print(f"    {name}: {path}")
    print("  headline metrics:")
    morph = dict(result["headline"]["morphology"])
    rb = dict(result["headline"]["realbogus"])
    print(
        f"    morphology (simulated test galaxies): RMSE {_fmt(morph.get('RMSE (37 answers)'))}, "
        f"smooth/featured/star accuracy {_fmt(morph.get('accuracy morph_class'))}"
    )
    print(
        f"    real-bogus (97 real ZTF alerts vs ZTF drb/rb > 0.5): ROC AUC {_fmt(rb.get('ROC AUC'))}, "
        f"accuracy {_fmt(rb.get('accuracy'))}"
    )
    real = dict(result["headline"].get("morphology_real", {}))
    print(
        f"    morphology (100 real SDSS galaxies, shipped model {demo_stages.REAL_GALAXY_MODEL}): "
        f"RMSE {_fmt(real.get('RMSE (37 answers)'))}, smooth/featured/star accuracy "
        f"{_fmt(real.get('accuracy morph_class'))}"
    )
    sim = result["training"].get("realbogus", {})
    if "test/auc" in sim:
        print(f"    real-bogus (simulated ZTF test split): ROC AUC {_fmt(sim['test/auc'])}")
    print("  wall time per stage:")
    for name, seconds in result["timings_s"].items():
        print(f"    {name:<9} {seconds:7.1f} s")
    print(f"    {'total':<9} {wall:7.1f} s (tasks: {result['tasks']})")
    print(f"  manifest: {Path(result['out']) / 'manifest.json'}")


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m flows.demo``: one per size option of :class:`DemoOptions`, and more."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    for name in SIZE_OPTIONS:
        info = DemoOptions.model_fields[name]
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=info.annotation,
            default=info.default,
            help=f"{info.description} (default {info.default:g})",
        )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny demo (seconds): for tests")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = {name: getattr(args, name) for name in SIZE_OPTIONS}
    if args.quick:
        sizes.update(QUICK)
    options = DemoOptions(seed=args.seed, progress=not args.no_progress, **sizes)
    print(f"stampflow demo into {args.out} (starting Prefect...)", flush=True)
    t0 = time.perf_counter()
    result = demo_flow(out=args.out, options=options)
    print_summary(result, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
