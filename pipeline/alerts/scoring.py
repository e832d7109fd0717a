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
``model_version``, the quality flags (:mod:`pipeline.alerts.quality`), ``scored_at`` (ISO 8601 UTC). Several
models can score one run: each micro-batch is decoded and conformed once and scored by each
(:mod:`pipeline.alerts.scorers`: the first model's columns keep their names, the others get a suffix).

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from tqdm import tqdm

from pipeline.alerts.decode import Alert, AlertDecoder, DecodedFile, expand_alert_inputs, is_alert_name
from pipeline.alerts.follow import DecodedLike, FollowReport, FollowSettings, follow
from pipeline.alerts.outputs import AlertOutputs, AlertScoreReport
from pipeline.alerts.quality import QualityThresholds
from pipeline.alerts.scorers import AlertScorer
from pipeline.scoring import Scorer

log = logging.getLogger(__name__)

#: Alerts scored per model call (a ZTF night's micro-batch; memory ~ 100 MB at 63x63).
DEFAULT_BATCH_ALERTS = 1024


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
        report.n_decoded += len(decoded.alerts) + len(decoded.rejects)
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
    scorer: Scorer | Sequence[Scorer],
    out: str | os.PathLike,
    *,
    jsonl: bool = False,
    batch_alerts: int = DEFAULT_BATCH_ALERTS,
    workers: int = 1,
    stamp_shape: tuple[int, int] | None = None,
    progress: bool = False,
    quality: QualityThresholds | None = None,
) -> AlertScoreReport:
    """Score alert files and folders with a real-bogus model (or several: each batch decoded once and
    scored by each, :mod:`pipeline.alerts.scorers`) into the folder ``out`` (module docstring).

    Args:
        inputs: alert files (Avro, Parquet, JSON) and/or folders (searched recursively for ``*.avro``,
            ``*.parquet``, ``*.json``: :mod:`pipeline.alerts.formats`).
        scorer: the model and card (``Scorer(module, card, device)``; loading is the caller's job), or several.
        out: output folder.
        jsonl: also write ``classifications.jsonl``.
        batch_alerts: alerts per model call.
        workers: processes decoding packets (:class:`pipeline.alerts.decode.AlertDecoder`).
        stamp_shape: stamp size (default the card's).
        progress: show a progress bar (files).
        quality: thresholds of the quality flags (default the shipped config: :mod:`pipeline.alerts.quality`).
    """
    alert_scorer = AlertScorer(scorer, stamp_shape, quality=quality)
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
    scorer: Scorer | Sequence[Scorer],
    out: str | os.PathLike,
    *,
    settings: FollowSettings | None = None,
    quality: QualityThresholds | None = None,
    jsonl: bool = False,
    batch_alerts: int = DEFAULT_BATCH_ALERTS,
    workers: int = 1,
    stop: threading.Event | None = None,
    write_batch: Callable[[list[DecodedLike], Path], dict[str, Any]] | None = None,
) -> FollowReport:
    """Follow ``folders`` and score new alert files with a real-bogus :class:`pipeline.scoring.scorer.Scorer`.

    Each batch is written to ``out/batches/NNNNNN/`` (see :func:`alert_batch_writer`); state in
    ``out/follow_state.sqlite``. ``write_batch`` replaces the writer (tests use it to simulate a crash);
    ``quality``: thresholds of the quality flags (default the shipped config).
    """
    alert_scorer = AlertScorer(scorer, quality=quality)
    writer = write_batch or alert_batch_writer(alert_scorer, jsonl=jsonl, batch_alerts=batch_alerts)
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
