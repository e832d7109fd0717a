"""The five stages of the end-to-end demo (:mod:`flows.demo`), one function each, and the run folder they
share (:class:`DemoRun`). Each stage runs the flows' own stage functions on the demo's task runner and is
recorded by one :class:`flows.stages.StageRecorder` into ``<out>/manifest.json``.

Run folder ``out``::

    sim/{galaxies,galaxies_test,transients}/      simulated inputs
    {galaxies,galaxies_test,transients,ztf_alerts,galaxies_real}/stamps.h5 (+ rejects.csv)
    ztf_alerts/reference_labels.csv               ZTF's drb/rb > 0.5 of the real alerts
    checkpoints/{morphology,realbogus}/model.ckpt, logs/train-<task>.log
    {galaxies_test,ztf_alerts,galaxies_real}/scored.parquet, */report/index.html

The real galaxies (``galaxies_real``: 100 real Kaggle Galaxy Zoo JPEGs shipped in
``data_catalogs/samples/galaxy_zoo_real``) are ingested with the frame of the shipped morphology model
(:data:`REAL_GALAXY_MODEL`), scored by it and reported against their real volunteer votes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.task_runners import TaskRunner
from pydantic import BaseModel, Field

from flows.ingest_flow import ingest_stage
from flows.params import FitsSource, GalaxyZooSource, LabelledSource, SimulateParams, TrainParams
from flows.progress import TimeBar, step_bar
from flows.score_flow import report_stage, score_stage
from flows.simulate_flow import simulate_stage
from flows.stages import StageRecorder
from flows.train_flow import train_stage
from models.frame_fit import preset_ingest_frame
from pipeline.prep import IngestFrame, frame_from
from pipeline.store import IngestReport

SAMPLES = Path(__file__).resolve().parent.parent / "data_catalogs" / "samples"
ZTF_TRIPLETS = SAMPLES / "ztf_triplets"
#: Real Kaggle Galaxy Zoo galaxies (JPEGs + their vote fractions) that no shipped model trained on.
REAL_GALAXIES = SAMPLES / "galaxy_zoo_real"
#: The morphology preset the demo trains on the simulated galaxies.
MORPHOLOGY_PRESET = "small"
#: The real-bogus preset the demo trains on the simulated triplets: ``ztf`` on the central 31x31 of the
#: 63x63 cutouts, 30x faster per step than ``ztf`` (so its step budget covers several epochs).
REALBOGUS_PRESET = "ztf_fast"
#: The shipped morphology model (models/pretrained) the demo scores the real galaxies with.
REAL_GALAXY_MODEL = "gz_sdss"
ZTF_PIXEL_SCALE_ARCSEC = 1.01
ZTF_CHANNELS = ["SCIENCE", "TEMPLATE", "DIFFERENCE"]
#: ZTF's own real-bogus scores above this count as real in the reference labels of the real alerts.
ZTF_SCORE_THRESHOLD = 0.5
#: Model task -> the data set its model scores and is reported on.
SCORED_SETS = {"morphology": "galaxies_test", "realbogus": "ztf_alerts", "morphology_real": "galaxies_real"}


class DemoOptions(BaseModel):
    """Sizes, training budget, seed and progress bars of a demo run."""

    galaxies: int = Field(2000, ge=1, description="simulated training galaxies")
    galaxies_test: int = Field(300, ge=1, description="simulated test galaxies")
    triplets: int = Field(3000, ge=1, description="simulated ZTF triplets")
    morphology_steps: int = Field(1000, ge=1, description="optimiser steps of the morphology training")
    realbogus_steps: int = Field(500, ge=1, description="optimiser steps of the real-bogus training")
    train_minutes: float = Field(3.0, gt=0, description="wall-time cap of each training (steps end it first)")
    max_epochs: int = Field(30, ge=1, description="epoch limit of each training")
    seed: int = Field(0, ge=0, description="seed of the simulations and trainings")
    progress: bool = Field(True, description="progress bars")


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


@dataclass
class DemoRun:
    """One demo run: its folder ``out``, options, task runner and stage recorder."""

    out: Path
    options: DemoOptions
    runner: TaskRunner
    recorder: StageRecorder

    @property
    def sim(self) -> Path:
        return self.out / "sim"

    def store(self, name: str) -> Path:
        """The stamp store of the data set ``name`` (galaxies, galaxies_test, transients, ztf_alerts)."""
        return self.out / name / "stamps.h5"

    @property
    def labels_csv(self) -> Path:
        """The reference labels of the real alerts (:func:`ztf_reference_labels`)."""
        return self.out / "ztf_alerts" / "reference_labels.csv"

    def catalogs(self) -> dict[str, Path]:
        """Model task -> its scored catalog."""
        return {task: self.out / name / "scored.parquet" for task, name in SCORED_SETS.items()}

    def reports(self) -> dict[str, Path]:
        """Model task -> its report folder."""
        return {task: self.out / name / "report" for task, name in SCORED_SETS.items()}


def simulate(run: DemoRun) -> None:
    """Stage 1: training galaxies, test galaxies (the next seed) and ZTF-like triplets, into ``sim/``.

    The galaxies are rendered like the real Kaggle/SDSS JPEGs (``sdss-jpeg``), so the morphology model
    trains on what real galaxies look like and goes through the same ingest frame."""
    o, sim = run.options, run.sim
    galaxies = {"what": "galaxies", "style": "sdss-jpeg"}
    datasets = [
        SimulateParams(**galaxies, n=o.galaxies, out=sim / "galaxies", seed=o.seed),
        SimulateParams(**galaxies, n=o.galaxies_test, out=sim / "galaxies_test", seed=o.seed + 1),
        SimulateParams(what="transients", n=o.triplets, out=sim / "transients", survey="ztf", seed=o.seed),
    ]
    with run.recorder.stage("simulate", {"datasets": [s.model_dump(mode="json") for s in datasets]}) as stage:
        stage.add(simulate_stage(run.runner, datasets, progress=o.progress))


def shipped_frame(name: str) -> IngestFrame | None:
    """The ingest frame recorded in the card of the shipped model ``name`` (None: images as read)."""
    from models.checkpoints import read_card
    from models.pretrained import resolve_checkpoint

    return frame_from(read_card(resolve_checkpoint(name)).get("frame"))


def ingest_sources(run: DemoRun) -> dict[str, Any]:
    """Data set name -> its ingest source: the simulated galaxies and triplets, the real ZTF alerts and the
    real galaxies (with the frame of the shipped morphology model)."""

    def galaxy_zoo(name: str) -> GalaxyZooSource:
        folder, frame = run.sim / name, preset_ingest_frame(MORPHOLOGY_PRESET)
        return GalaxyZooSource(
            catalog=folder / "training_solutions.csv",
            images_dir=folder / "images",
            frame_crop=frame.crop,
            frame_size=frame.size,
        )

    real_frame = shipped_frame(REAL_GALAXY_MODEL)
    return {
        "galaxies": galaxy_zoo("galaxies"),
        "galaxies_test": galaxy_zoo("galaxies_test"),
        "transients": LabelledSource(folder=run.sim / "transients"),
        "ztf_alerts": FitsSource(
            inputs=[ZTF_TRIPLETS],
            extensions=ZTF_CHANNELS,
            stamp_shape=(63, 63),
            size_policy="pad",
            header_keys=["OBJECTID", "CANDID", "ISDIFPOS", "RB", "DRB"],
            pixel_scale_arcsec=ZTF_PIXEL_SCALE_ARCSEC,
        ),
        "galaxies_real": GalaxyZooSource(
            catalog=REAL_GALAXIES / "training_solutions.csv",
            images_dir=REAL_GALAXIES / "images",
            frame_crop=real_frame.crop if real_frame else None,
            frame_size=real_frame.size if real_frame else None,
        ),
    }


def ingest(run: DemoRun) -> dict[str, IngestReport]:
    """Stage 2: every data set into its stamp store, then the reference labels of the real alerts.

    Raises:
        RuntimeError: the real alerts did not ingest (none ingested, or inputs != ingested + rejected).
    """
    sources = ingest_sources(run)
    with run.recorder.stage("ingest", {n: s.model_dump(mode="json") for n, s in sources.items()}) as stage:
        with step_bar("ingest", len(sources), run.options.progress) as bar:
            for name, source in sources.items():
                stage.add(ingest_stage(run.runner, source, run.store(name)))
                bar.update(1)
        reports = {name: done.result for name, done in zip(sources, stage.results, strict=True)}
        stage.outputs = {name: str(run.store(name)) for name in sources}
        stage.extra["counts"] = {name: report.summary() for name, report in reports.items()}
    alerts = reports["ztf_alerts"]
    if alerts.n_ingested + alerts.n_rejected != alerts.n_inputs or alerts.n_ingested == 0:
        raise RuntimeError(f"the real ZTF alerts did not ingest: {alerts.summary()}")
    ztf_reference_labels(run.store("ztf_alerts"), run.labels_csv)
    return reports


def train(run: DemoRun) -> dict[str, dict[str, Any]]:
    """Stage 3: the morphology (``small``) and real-bogus (``ztf_fast``) models side by side, one thread
    each, for a fixed number of optimiser steps (so the same seed gives the same models on any machine;
    ``train_minutes`` only caps a very slow one); returns model task -> training result (``checkpoint``,
    ``metrics``, ...)."""
    o = run.options
    budget = {"max_epochs": o.max_epochs, "max_minutes": o.train_minutes, "seed": o.seed, "threads": 1}
    models = {
        "morphology": ("galaxies", MORPHOLOGY_PRESET, o.morphology_steps),
        "realbogus": ("transients", REALBOGUS_PRESET, o.realbogus_steps),
    }
    trainings = [
        TrainParams(
            task=task,
            stores=[run.store(data)],
            out=run.out / "checkpoints" / task,
            preset=preset,
            max_steps=steps,
            **budget,
        )
        for task, (data, preset, steps) in models.items()
    ]
    logs = [run.out / "logs" / f"train-{p.task}.log" for p in trainings]
    with run.recorder.stage("train", {"models": [p.model_dump(mode="json") for p in trainings]}) as stage:
        with TimeBar("train (2 models side by side)", o.train_minutes * 60 + 30, o.progress):
            trained = stage.add(train_stage(run.runner, trainings, log_files=logs))
        results = {p.task: r for p, r in zip(trainings, trained.result, strict=True)}
        stage.outputs = {task: str(Path(r["checkpoint"])) for task, r in results.items()}
        stage.extra["metrics"] = {task: r["metrics"] for task, r in results.items()}
    return results


def score(run: DemoRun, checkpoints: dict[str, Path]) -> dict[str, Path]:
    """Stage 4: the test galaxies with the morphology model, the real alerts with the real-bogus model and
    the real galaxies with the shipped morphology model; returns model task -> scored catalog."""
    from models.pretrained import resolve_checkpoint

    checkpoints = {**checkpoints, "morphology_real": resolve_checkpoint(REAL_GALAXY_MODEL)}
    catalogs = run.catalogs()
    with run.recorder.stage("score", {"models": [str(c) for c in checkpoints.values()]}) as stage:
        with step_bar("score", len(checkpoints), run.options.progress) as bar:
            for task, checkpoint in checkpoints.items():
                stage.add(score_stage(run.runner, checkpoint, run.store(SCORED_SETS[task]), catalogs[task]))
                bar.update(1)
        stage.outputs = {task: str(path) for task, path in catalogs.items()}
    return catalogs


def report(run: DemoRun, catalogs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Stage 5: morphology against the test galaxies' simulated votes, real-bogus against ZTF's own
    scores (joined on ``candid``), the real galaxies against their volunteers' votes; publishes each as an
    artifact (``demo-<task>``) and returns model task -> headline metrics."""
    labels = {
        "morphology": (run.store("galaxies_test"), None),
        "realbogus": (run.labels_csv, "candid"),
        "morphology_real": (run.store("galaxies_real"), None),
    }
    reports = run.reports()
    config = {"labels": {task: str(path) for task, (path, _) in labels.items()}}
    with run.recorder.stage("report", config) as stage:
        with step_bar("report", len(catalogs), run.options.progress) as bar:
            for task, catalog in catalogs.items():
                path, on = labels[task]
                stage.add(report_stage(run.runner, catalog, path, reports[task], on=on))
                bar.update(1)
        for task, done in zip(catalogs, stage.results, strict=True):
            run.recorder.publish_report(
                done.result, key=f"demo-{task.replace('_', '-')}"
            )  # keys: lowercase, digits, dashes
        stage.outputs = {task: str(folder / "index.html") for task, folder in reports.items()}
    return {task: dict(done.result["headline"]) for task, done in zip(catalogs, stage.results, strict=True)}
