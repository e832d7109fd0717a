"""Score alert packets from Kafka topics in micro-batches: at-least-once consumption, exactly-once results.

Each micro-batch (at most ``batch_messages`` messages, or what arrived within ``batch_timeout_s``) goes
through these steps, in this order:

1. **skip** messages at or below the last offset of their partition already published (a redelivery after
   a crash between publishing and committing): counted as ``messages_redelivered``, never rescored;
2. **decode** each message (:func:`pipeline.alerts.kafka_io.decode_message`); a message that is not an
   alert (poison) is a reject with its reason and the stream goes on; an alert whose ``(survey, candid)``
   is already published (another message, a re-sent packet) is the reject ``duplicate`` naming its batch;
3. **claim** the batch in the state database (:class:`pipeline.alerts.kafka_state.KafkaState`, in the
   output folder) with its ``(topic, partition, first, last offset)`` ranges;
4. **write** its outputs into ``batches/NNNNNN`` atomically
   (:func:`pipeline.alerts.follow.write_batch_folder`: scored.parquet, classifications.avro, rejects.csv,
   summary.json as in folder mode, plus ``offsets.json``);
5. **complete**: the batch ``done`` and its alerts remembered (one SQLite transaction);
6. **produce** the records to ``out_topic`` (when given) and wait for every acknowledgement;
7. **commit** the offsets after the batch to the consumer group.

A crash anywhere leaves a state the next start recovers: a pending batch whose folder exists is completed
from the folder (its alerts read back), one whose folder does not exist is forgotten (its messages were not
committed, so Kafka delivers them again); a done batch whose records were not acknowledged is produced
again (records are keyed by ``candid``: at most a repeated identical record in the topic). The state
database leads the committed offsets, so step 1 keeps every alert scored exactly once in the output folder.

One consumer process per output folder (the folder's state is its own); more consumers of one group
share the partitions, each with its own ``--out``.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.alerts.broker import read_classifications
from pipeline.alerts.decode import DecodedFile
from pipeline.alerts.duplicates import alert_key
from pipeline.alerts.follow import BATCHES_DIR, batch_folder, write_batch_folder
from pipeline.alerts.kafka_io import (
    KafkaSettings,
    RecordProducer,
    decode_message,
    partition_offsets,
    require_confluent_kafka,
)
from pipeline.alerts.kafka_state import STATE_NAME, KafkaState, Offsets
from pipeline.alerts.outputs import SCORED_NAME, AlertOutputs
from pipeline.alerts.scoring import DEFAULT_BATCH_ALERTS, score_decoded
from pipeline.io import write_text

if TYPE_CHECKING:
    from pipeline.alerts import AlertScorer

log = logging.getLogger(__name__)

SUMMARY_NAME = "kafka_summary.json"
OFFSETS_NAME = "offsets.json"

#: ``(decoded messages, folder, published alerts) -> summary``: writes a batch's outputs
#: (:func:`write_kafka_batch`).
BatchWriter = Callable[[list[DecodedFile], Path, Mapping[tuple[str, int], int]], dict[str, Any]]


@dataclass
class KafkaReport:
    """What one Kafka run did. Messages: ``messages = messages_redelivered + messages_in_batches``
    (redelivered: already in a published batch, skipped). Alerts of the batches (a message is one packet,
    or one reject when it is not an alert): ``n_inputs = n_scored + n_rejected + n_duplicates``
    (``reject_reasons`` counts every reason, ``duplicate`` included; ``n_flagged`` of the scored carry a
    quality flag). ``partitions``: per partition the group's committed offset, the log's start and end and
    the lag when the run stopped. ``busy_seconds``: time spent on batches (decode, score, write, produce,
    commit; ``alerts_per_s`` is ``n_inputs / busy_seconds``), ``seconds`` the whole run (group join and idle
    waits included)."""

    batches: int = 0
    recovered_batches: int = 0
    partitions: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    messages_redelivered: int = 0
    messages_in_batches: int = 0
    message_errors: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    n_inputs: int = 0
    n_scored: int = 0
    n_flagged: int = 0
    n_rejected: int = 0
    n_duplicates: int = 0
    topics: list[str] = field(default_factory=list)
    records_produced: int = 0
    commit_failures: int = 0
    busy_seconds: float = 0.0
    seconds: float = 0.0
    alerts_per_s: float = 0.0

    @property
    def balanced(self) -> bool:
        """Both identities of the class docstring hold."""
        return (
            self.messages == self.messages_redelivered + self.messages_in_batches
            and self.n_inputs == self.n_scored + self.n_rejected + self.n_duplicates
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "balanced": self.balanced}

    def add_batch(self, summary: dict[str, Any]) -> None:
        self.batches += 1
        self.n_inputs += int(summary["n_inputs"])
        self.n_scored += int(summary["n_scored"])
        self.n_flagged += int(summary.get("n_flagged", 0))
        for reason, n in summary.get("reject_reasons", {}).items():
            self.reject_reasons[reason] = self.reject_reasons.get(reason, 0) + int(n)
        self.n_duplicates = self.reject_reasons.get("duplicate", 0)
        self.n_rejected = sum(self.reject_reasons.values()) - self.n_duplicates


def write_kafka_batch(
    decoded: list[DecodedFile],
    folder: Path,
    published: Mapping[tuple[str, int], int],
    *,
    alert_scorer: AlertScorer,
    jsonl: bool = False,
    batch_alerts: int = DEFAULT_BATCH_ALERTS,
) -> dict[str, Any]:
    """Score a batch's decoded messages into ``folder`` (:class:`pipeline.alerts.outputs.AlertOutputs`, as
    folder mode) and return its counts; ``published`` (``(survey, candid) -> batch``) are alerts of earlier
    batches: a copy of one is the reject ``duplicate`` naming that batch."""
    with AlertOutputs(folder, alert_scorer, jsonl=jsonl) as outputs:
        for key, seq in published.items():
            outputs.duplicates.first[key] = f"kafka batch {seq:06d}"
        score_decoded(decoded, outputs, batch_alerts=batch_alerts)
    return {k: v for k, v in outputs.report.to_dict().items() if k not in ("outputs", "folder")}


def published_alerts(folder: Path) -> list[tuple[str, int]]:
    """``(survey, candid)`` of every alert in a published batch folder's catalog."""
    frame = pd.read_parquet(folder / SCORED_NAME, columns=["survey", "candid"])
    return [(str(s), int(c)) for s, c in zip(frame["survey"], frame["candid"], strict=True)]


