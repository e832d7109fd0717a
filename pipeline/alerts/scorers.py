"""One or several real-bogus models applied to decoded alerts: one decode and one stamp batch, N models.

:class:`AlertScorer` conforms a micro-batch of decoded alerts once (:func:`pipeline.alerts.stamps.conform`),
computes its quality flags once (:mod:`pipeline.alerts.quality`) and scores it with each model
(:class:`pipeline.scoring.scorer.Scorer`). Columns, one row per alert, as brokers' science modules write
them (Fink: one column per module beside the alert's fields):

- the first model's columns as with one model: ``p_<class>``, ``rb``, ``label``, ``rbversion``,
  ``model_name``, ``model_version``;
- every further model's score columns with its suffix: ``p_<class>_<suffix>``, ``rb_<suffix>``,
  ``label_<suffix>``, ``rbversion_<suffix>``; the suffix is the card's ``model_name`` with characters other
  than letters, digits and ``_`` made ``_`` (``stampflow-realbogus-ztf`` -> ``stampflow_realbogus_ztf``),
  and ``_2``, ``_3``... after it when models share a name (:attr:`AlertScorer.models` lists them);
- ``n_masked`` and the quality columns, computed once on the stamps every model scored.

Broker records: one per alert and model (:meth:`AlertScorer.records`), each with its model's
``classifier_name``/``classifier_version``. Every model must take the same stamp size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from data_catalogs.alert_schemas import ALERT_COLUMNS, column_descriptions, column_units
from pipeline.alerts.broker import classification_records
from pipeline.alerts.decode import Alert, Reject
from pipeline.alerts.quality import QualityThresholds, load_quality_config, quality_columns
from pipeline.alerts.stamps import conform
from pipeline.io import StampRejected
from pipeline.scoring import Scorer, StampBatch

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


def model_suffixes(names: Sequence[str]) -> list[str]:
    """Column suffix of each model name (module docstring): unique, ``_2``, ``_3``... for repeats."""
    out: list[str] = []
    for name in names:
        base = re.sub(r"\W", "_", name.strip()) or "model"
        suffix, n = base, 1
        while suffix in out:
            n += 1
            suffix = f"{base}_{n}"
        out.append(suffix)
    return out


def _card_shape(scorer: Scorer) -> tuple[int, int] | None:
    shape = scorer.card.get("stamp_shape")
    return (int(shape[0]), int(shape[1])) if shape else None


class AlertScorer:
    """Real-bogus :class:`Scorer` (one, or several scoring each batch) applied to decoded alerts.

    Args:
        scorer: the model and its card (task ``realbogus``), or several: the first keeps the plain column
            names (module docstring).
        stamp_shape: ``(H, W)`` the stamps are brought to (default: the cards' ``stamp_shape``, else 63x63).
        quality: thresholds of the quality flags (default: the shipped config).

    Raises:
        ValueError: a model is not a real-bogus model, or the models' cards ask for different stamp sizes.
    """

    def __init__(
        self,
        scorer: Scorer | Sequence[Scorer],
        stamp_shape: tuple[int, int] | None = None,
        *,
        quality: QualityThresholds | None = None,
    ):
        self.scorers = [require_real_bogus(s) for s in ([scorer] if isinstance(scorer, Scorer) else scorer)]
        if not self.scorers:
            raise ValueError("no model to score alerts with")
        self.scorer = self.scorers[0]
        shapes = {_card_shape(s) for s in self.scorers} - {None}
        if stamp_shape is None and len(shapes) > 1:
            raise ValueError(
                f"the models take different stamp sizes {sorted(shapes)}: score them in separate runs"
            )
        self.stamp_shape = tuple(stamp_shape or next(iter(shapes), None) or DEFAULT_STAMP_SHAPE)
        self.class_names = list(self.scorer.output_names)
        self.suffixes = model_suffixes([s.model_name for s in self.scorers])
        self.quality = quality or load_quality_config()
        #: micro-batches conformed and flagged (each once, whatever the number of models)
        self.n_batches = 0
        #: model suffix -> micro-batches it scored
        self.model_calls = dict.fromkeys(self.suffixes, 0)

    @property
    def classifier_name(self) -> str:
        return self.scorer.model_name

    @property
    def classifier_version(self) -> str:
        return self.scorer.model_version

    @property
    def models(self) -> list[dict[str, str]]:
        """``name``, ``version``, ``sha256`` and column ``suffix`` ('' for the first) of each model."""
        return [
            {
                "name": s.model_name,
                "version": s.model_version,
                "sha256": str(s.card.get("weights_sha256", "")),
                "suffix": "" if i == 0 else suffix,
            }
            for i, (s, suffix) in enumerate(zip(self.scorers, self.suffixes, strict=True))
        ]

    @property
    def other_score_columns(self) -> list[str]:
        """Score columns of the models after the first, suffixed (module docstring), in catalog order."""
        return [
            f"{name}_{suffix}"
            for scorer, suffix in zip(self.scorers[1:], self.suffixes[1:], strict=True)
            for name in scorer.head.descriptions()
        ]

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
        batch = StampBatch(stamps, mask, alert_catalog(kept))
        cols = self.scorer.columns(batch)
        cols.pop("store_row", None)
        for scorer, suffix in zip(self.scorers[1:], self.suffixes[1:], strict=True):
            other = scorer.columns(batch)
            cols.update({f"{name}_{suffix}": other[name] for name in scorer.head.descriptions()})
        if alerts:
            self.n_batches += 1
            for suffix in self.suffixes:
                self.model_calls[suffix] += 1
        cols.update(quality_columns(stamps, mask, batch.catalog, cols["n_masked"], self.quality))
        cols["scored_at"] = np.full(len(kept), scored_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), dtype=object)
        return cols, rejects

    def records(self, cols: Mapping[str, np.ndarray], scored_at: datetime) -> list[dict[str, Any]]:
        """Broker records of scored columns: one per alert and model, model by model."""
        records = []
        for i, scorer in enumerate(self.scorers):
            tail = "" if i == 0 else f"_{self.suffixes[i]}"
            names = list(scorer.output_names)
            view = {"objectId": cols["objectId"], "candid": cols["candid"]}
            view.update({f"p_{c}": cols[f"p_{c}{tail}"] for c in names})
            records += classification_records(view, names, scorer.model_name, scorer.model_version, scored_at)
        return records

    @property
    def meta(self) -> dict[str, Any]:
        """Table meta: the first model's (:attr:`pipeline.scoring.scorer.Scorer.meta`), every model and the
        quality thresholds."""
        return {**self.scorer.meta, "models": self.models, "quality_thresholds": self.quality.to_dict()}

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
        d["flag_masked"] = (
            f"True when n_masked is above masked.max_pixels = {self.quality.masked_max_pixels} "
            "(scored with masked pixels filled)"
        )
        for scorer, suffix in zip(self.scorers[1:], self.suffixes[1:], strict=True):
            for name, text in scorer.head.descriptions().items():
                d[f"{name}_{suffix}"] = f"{text}; model {scorer.model_name} {scorer.model_version}"
        return d
