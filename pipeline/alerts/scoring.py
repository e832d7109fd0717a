"""Score alert packets directly, without a stamp store: files -> scored catalog + broker records.

The latency path of the alert stream: packets are decoded (:mod:`pipeline.alerts.decode`, optionally in worker
processes), their stamps brought to the model's stamp size (:func:`pipeline.alerts.stamps.conform`: ZTF
CCD-edge stamps padded with the candidate centred, padding masked) and scored in micro-batches by the
:class:`pipeline.scoring.scorer.Scorer` of a real-bogus model (prepared exactly as in training). One run writes a
folder (:class:`pipeline.alerts.outputs.AlertOutputs`: ``scored.parquet``, ``classifications.avro``,
``rejects.csv``, ``summary.json``); a second packet of an alert already scored in the run is the reject ``duplicate``
(:mod:`pipeline.alerts.duplicates`). The scored catalog has one row per scored alert: ``source``
(``path#index``), the alert's columns verbatim (:data:`data_catalogs.alert_schemas.ALERT_COLUMNS`; the
packet's own ``rb``/``rbversion`` become ``rb_input``/``rbversion_input`` because the model's score takes
ZTF's names), ``p_<class>``, ``rb``, ``label``, ``rbversion``, ``n_masked``, ``flag_masked``, ``model_name``,
``model_version``, ``scored_at`` (ISO 8601 UTC).

:func:`pipeline.alerts.frames.score_alert_frame` scores a pandas DataFrame of packets whose cutouts are in
columns (Fink's column names), for a Spark pandas UDF, with the same :class:`AlertScorer`;
:func:`follow_alerts` scores the new files of followed folders batch by batch (each batch folder written by
:func:`write_alert_outputs`; exactly once across restarts: :mod:`pipeline.alerts.follow`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from tqdm import tqdm

from data_catalogs.alert_schemas import ALERT_COLUMNS, column_descriptions, column_units
from pipeline.alerts.broker import classification_records
from pipeline.alerts.decode import (
    Alert,
    AlertDecoder,
    DecodedFile,
    Reject,
    expand_alert_inputs,
    is_alert_name,
)
from pipeline.alerts.follow import DecodedLike, FollowReport, FollowSettings, follow
from pipeline.alerts.outputs import AlertOutputs, AlertScoreReport
from pipeline.alerts.stamps import conform
from pipeline.io import StampRejected
from pipeline.scoring import Scorer, StampBatch

log = logging.getLogger(__name__)

#: Alerts scored per model call (a ZTF night's micro-batch; memory ~ 100 MB at 63x63).
DEFAULT_BATCH_ALERTS = 1024
DEFAULT_STAMP_SHAPE = (63, 63)


def alert_catalog(alerts: Sequence[Alert]) -> pd.DataFrame:
    """``source`` + :data:`ALERT_COLUMNS` of alerts as a typed DataFrame (str, int64, float64)."""
    data: dict[str, np.ndarray] = {"source": np.array([a.source for a in alerts], dtype=object)}
    for name, (kind, _, _) in ALERT_COLUMNS.items():
        dtype = object if kind == "str" else (np.int64 if kind == "int" else np.float64)
        data[name] = np.array([a.row[name] for a in alerts], dtype=dtype)
    return pd.DataFrame(data)


def require_real_bogus(scorer: Scorer) -> Scorer:
    """``scorer`` itself when its model is a real-bogus model; else ValueError naming the model's task."""
    if scorer.task != "realbogus":
        raise ValueError(
            f"alerts are scored with real-bogus models; {scorer.model_name!r} is a {scorer.task} model"
        )
    return scorer