def batch_ranges(messages: Sequence[Any]) -> dict[tuple[str, int], tuple[int, int]]:
    """``(topic, partition) -> (first, last offset)`` of messages."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for m in messages:
        key, offset = (m.topic(), m.partition()), m.offset()
        first, last = ranges.get(key, (offset, offset))
        ranges[key] = (min(first, offset), max(last, offset))
    return ranges


class KafkaScoring:
    """The state, the clients and the report of one run (:func:`score_kafka_stream` drives it)."""

    def __init__(self, kafka: Any, settings: KafkaSettings, out: Path, write_batch: BatchWriter):
        self.kafka, self.settings, self.out, self.write_batch = kafka, settings, out, write_batch
        (out / BATCHES_DIR).mkdir(parents=True, exist_ok=True)
        self.state = KafkaState(out / STATE_NAME)
        self.report = KafkaReport()
        self.producer = RecordProducer(kafka, settings, settings.out_topic) if settings.out_topic else None
        self.consumer = kafka.Consumer(settings.consumer_config())
        self.published: Offsets = {}
        self.assigned = False

    def recover(self) -> None:
        """Finish or forget the batches a crash left pending; produce the records not acknowledged."""
        for seq in self.state.pending():
            folder = batch_folder(self.out, seq)
            if folder.is_dir():
                summary = {"recovered": "the folder was published before the crash"}
                self.state.complete(seq, published_alerts(folder), summary, produced=self.producer is None)
                self.report.recovered_batches += 1
            else:
                shutil.rmtree(self.out / f".batch-{seq:06d}.partial", ignore_errors=True)
                self.state.drop(seq)
        if self.producer is not None:
            for seq in self.state.unproduced():
                self._produce(seq)
        self.published = self.state.published_offsets()

    def _produce(self, seq: int) -> None:
        assert self.producer is not None
        records = read_classifications(batch_folder(self.out, seq) / "classifications.avro")
        self.report.records_produced += self.producer.produce(records)
        self.producer.flush()
        self.state.mark_produced(seq)

    def commit(self, ranges: dict[tuple[str, int], tuple[int, int]]) -> None:
        """Commit the offsets after ``ranges``; a failed commit (e.g. the partition moved to another member)
        is counted and logged: the state database still skips those messages here."""
        offsets = [self.kafka.TopicPartition(t, p, last + 1) for (t, p), (_, last) in ranges.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except self.kafka.KafkaException as err:
            self.report.commit_failures += 1
            log.warning("committing %s failed: %s", offsets, err)

    def split(self, messages: list[Any]) -> tuple[list[Any], list[Any]]:
        """``(new messages, redelivered ones)``; message errors are logged (fatal ones raise)."""
        fresh, again = [], []
        for m in messages:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise self.kafka.KafkaException(err)
                self.report.message_errors += 1
                log.warning("consumer: %s", err)
                continue
            done = self.published.get((m.topic(), m.partition()))
            (again if done is not None and m.offset() <= done else fresh).append(m)
        self.report.messages += len(fresh) + len(again)
        self.report.messages_redelivered += len(again)
        return fresh, again

    def publish(self, messages: list[Any]) -> None:
        """Steps 2-7 of the module docstring for one micro-batch."""
        t0 = time.perf_counter()
        decoded = [decode_message(m) for m in messages]
        published = self.state.batch_of(alert_key(a.row) for d in decoded for a in d.alerts)
        ranges = batch_ranges(messages)
        seq = self.state.next_seq()
        self.state.claim(seq, ranges)

        def write(folder: Path) -> dict[str, Any]:
            summary = self.write_batch(decoded, folder, published)
            rows = [{"topic": t, "partition": p, "first": a, "last": b} for (t, p), (a, b) in ranges.items()]
            write_text(folder / OFFSETS_NAME, json.dumps(rows, indent=2) + "\n")
            return summary

        summary = write_batch_folder(self.out, seq, write)
        alerts = published_alerts(batch_folder(self.out, seq))
        self.state.complete(seq, alerts, summary, produced=self.producer is None)
        if self.producer is not None:
            self._produce(seq)
        for key, (_, last) in ranges.items():
            self.published[key] = max(last, self.published.get(key, -1))
        self.commit(ranges)
        self.report.messages_in_batches += len(messages)
        self.report.add_batch(summary)
        self.report.busy_seconds += time.perf_counter() - t0
        log.info("batch %06d: %d messages, %d alerts scored", seq, len(messages), summary.get("n_scored", 0))

    def close(self, t0: float) -> KafkaReport:
        """Offsets and lag, then the clients and the state closed; ``kafka_summary.json`` written."""
        report = self.report
        report.partitions = partition_offsets(self.consumer, self.kafka, list(self.settings.topics))
        self.consumer.close()
        self.state.close()
        report.seconds = round(time.monotonic() - t0, 3)
        report.busy_seconds = round(report.busy_seconds, 4)
        busy = report.busy_seconds
        report.alerts_per_s = round(report.n_inputs / busy, 1) if busy > 0 else 0.0
        write_text(self.out / SUMMARY_NAME, json.dumps(report.to_dict(), indent=2) + "\n")
        return report


def score_kafka_stream(
    settings: KafkaSettings,
    alert_scorer: AlertScorer,
    out: str | Path,
    *,
    jsonl: bool = False,
    batch_alerts: int = DEFAULT_BATCH_ALERTS,
    stop: threading.Event | None = None,
) -> KafkaReport:
    """Consume ``settings.topics`` and score micro-batches into ``out/batches/NNNNNN`` (module docstring)
    until stopped (``stop``, ``idle_exit_s``, ``max_batches``); returns the run's :class:`KafkaReport`, also
    written to ``out/kafka_summary.json``.

    Args:
        settings: brokers, topics, group, output topic, batching (:class:`KafkaSettings`).
        alert_scorer: the model(s) (:class:`pipeline.alerts.AlertScorer`).
        out: the output folder (state database, batches, summary).
        jsonl: also write ``classifications.jsonl`` per batch.
        batch_alerts: alerts per model call.
        stop: set it to stop after the current batch (a signal handler does).

    Raises:
        KafkaUnavailable: confluent-kafka is not installed.
    """
    kafka = require_confluent_kafka()
    stop = stop or threading.Event()
    t0 = time.monotonic()
    write_batch = partial(
        write_kafka_batch, alert_scorer=alert_scorer, jsonl=jsonl, batch_alerts=batch_alerts
    )
    run = KafkaScoring(kafka, settings, Path(out), write_batch)
    run.report.topics = list(settings.topics)
    idle_since = [time.monotonic()]

    def on_assign(consumer: Any, partitions: list[Any]) -> None:
        run.assigned = bool(partitions)
        idle_since[0] = time.monotonic()

    try:
        run.recover()
        run.consumer.subscribe(list(settings.topics), on_assign=on_assign)
        while not stop.is_set():
            if settings.max_batches is not None and run.report.batches >= settings.max_batches:
                break
            messages = run.consumer.consume(settings.batch_messages, timeout=settings.batch_timeout_s)
            fresh, again = run.split(messages)
            if again:
                run.commit(batch_ranges(again))
            if fresh:
                run.publish(fresh)
                idle_since[0] = time.monotonic()
            elif run.assigned and settings.idle_exit_s is not None:
                if time.monotonic() - idle_since[0] >= settings.idle_exit_s:
                    break
    finally:
        report = run.close(t0)
    return report
