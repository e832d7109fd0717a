"""The output folder of one alert scoring run (or one follow batch), written as alerts are scored:

- ``scored.parquet``: one row per scored alert (:class:`pipeline.alerts.scoring.AlertScorer` columns); units,
  descriptions and the model's meta kept (:mod:`pipeline.io.catalogs`);
- ``classifications.avro`` (and ``classifications.jsonl`` on request): one broker record per alert
  (:mod:`pipeline.alerts.broker`);
- ``rejects.csv``: packets that could not be scored, with their reason; a second packet of an alert already
  scored in this run (same survey and ``candid``) is scored once and counted here as ``duplicate``, naming
  the packet that was scored (:mod:`pipeline.alerts.duplicates`);
- ``summary.json``: counts (``n_inputs = n_scored + n_rejected``; ``counts``: inputs = scored + rejected by
  reason + duplicates, with ``flagged`` the scored alerts that carry a quality flag), reasons, flags, the
  models, the quality thresholds used, timings (:class:`AlertScoreReport`).

:class:`AlertOutputs` commits on success (``with AlertOutputs(...) as outputs:``): each file appears under
its final name only when complete.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_catalogs.alert_schemas import QUALITY_BITS
from pipeline.alerts.broker import BrokerWriter, utc_datetime
from pipeline.alerts.decode import Alert, Reject
from pipeline.alerts.duplicates import DuplicateFilter
from pipeline.alerts.quality import flag_counts
from pipeline.io import CommitOnSuccess, ParquetTableWriter, RejectLog, output_errors, write_text

if TYPE_CHECKING:
    from pipeline.alerts.scorers import AlertScorer

SCORED_NAME = "scored.parquet"
REJECTS_NAME = "rejects.csv"
SUMMARY_NAME = "summary.json"


class CountMismatch(RuntimeError):
    """The counts of a scoring run do not add up (a bug: every input must be scored, rejected or a duplicate)."""


@dataclass
class AlertScoreReport:
    """What a scoring run (or one follow batch) did.

    Every input is accounted for: ``n_inputs == n_scored + n_rejected``, where ``n_rejected`` (the rows of
    rejects.csv, by reason in ``reject_reasons``) includes the ``n_duplicates`` copies of alerts scored in
    the run (reason ``duplicate``). ``n_flagged`` of the scored alerts have a quality flag (counts per flag
    in ``flag_counts``): they are scored and counted in ``n_scored``, a breakdown, not another outcome.
    :meth:`counts` gives the identity ``inputs = scored + rejected (by reason, duplicates apart) +
    duplicates``; :meth:`check` raises :class:`CountMismatch` when anything does not add up.

    ``n_decoded``: packets out of the decoder (each decoded once, whatever the number of models);
    ``n_batches``: micro-batches conformed and flagged; ``model_calls``: micro-batches each model scored.
    """

    folder: str
    n_inputs: int = 0
    n_scored: int = 0
    n_rejected: int = 0
    n_files: int = 0
    n_duplicates: int = 0
    n_flagged: int = 0
    n_decoded: int = 0
    n_batches: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    flag_counts: dict[str, int] = field(default_factory=dict)
    model_name: str = ""
    model_version: str = ""
    models: list[dict[str, str]] = field(default_factory=list)
    model_calls: dict[str, int] = field(default_factory=dict)
    quality_thresholds: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    decode_seconds: float = 0.0
    score_seconds: float = 0.0
    seconds: float = 0.0
    alerts_per_s: float = 0.0

    def counts(self) -> dict[str, Any]:
        """``inputs``, ``scored``, ``flagged`` (a subset of ``scored``), ``rejected`` (reason -> n, duplicates
        apart) and ``duplicates``: ``inputs == scored + sum(rejected) + duplicates``."""
        rejected = {k: v for k, v in sorted(self.reject_reasons.items()) if k != "duplicate"}
        return {
            "inputs": self.n_inputs,
            "scored": self.n_scored,
            "flagged": self.n_flagged,
            "rejected": rejected,
            "duplicates": self.n_duplicates,
        }

    def check(self) -> None:
        """Raise :class:`CountMismatch` unless every input is scored, rejected or a duplicate, once."""
        c = self.counts()
        n_rejected = sum(c["rejected"].values())
        checks = {
            f"inputs {c['inputs']} != scored {c['scored']} + rejected {n_rejected} + duplicates "
            f"{c['duplicates']}": c["inputs"] == c["scored"] + n_rejected + c["duplicates"],
            f"n_rejected {self.n_rejected} != rejects by reason {sum(self.reject_reasons.values())}": (
                self.n_rejected == sum(self.reject_reasons.values())
            ),
            f"duplicates {self.n_duplicates} != rejects 'duplicate' {self.reject_reasons.get('duplicate', 0)}": (
                self.n_duplicates == self.reject_reasons.get("duplicate", 0)
            ),
            f"flagged {self.n_flagged} > scored {self.n_scored}": self.n_flagged <= self.n_scored,
            # 0: the alerts came from elsewhere than score_decoded, which counts what it decodes
            f"decoded {self.n_decoded} != inputs {self.n_inputs}": self.n_decoded in (0, self.n_inputs),
        }
        problems = [text for text, ok in checks.items() if not ok]
        if problems:
            raise CountMismatch(f"alert counts of {self.folder} do not add up: {'; '.join(problems)}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}

    def summary(self) -> str:
        """One line for logs and the console."""
        c = self.counts()
        reasons = ", ".join(f"{k}={v}" for k, v in c["rejected"].items()) or "none"
        flags = ", ".join(f"{k}={v}" for k, v in self.flag_counts.items() if v and k != "any") or "none"
        models = " + ".join(f"{m['name']} {m['version']}" for m in self.models) or (
            f"{self.model_name} {self.model_version}"
        )
        return (
            f"inputs={self.n_inputs} = scored={self.n_scored} + rejected={sum(c['rejected'].values())} "
            f"(reasons: {reasons}) + duplicates={self.n_duplicates}; flagged={self.n_flagged} of the scored "
            f"(flags: {flags}); model={models} out={self.folder} in {self.seconds:.2f}s "
            f"({self.alerts_per_s:.0f} alerts/s)"
        )


class AlertOutputs(CommitOnSuccess):
    """The output folder of one run or batch: ``scored.parquet``, ``classifications.avro`` (+ ``.jsonl``),
    ``rejects.csv``, ``summary.json``; each file appears under its final name only when complete.

    Args:
        folder: where to write (created).
        alert_scorer: the scorer (units, descriptions, meta, broker fields).
        jsonl: also write ``classifications.jsonl``.
        meta: extra table meta for the Parquet catalog.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        alert_scorer: AlertScorer,
        *,
        jsonl: bool = False,
        meta: Mapping[str, Any] | None = None,
    ):
        self.folder = Path(folder)
        with output_errors(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
        self.alert_scorer = alert_scorer
        self.rejects = RejectLog()
        self.duplicates = DuplicateFilter()
        self.report = AlertScoreReport(
            str(self.folder),
            model_name=alert_scorer.classifier_name,
            model_version=alert_scorer.classifier_version,
            models=alert_scorer.models,
            quality_thresholds=alert_scorer.quality.to_dict(),
        )
        self._calls0 = (alert_scorer.n_batches, dict(alert_scorer.model_calls))
        self._flags: Counter[str] = Counter()
        table_meta = {**alert_scorer.meta, "input": "alert packets", **(meta or {})}
        self._parquet = ParquetTableWriter(
            self.folder / SCORED_NAME, alert_scorer.units, alert_scorer.descriptions, table_meta
        )
        self._broker = BrokerWriter(
            self.folder,
            jsonl=jsonl,
            metadata={
                "classifier_name": alert_scorer.classifier_name,
                "classifier_version": alert_scorer.classifier_version,
            },
        )
        self._t0 = time.perf_counter()

    def reject(self, rejects: Iterable[Reject]) -> None:
        """Record packets that are not scored."""
        for r in rejects:
            self.rejects.add(r.source, r.reason, r.error)
            self.report.n_rejected += 1
            self.report.n_inputs += 1

    def score(self, alerts: Sequence[Alert]) -> None:
        """Score one micro-batch of alerts and append it to every output."""
        if not alerts:
            return
        t0 = time.perf_counter()
        alerts, copies = self.duplicates.split(alerts)
        self.reject(Reject(source, "duplicate", message) for source, message in copies)
        self.report.n_duplicates += len(copies)
        scored_at = utc_datetime()
        cols, rejects = self.alert_scorer.columns(alerts, scored_at)
        self.reject(rejects)
        n = len(cols["candid"])
        if n:
            self._parquet.write(cols)
            self._broker.write(self.alert_scorer.records(cols, scored_at))
            self._flags.update(flag_counts(cols))
        self.report.n_scored += n
        self.report.n_inputs += n
        self.report.score_seconds += time.perf_counter() - t0

    def close(self) -> AlertScoreReport:
        """Finish every file (an empty catalog when nothing was scored) and write ``summary.json``."""
        if self._parquet.n_rows == 0:  # the Parquet writer needs one chunk, even an empty one
            empty, _ = self.alert_scorer.columns([], utc_datetime())
            self._parquet.write(empty)
        outputs = [
            self._parquet.close(),
            *self._broker.close(),
            self.rejects.write(self.folder / REJECTS_NAME),
        ]
        report = self.report
        report.reject_reasons = self.rejects.counts()
        report.flag_counts = {name: self._flags[name] for name in (*QUALITY_BITS, "any")}
        report.n_flagged = report.flag_counts["any"]
        batches0, calls0 = self._calls0
        report.n_batches = self.alert_scorer.n_batches - batches0
        report.model_calls = {k: v - calls0.get(k, 0) for k, v in self.alert_scorer.model_calls.items()}
        report.check()
        report.seconds = round(time.perf_counter() - self._t0, 4)
        report.alerts_per_s = round(report.n_inputs / report.seconds, 1) if report.seconds > 0 else 0.0
        report.decode_seconds = round(report.decode_seconds, 4)
        report.score_seconds = round(report.score_seconds, 4)
        report.outputs = [str(p) for p in (*outputs, self.folder / SUMMARY_NAME)]
        summary = self.folder / SUMMARY_NAME
        write_text(summary, json.dumps(report.to_dict(), indent=2) + "\n")
        return report

    def abort(self) -> None:
        """Drop every partial file (final names untouched)."""
        self._parquet.abort()
        self._broker.abort()