class AlertScorer:
    """A real-bogus :class:`Scorer` applied to decoded alerts.

    Args:
        scorer: the model and its card (task ``realbogus``).
        stamp_shape: ``(H, W)`` the stamps are brought to (default: the card's ``stamp_shape``, else 63x63).
    """

    def __init__(self, scorer: Scorer, stamp_shape: tuple[int, int] | None = None):
        self.scorer = require_real_bogus(scorer)
        card_shape = scorer.card.get("stamp_shape")
        self.stamp_shape = tuple(
            stamp_shape or (card_shape and tuple(int(v) for v in card_shape)) or DEFAULT_STAMP_SHAPE
        )
        self.class_names = list(scorer.output_names)

    @property
    def classifier_name(self) -> str:
        return self.scorer.model_name

    @property
    def classifier_version(self) -> str:
        return self.scorer.model_version

    def stamps(self, alerts: Sequence[Alert]) -> tuple[np.ndarray, np.ndarray, list[Alert], list[Reject]]:
        """``(stamps (B, 3, H, W), mask, kept alerts, rejects)``: alerts conformed to the stamp size."""
        planes, masks, kept, rejects = [], [], [], []
        for alert in alerts:
            try:
                pixels, mask = conform(alert.pixels, alert.mask, self.stamp_shape, alert.row, alert.source)
            except StampRejected as err:
                rejects.append(Reject(alert.source, err.reason, str(err)))
                continue
            planes.append(pixels)
            masks.append(mask)
            kept.append(alert)
        h, w = self.stamp_shape
        if not planes:
            return np.zeros((0, 3, h, w), np.float32), np.zeros((0, 3, h, w), bool), kept, rejects
        return np.stack(planes), np.stack(masks), kept, rejects

    def columns(
        self, alerts: Sequence[Alert], scored_at: datetime
    ) -> tuple[dict[str, np.ndarray], list[Reject]]:
        """Scored-catalog columns of a micro-batch of alerts (module docstring) and the alerts refused."""
        stamps, mask, kept, rejects = self.stamps(alerts)
        cols = self.scorer.columns(StampBatch(stamps, mask, alert_catalog(kept)))
        cols.pop("store_row", None)
        cols["scored_at"] = np.full(len(kept), scored_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), dtype=object)
        return cols, rejects

    def records(self, cols: Mapping[str, np.ndarray], scored_at: datetime) -> list[dict[str, Any]]:
        """Broker records of scored columns."""
        return classification_records(
            cols, self.class_names, self.classifier_name, self.classifier_version, scored_at
        )

    @property
    def units(self) -> dict[str, str]:
        return {**column_units(), **self.scorer.units}

    @property
    def descriptions(self) -> dict[str, str]:
        d = {**column_descriptions(), **self.scorer.descriptions}
        d["source"] = "Alert file and 0-based packet index (path#index)"
        d["rb_input"] = "rb of the packet: ZTF's random-forest real-bogus score"
        d["rbversion_input"] = "rbversion of the packet"
        d["scored_at"] = "When the alert was scored (ISO 8601, UTC)"
        return d


def score_decoded(
    decoded_files: Iterable[DecodedFile], outputs: AlertOutputs, *, batch_alerts: int = DEFAULT_BATCH_ALERTS
) -> AlertScoreReport:
    """Score decoded files into ``outputs`` in micro-batches of ``batch_alerts`` (not closed here)."""
    batch: list[Alert] = []
    report = outputs.report
    iterator: Iterator[DecodedFile] = iter(decoded_files)
    while True:
        t0 = time.perf_counter()
        decoded = next(iterator, None)
        report.decode_seconds += time.perf_counter() - t0
        if decoded is None:
            break
        report.n_files += 1
        outputs.reject(decoded.rejects)
        batch.extend(decoded.alerts)
        if len(batch) >= batch_alerts:
            outputs.score(batch[:batch_alerts])
            batch = batch[batch_alerts:]
    while batch:
        outputs.score(batch[:batch_alerts])
        batch = batch[batch_alerts:]
    return report


