"""Score a pandas DataFrame of alert packets, one output row per input row: what a Spark pandas UDF gets
(Fink's column names: ``cutoutScience``, ``cutoutTemplate``, ``cutoutDifference``; ``objectId``, ``candid``,
a ``candidate`` (ZTF) or ``diaSource`` (Rubin) struct).

Rows become :class:`pipeline.alerts.decode.Alert` records and go through the same
:class:`pipeline.alerts.scoring.AlertScorer` as alert files; a row that cannot be scored keeps its place
with its reason and error. A row repeating the ``candid`` of an earlier row is scored once: the copy keeps
its place with reason ``duplicate`` and no score (:mod:`pipeline.alerts.duplicates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from data_catalogs.alert_schemas import (
    ALERT_COLUMNS,
    CUTOUT_FIELDS,
    QUALITY_COLUMNS,
    AlertSchemaError,
    alert_row,
)
from pipeline.alerts.broker import utc_datetime
from pipeline.alerts.cutouts import decode_cutout
from pipeline.alerts.decode import Alert
from pipeline.alerts.duplicates import DuplicateFilter
from pipeline.alerts.quality import QualityThresholds
from pipeline.alerts.scorers import AlertScorer
from pipeline.alerts.scoring import DEFAULT_BATCH_ALERTS
from pipeline.io import StampRejected
from pipeline.scoring import Scorer


def _cell_bytes(value: Any) -> bytes | None:
    """Cutout bytes from a frame cell: bytes, a ``{fileName, stampData}`` struct (dict), or None."""
    if isinstance(value, Mapping):
        value = value.get("stampData")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value) if len(value) else None
    if isinstance(value, np.ndarray) and value.dtype == np.uint8:
        return value.tobytes() if value.size else None
    return None


def _frame_column(frame: pd.DataFrame, field: str) -> pd.Series | None:
    for name in (field, f"{field}.stampData", f"{field}_stampData"):
        if name in frame.columns:
            return frame[name]
    return None


_QUALITY_DTYPES = {"bool": bool, "int": np.int32, "float": np.float32}

_RECORD_COLUMNS = (
    "objectId",
    "candid",
    "schemavsn",
    "candidate",
    "diaSourceId",
    "diaSource",
    "lsst_schema_version",
)


def _frame_row(frame: pd.DataFrame, i: int, label: str) -> dict[str, Any]:
    """The alert row of frame row ``i``: from its ``candidate`` (ZTF) or ``diaSource`` (Rubin) struct when the
    frame has one, else only ``objectId``/``candid``."""
    record = {c: frame[c].iloc[i] for c in _RECORD_COLUMNS if c in frame.columns}
    family = next(
        (
            f
            for f, key in (("ztf", "candidate"), ("rubin", "diaSource"))
            if isinstance(record.get(key), Mapping)
        ),
        None,
    )
    if family is not None:
        try:
            return alert_row(record, family)
        except AlertSchemaError as err:
            raise StampRejected("unknown_schema", f"{label}: {err}") from err
    row = {
        name: {"str": "", "int": -1, "float": np.nan}[kind] for name, (kind, _, _) in ALERT_COLUMNS.items()
    }
    row["diff_sign"] = 0
    for name in ("objectId", "candid"):
        if name in record and record[name] is not None:
            row[name] = str(record[name]) if name == "objectId" else int(record[name])
    return row


def _frame_alert(frame: pd.DataFrame, i: int, label: str, cutouts: list[pd.Series]) -> Alert:
    """Frame row ``i`` as an :class:`Alert`."""
    planes, masks = [], []
    for field_name, column in zip(CUTOUT_FIELDS, cutouts, strict=True):
        data = _cell_bytes(column.iloc[i])
        if data is None:
            raise StampRejected("no_cutouts", f"{label}: no {field_name} stamp")
        pixels, mask = decode_cutout(data, f"{label}:{field_name}")
        planes.append(pixels)
        masks.append(mask)
    if len({p.shape for p in planes}) != 1:
        raise StampRejected(
            "bad_dimensions", f"{label}: the cutouts differ in shape {[p.shape for p in planes]}"
        )
    row = _frame_row(frame, i, label)
    row["cutout_height"], row["cutout_width"] = planes[0].shape
    return Alert(label, row, np.stack(planes), np.stack(masks))


def _scored_columns(alert_scorer: AlertScorer) -> list[str]:
    """The output columns a scored row fills in (scores of every model, masked pixels, quality)."""
    names = [f"p_{c}" for c in alert_scorer.class_names]
    others = alert_scorer.other_score_columns
    return ["rb", *names, "label", *others, "n_masked", *QUALITY_COLUMNS, "flag_masked"]


def _unscored_frame(index: pd.Index, alert_scorer: AlertScorer) -> pd.DataFrame:
    """The output frame before any row is scored: NaN scores, '' labels, no flag, no reason."""
    n = len(index)
    text = {"label", "objectId", "reason", "error"} | {
        c for c in alert_scorer.other_score_columns if c.startswith(("label", "rbversion"))
    }
    quality = {name: kind for name, (kind, _, _) in QUALITY_COLUMNS.items()}
    columns: dict[str, np.ndarray] = {
        "objectId": np.full(n, "", dtype=object),
        "candid": np.full(n, -1, np.int64),
    }
    for name in _scored_columns(alert_scorer):
        if name in text:
            columns[name] = np.full(n, "", dtype=object)
        elif name in quality:
            columns[name] = np.zeros(n, _QUALITY_DTYPES[quality[name]])
        elif name == "flag_masked":
            columns[name] = np.zeros(n, bool)
        elif name == "n_masked":
            columns[name] = np.full(n, -1, np.int32)
        else:
            columns[name] = np.full(n, np.nan, np.float32)
    columns["classifier_name"] = np.full(n, alert_scorer.classifier_name, dtype=object)
    columns["classifier_version"] = np.full(n, alert_scorer.classifier_version, dtype=object)
    columns["reason"] = np.full(n, "", dtype=object)
    columns["error"] = np.full(n, "", dtype=object)
    first = list(columns)[: list(columns).index("n_masked")]  # ids and scores, then who scored, as before
    order = [*first, "classifier_name", "classifier_version", *(c for c in columns if c not in first)]
    return pd.DataFrame(columns, index=index)[list(dict.fromkeys(order))]


def score_alert_frame(
    frame: pd.DataFrame,
    scorer: Scorer | Sequence[Scorer],
    *,
    stamp_shape: tuple[int, int] | None = None,
    quality: QualityThresholds | None = None,
) -> pd.DataFrame:
    """Score a frame of alert packets, one output row per input row (same index), for Spark pandas UDFs.

    Args:
        frame: one row per alert with the cutouts in columns ``cutoutScience``, ``cutoutTemplate``,
            ``cutoutDifference`` (Fink's names; also ``cutoutScience.stampData``), each cell the cutout's
            bytes (gzipped FITS for ZTF, plain FITS for Rubin) or a struct/dict with ``stampData``.
            ``objectId``, ``candid`` and a ``candidate`` struct (``xpos``, ``ypos``, ``isdiffpos``, ...) are
            used where present.
        scorer: the real-bogus model and card, or several (each row decoded once and scored by each:
            :mod:`pipeline.alerts.scorers`).
        stamp_shape: stamp size (default the card's).
        quality: thresholds of the quality flags (default the shipped config).

    Returns:
        A DataFrame with the frame's index: ``objectId``, ``candid``, ``rb`` (NaN when not scored),
        ``p_<class>``, ``label``, ``classifier_name``, ``classifier_version``, ``n_masked``, the quality
        columns (:mod:`pipeline.alerts.quality`: ``flag_*``, ``nan_fraction``, ``core_peak``,
        ``quality_flags``; zero/False when not scored), ``reason`` and
        ``error`` ('' when scored: a row that cannot be scored is kept, with its reason; a copy of an
        earlier row's alert is ``duplicate``). With several models, the first model's columns as above and
        the others' ``rb_<suffix>``, ``p_<class>_<suffix>``, ``label_<suffix>``, ``rbversion_<suffix>``.
    """
    alert_scorer = AlertScorer(scorer, stamp_shape, quality=quality)
    missing = [f for f in CUTOUT_FIELDS if _frame_column(frame, f) is None]
    if missing:
        raise KeyError(f"the frame has no cutout columns {missing}; it has {list(frame.columns)}")
    cutouts = [_frame_column(frame, f) for f in CUTOUT_FIELDS]
    n = len(frame)
    out = _unscored_frame(frame.index, alert_scorer)
    alerts, positions, seen = [], [], DuplicateFilter()
    for i in range(n):
        label = f"row {i}"
        try:
            alert = _frame_alert(frame, i, label, cutouts)
        except StampRejected as err:
            out.iloc[i, out.columns.get_loc("reason")] = err.reason
            out.iloc[i, out.columns.get_loc("error")] = str(err)
            continue
        out.iloc[i, out.columns.get_loc("objectId")] = alert.row["objectId"]
        out.iloc[i, out.columns.get_loc("candid")] = alert.row["candid"]
        first = seen.first_source(label, alert.row)
        if first is not None:
            out.iloc[i, out.columns.get_loc("reason")] = "duplicate"
            out.iloc[i, out.columns.get_loc("error")] = seen.message(label, alert.row, first)
            continue
        alerts.append(alert)
        positions.append(i)
    by_label = dict(zip((a.source for a in alerts), positions, strict=True))
    for start in range(0, len(alerts), DEFAULT_BATCH_ALERTS):
        batch = alerts[start : start + DEFAULT_BATCH_ALERTS]
        cols, rejects = alert_scorer.columns(batch, utc_datetime())
        for r in rejects:
            i = by_label[r.source]
            out.iloc[i, out.columns.get_loc("reason")] = r.reason
            out.iloc[i, out.columns.get_loc("error")] = r.error
        rows = [by_label[s] for s in cols["source"]]
        for name in _scored_columns(alert_scorer):
            out.iloc[rows, out.columns.get_loc(name)] = cols[name]
    return out
