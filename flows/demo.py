"""The end-to-end demo on the embedded default data (``make demo``, ``python -m flows.demo``).

Stages, each with a progress bar and its wall time printed (``runs/demo/manifest.json`` keeps them):

1. **simulate** (GalSim): a training set of galaxies with simulated Galaxy Zoo votes, a separate test set
   of galaxies, and real/bogus ZTF-like triplets.
2. **ingest**: the simulated galaxies (Galaxy Zoo Kaggle format), the simulated triplets (labelled), and the
   97 **real ZTF alerts** shipped in ``data_catalogs/samples/ztf_triplets`` (science, template, difference;
   CCD-edge stamps padded and masked; inputs = ingested + rejected).
3. **train** both small models side by side, one subprocess and one CPU thread each, bounded by
   ``--train-minutes`` and ``--max-epochs``: Dieleman morphology (``small``) and Deep-HiTS real-bogus
   (``ztf``).
4. **score**: the test galaxies with the morphology model, the real alerts with the real-bogus model.
5. **report**: morphology against the test set's simulated votes; real-bogus on the real alerts against
   ZTF's own classifiers (``drb > 0.5`` where the alert has it, else ``rb > 0.5``: reference scores, not
   human labels).

Everything runs through the Prefect flows' stages and caches in ``runs/demo``: a second run reuses every
result. Under 10 minutes on 2 cores with the defaults; ``--quick`` is a tiny version (tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the demo prints its own progress
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow

SAMPLES = Path(__file__).resolve().parent.parent / "data_catalogs" / "samples"
ZTF_TRIPLETS = SAMPLES / "ztf_triplets"
ZTF_PIXEL_SCALE_ARCSEC = 1.01
ZTF_CHANNELS = ["SCIENCE", "TEMPLATE", "DIFFERENCE"]
#: ZTF's own real-bogus scores above this count as real in the reference labels of the real alerts.
ZTF_SCORE_THRESHOLD = 0.5


def ztf_reference_labels(store: Path, out_csv: Path) -> Path:
    """Reference labels of the real alerts: ``candid``, ``real`` = ZTF's ``drb > 0.5`` where the alert has
    ``drb``, else ``rb > 0.5`` (the store's ``drb``/``rb`` header columns), and which score was used."""
    import numpy as np
    import pandas as pd

    from pipeline.store import open_store

    with open_store(store) as opened:
        catalog = opened.catalog(columns=["candid", "rb", "drb"])
    drb = pd.to_numeric(catalog["drb"], errors="coerce")
    rb = pd.to_numeric(catalog["rb"], errors="coerce")
    score = drb.where(drb.notna(), rb)
    table = pd.DataFrame(
        {
            "candid": catalog["candid"].astype(str),
            "real": (score > ZTF_SCORE_THRESHOLD).astype(np.int64),
            "reference": np.where(drb.notna(), "drb", "rb"),
        }
    )
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    return out_csv


class TimeBar:
    """A progress bar that fills with wall time up to ``seconds`` (training is bounded by time) until
    closed; runs in a background thread."""

    def __init__(self, desc: str, seconds: float, enabled: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=round(seconds), desc=desc, unit="s", disable=not enabled, leave=True)
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            elapsed = min(round(time.perf_counter() - self._t0), self.bar.total)
            self.bar.update(elapsed - self.bar.n)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()


def _bar(desc: str, total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not enabled, leave=True)


def run_demo(
    out: Path,
    *,
    galaxies: int = 2000,
    galaxies_test: int = 400,
    triplets: int = 3000,
    train_minutes: float = 3.0,
    max_epochs: int = 30,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo's stages into ``out`` inside the current flow run (:func:`demo_flow`); returns paths,
    headline metrics and the wall time per stage."""
    from flows.ingest_flow import ingest_stage
    from flows.params import FitsSource, GalaxyZooSource, LabelledSource, SimulateParams, TrainParams
    from flows.runners import RunnerOptions, make_task_runner
    from flows.score_flow import publish_report, report_stage, score_stage
    from flows.simulate_flow import simulate_stage
    from flows.train_flow import train_stage
    from pipeline.runs import MANIFEST_NAME, record_stage, stage_record

    out = Path(out)
    sim = out / "sim"
    manifest = out / MANIFEST_NAME
    timings: dict[str, float] = {}
    tasks: Counter = Counter()

    def done(name: str, stage_results: list, t0: float, config: dict, outputs: dict, **extra) -> None:
        timings[name] = time.perf_counter() - t0
        stage_tasks = sum((Counter(s.tasks) for s in stage_results), Counter())
        tasks.update(stage_tasks)
        record = stage_record(
            config=config,
            inputs=[r for s in stage_results for r in s.inputs],
            outputs=outputs,
            seed=seed,
            seconds=timings[name],
            timings_s={name: timings[name]},
            tasks=dict(stage_tasks),
            **extra,
        )
        record_stage(manifest, name, record)

    with make_task_runner(RunnerOptions(max_workers=2)) as runner:
        # 1. simulate -------------------------------------------------------------------------------
        t0 = time.perf_counter()
        sims = [
            SimulateParams(what="galaxies", n=galaxies, out=sim / "galaxies", seed=seed),
            SimulateParams(what="galaxies", n=galaxies_test, out=sim / "galaxies_test", seed=seed + 1),
            SimulateParams(what="transients", n=triplets, out=sim / "transients", survey="ztf", seed=seed),
        ]
        simulated = simulate_stage(runner, sims, progress=progress)
        done("simulate", [simulated], t0, {"datasets": [s.model_dump(mode="json") for s in sims]}, {})

        # 2. ingest ---------------------------------------------------------------------------------
        t0 = time.perf_counter()
        stores = {
            "galaxies": out / "galaxies" / "stamps.h5",
            "galaxies_test": out / "galaxies_test" / "stamps.h5",
            "transients": out / "transients" / "stamps.h5",
            "ztf_alerts": out / "ztf_alerts" / "stamps.h5",
        }
        sources = {
            "galaxies": GalaxyZooSource(
                catalog=sim / "galaxies" / "training_solutions.csv", images_dir=sim / "galaxies" / "images"
            ),
            "galaxies_test": GalaxyZooSource(
                catalog=sim / "galaxies_test" / "training_solutions.csv",
                images_dir=sim / "galaxies_test" / "images",
            ),
            "transients": LabelledSource(folder=sim / "transients"),
            "ztf_alerts": FitsSource(
                inputs=[ZTF_TRIPLETS],
                extensions=ZTF_CHANNELS,
                stamp_shape=(63, 63),
                size_policy="pad",
                header_keys=["OBJECTID", "CANDID", "ISDIFPOS", "RB", "DRB"],
                pixel_scale_arcsec=ZTF_PIXEL_SCALE_ARCSEC,
            ),
        }
        ingests = {}
        with _bar("ingest", len(sources), progress) as bar:
            for name, source in sources.items():
                ingests[name] = ingest_stage(runner, source, stores[name])
                bar.update(1)
        counts = {n: s.result.summary() for n, s in ingests.items()}
        done(
            "ingest",
            list(ingests.values()),
            t0,
            {n: s.model_dump(mode="json") for n, s in sources.items()},
            {n: str(p) for n, p in stores.items()},
            counts=counts,
        )
        alerts = ingests["ztf_alerts"].result
        if alerts.n_ingested + alerts.n_rejected != alerts.n_inputs or alerts.n_ingested == 0:
            raise RuntimeError(f"the real ZTF alerts did not ingest: {alerts.summary()}")
        labels_csv = ztf_reference_labels(stores["ztf_alerts"], out / "ztf_alerts" / "reference_labels.csv")

        # 3. train ----------------------------------------------------------------------------------
        t0 = time.perf_counter()
        checkpoints = out / "checkpoints"
        budget = {"max_epochs": max_epochs, "max_minutes": train_minutes, "seed": seed, "threads": 1}
        trainings = [
            TrainParams(
                task="morphology",
                stores=[stores["galaxies"]],
                out=checkpoints / "morphology",
                preset="small",
                **budget,
            ),
            TrainParams(
                task="realbogus",
                stores=[stores["transients"]],
                out=checkpoints / "realbogus",
                preset="ztf",
                **budget,
            ),
        ]
        logs = [out / "logs" / f"train-{p.task}.log" for p in trainings]
        bar = TimeBar("train (2 models side by side)", train_minutes * 60 + 30, progress)
        try:
            trained = train_stage(runner, trainings, log_files=logs)
        finally:
            bar.close()
        morph_ckpt, rb_ckpt = (Path(r["checkpoint"]) for r in trained.result)
        done(
            "train",
            [trained],
            t0,
            {"models": [p.model_dump(mode="json") for p in trainings]},
            {"morphology": str(morph_ckpt), "realbogus": str(rb_ckpt)},
            metrics={p.task: r["metrics"] for p, r in zip(trainings, trained.result, strict=True)},
        )

        # 4. score ----------------------------------------------------------------------------------
        t0 = time.perf_counter()
        catalogs = {
            "morphology": out / "galaxies_test" / "scored.parquet",
            "realbogus": out / "ztf_alerts" / "scored.parquet",
        }
        with _bar("score", 2, progress) as bar:
            scored_m = score_stage(runner, morph_ckpt, stores["galaxies_test"], catalogs["morphology"])
            bar.update(1)
            scored_r = score_stage(runner, rb_ckpt, stores["ztf_alerts"], catalogs["realbogus"])
            bar.update(1)
        done(
            "score",
            [scored_m, scored_r],
            t0,
            {"models": [str(morph_ckpt), str(rb_ckpt)]},
            {k: str(v) for k, v in catalogs.items()},
        )

        # 5. report ---------------------------------------------------------------------------------
        t0 = time.perf_counter()
        reports = {"morphology": out / "galaxies_test" / "report", "realbogus": out / "ztf_alerts" / "report"}
        with _bar("report", 2, progress) as bar:
            report_m = report_stage(
                runner, catalogs["morphology"], stores["galaxies_test"], reports["morphology"]
            )
            bar.update(1)
            report_r = report_stage(
                runner, catalogs["realbogus"], labels_csv, reports["realbogus"], on="candid"
            )
            bar.update(1)
        publish_report(report_m.result, key="demo-morphology")
        publish_report(report_r.result, key="demo-realbogus")
        done(
            "report",
            [report_m, report_r],
            t0,
            {"labels": {"morphology": str(stores["galaxies_test"]), "realbogus": str(labels_csv)}},
            {k: str(v / "index.html") for k, v in reports.items()},
        )
    return {
        "out": str(out),
        "ingest": counts,
        "catalogs": {k: str(v) for k, v in catalogs.items()},
        "reports": {k: str(v / "index.html") for k, v in reports.items()},
        "headline": {
            "morphology": dict(report_m.result["headline"]),
            "realbogus": dict(report_r.result["headline"]),
        },
        "training": {p.task: r["metrics"] for p, r in zip(trainings, trained.result, strict=True)},
        "timings_s": timings,
        "tasks": dict(tasks),
    }


@flow(name="demo")
def demo_flow(
    out: Path = Path("runs/demo"),
    galaxies: int = 2000,
    galaxies_test: int = 400,
    triplets: int = 3000,
    train_minutes: float = 3.0,
    max_epochs: int = 30,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """The demo as one Prefect flow run (see :func:`run_demo`)."""
    return run_demo(
        out,
        galaxies=galaxies,
        galaxies_test=galaxies_test,
        triplets=triplets,
        train_minutes=train_minutes,
        max_epochs=max_epochs,
        seed=seed,
        progress=progress,
    )


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def print_summary(result: dict[str, Any], wall: float) -> None:
    """Where everything is, the headline metrics and the wall time per stage."""
    print("\nstampflow demo: done")
    for name, line in result["ingest"].items():
        print(f"  ingest {name}: {line.split(' store=')[0]}")
    print("  catalogs:")
    for name, path in result["catalogs"].items():
        print(f"    {name}: {path}")
    print("  reports:")
    for name, path in result["reports"].items():
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
    sim = result["training"].get("realbogus", {})
    if "test/auc" in sim:
        print(f"    real-bogus (simulated ZTF test split): ROC AUC {_fmt(sim['test/auc'])}")
    print("  wall time per stage:")
    for name, seconds in result["timings_s"].items():
        print(f"    {name:<9} {seconds:7.1f} s")
    print(f"    {'total':<9} {wall:7.1f} s (tasks: {result['tasks']})")
    print(f"  manifest: {Path(result['out']) / 'manifest.json'}")


QUICK = {"galaxies": 60, "galaxies_test": 30, "triplets": 80, "train_minutes": 0.2, "max_epochs": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    parser.add_argument(
        "--galaxies", type=int, default=2000, help="simulated training galaxies (default 2000)"
    )
    parser.add_argument(
        "--galaxies-test", type=int, default=400, help="simulated test galaxies (default 400)"
    )
    parser.add_argument("--triplets", type=int, default=3000, help="simulated ZTF triplets (default 3000)")
    parser.add_argument(
        "--train-minutes", type=float, default=3.0, help="wall-time budget of each training (default 3)"
    )
    parser.add_argument(
        "--max-epochs", type=int, default=30, help="epoch limit of each training (default 30)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny demo (seconds): for tests")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    options = {
        "galaxies": args.galaxies,
        "galaxies_test": args.galaxies_test,
        "triplets": args.triplets,
        "train_minutes": args.train_minutes,
        "max_epochs": args.max_epochs,
    }
    if args.quick:
        options.update(QUICK)
    print(f"stampflow demo into {args.out} (starting Prefect...)", flush=True)
    t0 = time.perf_counter()
    result = demo_flow(out=args.out, seed=args.seed, progress=not args.no_progress, **options)
    print_summary(result, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
