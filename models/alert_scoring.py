"""The broker-facing real-bogus model of a process: :func:`score_alerts` scores a pandas DataFrame of alert
packets (what a Spark pandas UDF gets, as Fink runs its science modules) with a checkpoint named by the
``model=`` argument or the environment variable ``STAMPFLOW_ALERT_MODEL``; the checkpoint is loaded once per
process (per path, file modification time and device) and reused by every later call, as a Spark
executor's Python worker needs. Quality-flag thresholds: the shipped defaults, or the TOML file named by
``quality=`` or ``$STAMPFLOW_ALERT_QUALITY`` (:mod:`pipeline.alerts.quality`), read once per process. The
scoring itself is :mod:`pipeline.alerts` (files, frames, followed folders); this module only loads
checkpoints into a :class:`pipeline.scoring.scorer.Scorer`."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pandas as pd

from models.checkpoints import load_checkpoint
from pipeline.alerts import QualityThresholds, load_quality_config, require_real_bogus, score_alert_frame
from pipeline.scoring import Scorer

MODEL_ENV = "STAMPFLOW_ALERT_MODEL"
QUALITY_ENV = "STAMPFLOW_ALERT_QUALITY"


@functools.lru_cache(maxsize=4)
def _cached_quality(path: str | None, mtime_ns: int) -> QualityThresholds:
    return load_quality_config(path)


def load_quality(quality: str | os.PathLike | None = None) -> QualityThresholds:
    """The quality-flag thresholds of ``quality`` (a TOML file), else ``$STAMPFLOW_ALERT_QUALITY``, else the
    shipped defaults; read once per process and file version. Raises
    :class:`pipeline.alerts.QualityConfigError` (naming the file and key) for a config that cannot be used."""
    name = quality if quality is not None else os.environ.get(QUALITY_ENV) or None
    if name is None:
        return _cached_quality(None, 0)
    path = Path(name).resolve()
    return _cached_quality(str(path), path.stat().st_mtime_ns if path.exists() else 0)


@functools.lru_cache(maxsize=4)
def _cached_scorer(path: str, mtime_ns: int, device: str) -> Scorer:
    module, card = load_checkpoint(path, map_location=device)
    return require_real_bogus(Scorer(module, card, device))


def load_alert_scorer(model: str | os.PathLike | None = None, device: str = "cpu") -> Scorer:
    """The :class:`pipeline.scoring.scorer.Scorer` of a real-bogus checkpoint, loaded once per process and
    cached.

    Args:
        model: checkpoint path; None: the environment variable ``STAMPFLOW_ALERT_MODEL``.
        device: torch device.

    Raises:
        ValueError: no model named, or not a real-bogus model; models.checkpoints.CheckpointError: the
            checkpoint cannot be used.
    """
    name = model if model is not None else os.environ.get(MODEL_ENV)
    if not name:
        raise ValueError(f"no model: pass model= (a checkpoint path) or set {MODEL_ENV}")
    path = Path(name).resolve()
    mtime = path.stat().st_mtime_ns if path.exists() else 0
    return _cached_scorer(str(path), mtime, str(device))


def score_alerts(
    frame: pd.DataFrame,
    model: str | os.PathLike | list[str | os.PathLike] | None = None,
    *,
    device: str = "cpu",
    quality: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Score a pandas DataFrame of alert packets (Fink's columns) with a real-bogus model (or a list of
    them: each row decoded once and scored by each, the others' columns suffixed with their names).

    Input and output are those of :func:`pipeline.alerts.frames.score_alert_frame`: cutout columns
    ``cutoutScience``/``cutoutTemplate``/``cutoutDifference`` (bytes or ``{stampData}`` structs), optional
    ``objectId``, ``candid``, ``candidate``; out one row per input row (same index) with ``rb``,
    ``p_<class>``, ``label``, ``classifier_name``, ``classifier_version``, the quality flags
    (``quality_flags`` bits, ``flag_*``) and ``reason``/``error`` for rows that could not be scored. The
    model: ``model`` or ``$STAMPFLOW_ALERT_MODEL``, cached per process; thresholds: :func:`load_quality`.

    With Spark: ``df.mapInPandas(lambda frames: (score_alerts(f) for f in frames), schema)``.
    """
    models = model if isinstance(model, list) else [model]
    scorers = [load_alert_scorer(m, device) for m in models]
    return score_alert_frame(frame, scorers, quality=load_quality(quality))


#: The struct a Spark UDF of :func:`alert_score_udf` returns per alert (Spark DDL).
UDF_SCHEMA = "objectId string, candid long, rb double, label string, quality_flags int, reason string"


def alert_score_udf(
    model: str | os.PathLike | None = None, *, device: str = "cpu", quality: str | os.PathLike | None = None
) -> Any:
    """A Spark ``pandas_udf`` scoring alerts, as a Fink science module runs (needs pyspark).

    Call it on the columns ``objectId``, ``candid``, ``candidate`` (struct) and the three cutouts' bytes
    (``cutoutScience.stampData``, ``cutoutTemplate.stampData``, ``cutoutDifference.stampData``); it returns a
    struct :data:`UDF_SCHEMA` per alert (``rb`` null and ``reason`` set when the alert could not be scored;
    ``quality_flags`` the quality bits, :data:`data_catalogs.alert_schemas.QUALITY_BITS`, 0 when not scored).
    The model (path, shipped name resolved by the caller, or ``$STAMPFLOW_ALERT_MODEL``) is loaded once per
    executor Python worker (:func:`load_alert_scorer`); ``quality``: thresholds file (:func:`load_quality`).
    """
    from pyspark.sql.functions import pandas_udf

    @pandas_udf(UDF_SCHEMA)  # type: ignore[call-overload]
    def stampflow_rb(
        object_id: pd.Series,
        candid: pd.Series,
        candidate: pd.DataFrame,
        science: pd.Series,
        template: pd.Series,
        difference: pd.Series,
    ) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "objectId": object_id,
                "candid": candid,
                # Spark hands a struct column over as a DataFrame; the frame scorer wants one dict per row
                "candidate": candidate.astype(object).where(candidate.notna(), None).to_dict("records"),
                "cutoutScience": science,
                "cutoutTemplate": template,
                "cutoutDifference": difference,
            }
        )
        scored = score_alerts(frame, model, device=device, quality=quality)
        # a row rejected before its fields were read (no cutouts, not FITS) keeps the input's identifiers
        scored["candid"] = scored["candid"].where(scored["candid"] >= 0, candid.values)
        scored["objectId"] = scored["objectId"].where(scored["objectId"] != "", object_id.values)
        columns = ["objectId", "candid", "rb", "label", "quality_flags", "reason"]
        return scored[columns].astype({"rb": "float64", "quality_flags": "int32"})

    return stampflow_rb