def write_alert_outputs(
    decoded_files: Iterable[DecodedFile],
    alert_scorer: AlertScorer,
    folder: str | os.PathLike,
    *,
    jsonl: bool = False,
    batch_alerts: int = DEFAULT_BATCH_ALERTS,
) -> AlertScoreReport:
    """Score decoded files into the output folder ``folder`` (:class:`AlertOutputs`, published when every
    file is decoded and scored, removed when anything fails) and log the report's summary line."""
    with AlertOutputs(folder, alert_scorer, jsonl=jsonl) as outputs:
        score_decoded(decoded_files, outputs, batch_alerts=batch_alerts)
    log.info(outputs.report.summary())
    return outputs.report


def score_alert_files(
    inputs: Sequence[str | os.PathLike],
    scorer: Scorer,
    out: str | os.PathLike,
    *,
    jsonl: bool = False,
    batch_alerts: int = DEFAULT_BATCH_ALERTS,
    workers: int = 1,
    stamp_shape: tuple[int, int] | None = None,
    progress: bool = False,
) -> AlertScoreReport:
    """Score alert files and folders with a real-bogus model into the folder ``out`` (module docstring).

    Args:
        inputs: alert files (Avro, Parquet, JSON) and/or folders (searched recursively for ``*.avro``,
            ``*.parquet``, ``*.json``: :mod:`pipeline.alerts.formats`).
        scorer: the model and card (``Scorer(module, card, device)``; loading is the caller's job).
        out: output folder.
        jsonl: also write ``classifications.jsonl``.
        batch_alerts: alerts per model call.
        workers: processes decoding packets (:class:`pipeline.alerts.decode.AlertDecoder`).
        stamp_shape: stamp size (default the card's).
        progress: show a progress bar (files).
    """
    alert_scorer = AlertScorer(scorer, stamp_shape)
    files = expand_alert_inputs(inputs)
    with AlertDecoder(workers) as decoder:
        decoded = tqdm(
            decoder.decode(files), total=len(files), desc="score alerts", unit="file", disable=not progress
        )
        return write_alert_outputs(decoded, alert_scorer, out, jsonl=jsonl, batch_alerts=batch_alerts)


# ----------------------------------------------------------------------------------------- following
def alert_batch_writer(
    alert_scorer: AlertScorer, *, jsonl: bool = False, batch_alerts: int = DEFAULT_BATCH_ALERTS
) -> Callable[[list[DecodedLike], Path], dict[str, Any]]:
    """``write_batch`` for :func:`follow` that scores decoded alert files into a batch folder
    (:func:`pipeline.alerts.scoring.write_alert_outputs`: scored.parquet, classifications.avro, rejects.csv,
    summary.json) and returns the batch's counts."""

    def write_batch(decoded: list[DecodedLike], folder: Path) -> dict[str, Any]:
        files = cast("list[DecodedFile]", decoded)
        report = write_alert_outputs(files, alert_scorer, folder, jsonl=jsonl, batch_alerts=batch_alerts)
        return {k: v for k, v in report.to_dict().items() if k not in ("outputs", "folder")}

    return write_batch


def follow_alerts(
    folders: Sequence[str | os.PathLike],
    scorer: Scorer,
    out: str | os.PathLike,
    *,
    settings: FollowSettings | None = None,
    jsonl: bool = False,
    batch_alerts: int = DEFAULT_BATCH_ALERTS,
    workers: int = 1,
    stop: threading.Event | None = None,
    write_batch: Callable[[list[DecodedLike], Path], dict[str, Any]] | None = None,
) -> FollowReport:
    """Follow ``folders`` and score new alert files with a real-bogus :class:`pipeline.scoring.scorer.Scorer`.

    Each batch is written to ``out/batches/NNNNNN/`` (see :func:`alert_batch_writer`); state in
    ``out/follow_state.sqlite``. ``write_batch`` replaces the writer (tests use it to simulate a crash).
    """
    writer = write_batch or alert_batch_writer(AlertScorer(scorer), jsonl=jsonl, batch_alerts=batch_alerts)
    with AlertDecoder(workers) as decoder:
        return follow(
            folders,
            out,
            decode=lambda paths: list(decoder.decode(paths)),
            write_batch=writer,
            is_candidate=is_alert_name,
            settings=settings,
            stop=stop,
        )
